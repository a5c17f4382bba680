/**
 * A WeCom service provider's endpoints (企业微信第三方应用 / 服务商) at
 * WeCom's paths. The provider's SDK keeps its flow; the server keeps every
 * real credential:
 *
 * - `service/get_suite_token` with the client key as `suite_secret`
 *   answers a gateway suite token; nothing is fetched. The `suite_ticket`
 *   sent is not used: WeCom pushes the ticket to the server's command URL,
 *   where it is checked (a wrong one from a caller would cost every caller
 *   the suite token).
 * - `service/get_provider_token` with the client key as `provider_secret`
 *   answers a gateway provider token.
 * - `service/get_corp_token` answers a gateway corp token for a corp the
 *   server holds, when `permanent_code` is the real one (compared in
 *   constant time) or `PLACEHOLDER_PERMANENT_CODE`; otherwise WeCom's 40084.
 * - `service/get_permanent_code` and `service/v2/get_permanent_code`: the
 *   install's temporary code is exchanged by the push intake when WeCom
 *   pushed `create_auth`; the SDK's call is answered from the stored install,
 *   with the placeholder code and the corp id, and exchanges nothing. A code
 *   the server has not seen is exchanged and stored as the push would.
 * - Every other call with a gateway suite or provider token is forwarded
 *   with the real one (`OwnCalls.forward`): a placeholder `permanent_code`
 *   in a `cgi-bin/service/` body is replaced by the real one of its
 *   `auth_corpid`, and every `permanent_code` in an answer is the placeholder.
 *
 * The errcodes are WeCom's where its documentation gives one (40082 suite
 * token, 40083 suite id, 40084 permanent code, 40078 temporary code, 41025
 * permanent code missing, 40001 a wrong secret); a missing id or secret
 * reads as WeChat's 41002/41004, by analogy with `cgi-bin/gettoken`.
 *
 * @internal
 */
import { Duration, Effect, Option, Schedule } from "effect"
import { timingSafeEqual } from "node:crypto"
import type { AccessTokenError } from "../../../AccessToken.js"
import type { WeComSuiteTokenShape } from "../../../families/wecomSuite/WeComSuiteToken.js"
import * as ProxyTarget from "../../../ProxyTarget.js"
import * as Answers from "./answers.js"
import * as GatewayToken from "./gatewayToken.js"
import type { Keys } from "./keys.js"
import * as OwnCalls from "./ownCalls.js"
import { type Answered, refused, text } from "./ownCalls.js"

/**
 * What the gateway answers as `permanent_code`: the server holds the real
 * one (WeCom hands it out once), and sent back it stands for it.
 */
export const PLACEHOLDER_PERMANENT_CODE = "permanentcode@@@held-by-the-token-server"

const PERMANENT_CODE_FIELDS: ReadonlySet<string> = new Set(["permanent_code"])

// The service endpoints that mint what the gateway answers itself, in any spelling the path check lets through.
const OWN: OwnCalls.Own = {
  under: "cgi-bin/service/",
  refused: /^cgi-bin\/service\/(v2\/)?(get_suite_token|get_provider_token|get_corp_token|get_permanent_code)$/i,
  because: "the gateway answers it with its own values",
  hidden: PERMANENT_CODE_FIELDS,
  placeholder: PLACEHOLDER_PERMANENT_CODE,
  // WeCom answers 40082 for a suite or provider token it no longer takes, besides the corp tokens' errcodes.
  deadToken: new Set([...ProxyTarget.DEAD_TOKEN, 40082])
}

// WeCom's 40083 names a suite id it does not know; a suite this server does not serve reads the same.
const unknownSuite = refused(40083, "invalid suite_id")
const failed = (error: AccessTokenError): Answered => OwnCalls.failed(error, unknownSuite)

const sameText = (a: string, b: string): boolean => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/** @internal */
export interface Suites {
  /** Whether the server runs `suiteId`. */
  readonly known: (suiteId: string) => boolean
  /** Whether `corpId` is the server's service provider (`WECOM_PROVIDER`). */
  readonly knownProvider: (corpId: string) => boolean
  /** `get_suite_token`, from its body's fields. */
  readonly suiteToken: (fields: Record<string, unknown>, keys: Keys, nowSeconds: number) => Answered
  /** `get_provider_token`, from its body's fields. */
  readonly providerToken: (fields: Record<string, unknown>, keys: Keys, nowSeconds: number) => Answered
  /** `get_corp_token` for the gateway suite token's `claims`. */
  readonly corpToken: (
    claims: GatewayToken.Claims,
    fields: Record<string, unknown>,
    keys: Keys,
    nowSeconds: number
  ) => Effect.Effect<Answered>
  /** `get_permanent_code` (and v2) for the gateway suite token's `claims`. */
  readonly permanentCode: (claims: GatewayToken.Claims, fields: Record<string, unknown>) => Effect.Effect<Answered>
  /** Any other call of a gateway suite or provider token. */
  readonly forward: (claims: GatewayToken.Claims, call: OwnCalls.Call) => Effect.Effect<Answered>
}

/**
 * Over the server's suites (`tokens`), calling WeCom at `baseUrl`.
 *
 * @internal
 */
export const make = (options: {
  readonly tokens: WeComSuiteTokenShape
  readonly provider: string | undefined
  readonly send: OwnCalls.Send
}): Suites => {
  const { tokens } = options
  const known = (suiteId: string) => tokens.suites.includes(suiteId)
  const knownProvider = (corpId: string) => options.provider !== undefined && options.provider === corpId

  // A key presented as a secret, for an owner it may use: the key, else WeCom's refusal.
  const keyFor = (keys: Keys, presented: string | undefined, owner: string, served: boolean) => {
    if (presented === undefined) return refused(41004, "secret missing")
    const key = keys.match(presented)
    if (key === undefined) return refused(40001, "invalid secret: not a client key of this server")
    return served && keys.allows(key, owner) ? key : undefined
  }

  // The real permanent code of a corp the server holds, for the body of a forwarded call that sent the placeholder.
  const withRealCode = (suiteId: string, call: OwnCalls.Call) =>
    Effect.gen(function*() {
      const fields = call.body === undefined ? undefined : OwnCalls.parseObject(call.body)
      const corpId = text(fields?.["auth_corpid"])
      if (fields === undefined || corpId === undefined || fields["permanent_code"] !== PLACEHOLDER_PERMANENT_CODE) {
        return { call, secrets: [] }
      }
      const code = yield* tokens.permanentCode(suiteId, corpId)
      const body = new TextEncoder().encode(JSON.stringify({ ...fields, permanent_code: code.value }))
      return { call: { ...call, body }, secrets: [code.value] }
    })

  // A gateway token in WeCom's answer shape, under the field WeCom names it.
  const issued = (field: string, token: string) => ({
    response: Answers.json({ errcode: 0, errmsg: "ok", [field]: token, expires_in: GatewayToken.LIFETIME_SECONDS }),
    ok: true
  })

  return {
    known,
    knownProvider,
    suiteToken: (fields, keys, nowSeconds) => {
      const suiteId = text(fields["suite_id"])
      if (suiteId === undefined) return refused(41002, "suite_id missing")
      const key = keyFor(keys, text(fields["suite_secret"]), suiteId, known(suiteId))
      if (key === undefined) return unknownSuite
      if ("response" in key) return key
      return issued("suite_access_token", keys.tokens.issue(key, "suite", suiteId, nowSeconds))
    },
    providerToken: (fields, keys, nowSeconds) => {
      const corpId = text(fields["corpid"])
      if (corpId === undefined) return refused(41002, "corpid missing")
      const key = keyFor(keys, text(fields["provider_secret"]), corpId, knownProvider(corpId))
      if (key === undefined) return refused(40013, "invalid corpid")
      if ("response" in key) return key
      return issued("provider_access_token", keys.tokens.issue(key, "provider", corpId, nowSeconds))
    },
    corpToken: (claims, fields, keys, nowSeconds) =>
      Effect.gen(function*() {
        const corpId = text(fields["auth_corpid"])
        const presented = text(fields["permanent_code"])
        if (corpId === undefined) return refused(41002, "auth_corpid missing")
        if (presented === undefined) return refused(41025, "permanent_code missing")
        // The corp's permanent code, when the server holds it; a corp it does not hold has no code to match.
        const held = yield* Effect.option(tokens.permanentCode(claims.owner, corpId))
        if (
          Option.isNone(held) ||
          !(presented === PLACEHOLDER_PERMANENT_CODE || sameText(presented, held.value.value))
        ) {
          return refused(40084, "invalid permanent_code")
        }
        return {
          response: Answers.json({
            errcode: 0,
            errmsg: "ok",
            access_token: keys.tokens.issue(claims.key, "suite_corp", `${claims.owner}:${corpId}`, nowSeconds),
            expires_in: GatewayToken.LIFETIME_SECONDS
          }),
          ok: true
        }
      }),
    permanentCode: (claims, fields) =>
      Effect.gen(function*() {
        const authCode = text(fields["auth_code"])
        if (authCode === undefined) return refused(41002, "auth_code missing")
        // The push exchanged it (on any replica), or the server exchanges it now as the push would; while
        // the push's exchange is storing the code, its answer is waited for.
        const corpId = yield* tokens.exchange(claims.owner, authCode).pipe(
          Effect.retry({
            while: (error) => error._tag === "StoreError",
            schedule: Schedule.spaced(Duration.millis(250)),
            times: 40
          })
        )
        return {
          response: Answers.json({
            errcode: 0,
            errmsg: "ok",
            permanent_code: PLACEHOLDER_PERMANENT_CODE,
            auth_corp_info: { corpid: corpId }
          }),
          ok: true
        }
      }).pipe(Effect.catchAll((error) => Effect.succeed(failed(error)))),
    forward: (claims, call) =>
      Effect.gen(function*() {
        const suite = claims.kind === "suite"
        const rewritten = suite ? yield* withRealCode(claims.owner, call) : { call, secrets: [] }
        return yield* OwnCalls.forward({
          send: options.send,
          call: rewritten.call,
          own: OWN,
          token: suite ? tokens.suiteToken(claims.owner) : tokens.providerToken,
          refresh: (stale) => suite ? tokens.refreshSuiteToken(claims.owner, stale) : tokens.providerToken,
          secrets: rewritten.secrets,
          failed
        })
      }).pipe(Effect.catchAll((error) => Effect.succeed(failed(error))))
  }
}
