/**
 * A third-party platform's (开放平台第三方平台) endpoints at WeChat's paths.
 * The platform's SDK keeps its flow; the server keeps every real credential:
 *
 * - `api_component_token` with the client key as `component_appsecret`
 *   answers a gateway component token; nothing is fetched. The
 *   `component_verify_ticket` sent is not used: WeChat pushes the ticket to
 *   the server's authorization-event URL, where it is checked, and a ticket
 *   from a caller is not (a wrong one would cost every caller the component
 *   token).
 * - `api_authorizer_token` answers a gateway authorizer token and a
 *   placeholder refresh token, for an authorizer the server holds. The
 *   refresh token sent is not used (nor stored, nor forwarded): the server
 *   refreshes with the one it holds, and the real one never leaves it.
 * - `api_query_auth` exchanges the code through the engine, which stores the
 *   refresh token durably as the push path does, and answers in WeChat's
 *   shape with gateway values.
 * - `api_start_push_ticket` takes the client key as `component_secret`: the
 *   real secret goes in its place.
 * - Every other call with a gateway component token is forwarded with the
 *   real one (replaced and replayed once when WeChat says it is dead), its
 *   answer read whole: the tokens used are masked, and every refresh token
 *   in a `cgi-bin/component/` answer (`api_get_authorizer_list`,
 *   `api_get_authorizer_info`) is the placeholder.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type Duration, Effect, Option, Redacted, Schedule } from "effect"
import type { AccessTokenError } from "../../../AccessToken.js"
import type { ComponentTokenShape } from "../../../families/component/ComponentToken.js"
import * as ProxyTarget from "../../../ProxyTarget.js"
import * as QueryName from "../../internal/queryName.js"
import * as TokenScrubber from "../../internal/tokenScrubber.js"
import type * as UpstreamCall from "../../internal/upstreamCall.js"
import * as ProxyPath from "../../ProxyPath.js"
import * as Answers from "./answers.js"
import * as GatewayToken from "./gatewayToken.js"
import type { Keys } from "./keys.js"
import * as WholeCall from "./wholeCall.js"

/**
 * What the gateway answers as `authorizer_refresh_token`: the server holds
 * the real one, and sent back it means nothing.
 */
export const PLACEHOLDER_REFRESH_TOKEN = "refreshtoken@@@held-by-the-token-server"

// A page of 500 authorizers is about 100 KiB; WeChat's component answers are no larger.
const MAX_ANSWER_BYTES = 1024 * 1024

// Refresh tokens, as WeChat names them in the component endpoints' answers.
const REFRESH_FIELDS: ReadonlySet<string> = new Set(["authorizer_refresh_token", "refresh_token"])

// Calls that reset a quota every caller shares, in any spelling the path check lets through.
const REFUSED = /^cgi-bin\/component\/(api_)?clear_quota/i

/** The answer and whether it is the one asked for. */
export interface Answered {
  readonly response: HttpServerResponse.HttpServerResponse
  readonly ok: boolean
}

const refused = (errcode: number, errmsg: string): Answered => ({ response: Answers.error(errcode, errmsg), ok: false })

/** WeChat's own refusal as WeChat gave it; anything else as its busy answer, which SDKs retry. */
const failed = (error: AccessTokenError): Answered =>
  error._tag === "WeChatApiError"
    ? refused(error.errcode, error.errmsg)
    : error._tag === "UnknownApp"
    ? refused(61003, "component is not authorized by this account")
    : refused(-1, `system error: ${error.message}`)

const text = (value: unknown): string | undefined => typeof value === "string" && value !== "" ? value : undefined

const withoutRefreshTokens = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutRefreshTokens)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [
      name,
      REFRESH_FIELDS.has(name) && typeof field === "string" ? PLACEHOLDER_REFRESH_TOKEN : withoutRefreshTokens(field)
    ])
  )
}

// A query name WeChat might read as a token (`QueryName.readAs`; the component
// endpoints take `component_access_token` too): next to the real token it is
// two tokens in one call.
const namesToken = (query: URLSearchParams): boolean => {
  for (const name of query.keys()) {
    if (QueryName.readAs(name).endsWith("access_token")) return true
  }
  return false
}

const errcodeOf = (body: Uint8Array): number | undefined => {
  try {
    const value: unknown = JSON.parse(Buffer.from(body).toString("utf8"))
    return typeof value === "object" && value !== null && "errcode" in value && typeof value.errcode === "number"
      ? value.errcode
      : undefined
  } catch {
    return undefined
  }
}

/** @internal */
export interface Components {
  /** Whether the server runs `componentAppId`. */
  readonly known: (componentAppId: string) => boolean
  /** `api_component_token`, from its body's fields. */
  readonly componentToken: (fields: Record<string, unknown>, keys: Keys, nowSeconds: number) => Answered
  /** `api_authorizer_token` for the gateway component token's `claims`. */
  readonly authorizerToken: (
    claims: GatewayToken.Claims,
    fields: Record<string, unknown>,
    keys: Keys,
    nowSeconds: number
  ) => Effect.Effect<Answered>
  /** `api_query_auth` for the gateway component token's `claims`. */
  readonly queryAuth: (
    claims: GatewayToken.Claims,
    fields: Record<string, unknown>,
    keys: Keys,
    nowSeconds: number
  ) => Effect.Effect<Answered>
  /** `api_start_push_ticket`, with the client key as `component_secret`. */
  readonly startPushTicket: (fields: Record<string, unknown>, keys: Keys) => Effect.Effect<Answered>
  /**
   * Any other call of the component `componentAppId`: `path` (with its
   * leading `/`) and `query` (without the gateway token) as the caller sent
   * them, the real token added as `tokenName`.
   */
  readonly forward: (call: {
    readonly componentAppId: string
    readonly method: string
    readonly path: string
    readonly query: URLSearchParams
    readonly tokenName: string
    readonly contentType: string | undefined
    readonly body: Uint8Array | undefined
  }) => Effect.Effect<Answered>
}

/**
 * Over the server's components (`tokens`), calling WeChat at `baseUrl`.
 *
 * @internal
 */
export const make = (options: {
  readonly tokens: ComponentTokenShape
  readonly upstream: UpstreamCall.Upstream
  readonly baseUrl: string
  readonly timeout: Duration.Duration
}): Components => {
  const { tokens } = options
  const origin = options.upstream.origin(options.baseUrl.replace(/\/+$/, ""))
  const known = (componentAppId: string) => tokens.components.some((component) => component === componentAppId)

  // The body names the component its token is for: another one is not this token's.
  const sameComponent = (claims: GatewayToken.Claims, fields: Record<string, unknown>) =>
    text(fields["component_appid"]) === claims.owner

  const issued = (
    keys: Keys,
    claims: GatewayToken.Claims,
    authorizerAppId: string,
    nowSeconds: number
  ) => ({
    authorizer_access_token: keys.tokens.issue(
      claims.key,
      "authorizer",
      `${claims.owner}:${authorizerAppId}`,
      nowSeconds
    ),
    expires_in: GatewayToken.LIFETIME_SECONDS,
    authorizer_refresh_token: PLACEHOLDER_REFRESH_TOKEN
  })

  const send = (method: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined) =>
    WholeCall.send(
      origin,
      {
        method,
        path,
        headers: { accept: "application/json", "accept-encoding": "identity", ...headers },
        body: body === undefined ? { _tag: "None" } : { _tag: "Held", bytes: body }
      },
      options.timeout,
      MAX_ANSWER_BYTES
    )

  return {
    known,
    componentToken: (fields, keys, nowSeconds) => {
      const componentAppId = text(fields["component_appid"])
      const presented = text(fields["component_appsecret"])
      if (componentAppId === undefined) return refused(41002, "component_appid missing")
      if (presented === undefined) return refused(41004, "component_appsecret missing")
      const key = keys.match(presented)
      if (key === undefined) return refused(40125, "invalid appsecret")
      if (!known(componentAppId) || !keys.allows(key, componentAppId)) return refused(40013, "invalid appid")
      return {
        response: Answers.json({
          component_access_token: keys.tokens.issue(key, "component", componentAppId, nowSeconds),
          expires_in: GatewayToken.LIFETIME_SECONDS
        }),
        ok: true
      }
    },
    authorizerToken: (claims, fields, keys, nowSeconds) => {
      if (!sameComponent(claims, fields)) return Effect.succeed(refused(40013, "invalid component_appid"))
      const authorizerAppId = text(fields["authorizer_appid"])
      if (authorizerAppId === undefined) return Effect.succeed(refused(41002, "authorizer_appid missing"))
      // Held (or fetched once) by the engine: an authorizer it does not hold was never authorized to it.
      return tokens.authorizerToken(claims.owner, authorizerAppId).pipe(
        Effect.match({
          onFailure: failed,
          onSuccess: () => ({ response: Answers.json(issued(keys, claims, authorizerAppId, nowSeconds)), ok: true })
        })
      )
    },
    queryAuth: (claims, fields, keys, nowSeconds) => {
      if (!sameComponent(claims, fields)) return Effect.succeed(refused(40013, "invalid component_appid"))
      const code = text(fields["authorization_code"])
      if (code === undefined) return Effect.succeed(refused(41009, "authorization_code missing"))
      return tokens.exchange(claims.owner, code).pipe(
        // WeChat pushes `authorized` with the very code the merchant's redirect brings the SDK: when the
        // push intake exchanged it first, WeChat answers 61009 (used) here, yet the authorizer is the
        // server's. Its token is waited for while that exchange stores it; the permission sets it granted
        // are not kept, so `func_info` is empty.
        Effect.catchIf(
          (error) => error._tag === "WeChatApiError" && error.errcode === 61009,
          (error) =>
            Effect.flatMap(
              tokens.authorizerOfCode(claims.owner, code),
              Option.match({
                onNone: () => Effect.fail(error),
                onSome: (authorizerAppId) =>
                  tokens.authorizerToken(claims.owner, authorizerAppId).pipe(
                    Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 40 }),
                    Effect.as({ authorizerAppId, funcInfo: [] as ReadonlyArray<number> })
                  )
              })
            )
        ),
        Effect.match({
          onFailure: failed,
          onSuccess: (granted) => ({
            response: Answers.json({
              authorization_info: {
                authorizer_appid: granted.authorizerAppId,
                ...issued(keys, claims, granted.authorizerAppId, nowSeconds),
                func_info: granted.funcInfo.map((id) => ({ funcscope_category: { id } }))
              }
            }),
            ok: true
          })
        })
      )
    },
    startPushTicket: (fields, keys) => {
      const componentAppId = text(fields["component_appid"])
      const presented = text(fields["component_secret"])
      if (componentAppId === undefined) return Effect.succeed(refused(41002, "component_appid missing"))
      if (presented === undefined) return Effect.succeed(refused(41004, "component_secret missing"))
      const key = keys.match(presented)
      if (key === undefined) return Effect.succeed(refused(40125, "invalid appsecret"))
      const credentials = tokens.credentials(componentAppId)
      if (credentials._tag === "None" || !keys.allows(key, componentAppId)) {
        return Effect.succeed(refused(40013, "invalid appid"))
      }
      const secret = Redacted.value(credentials.value.secret)
      const body = new TextEncoder().encode(
        JSON.stringify({ component_appid: componentAppId, component_secret: secret })
      )
      return send("POST", "/cgi-bin/component/api_start_push_ticket", { "content-type": "application/json" }, body)
        .pipe(Effect.match({
          onFailure: (failure) => refused(-1, `system error: ${failure}`),
          onSuccess: (answer) => ({
            response: Answers.raw(TokenScrubber.whole(answer.body, [secret]), answer.contentType, answer.status),
            ok: true
          })
        }))
    },
    forward: (call) =>
      Effect.gen(function*() {
        const checked = ProxyPath.normalize(call.path.slice(1))
        if (!("path" in checked)) return refused(48001, `api unauthorized: ${checked.reason}`)
        const path = checked.path
        const underComponent = path.toLowerCase().startsWith("cgi-bin/component/")
        // The component's own endpoints are its token's to call, but for a quota reset; elsewhere the proxy's rules hold.
        const refusal = underComponent
          ? REFUSED.test(path) ? "it resets a quota every caller shares" : undefined
          : (() => {
            const resolved = ProxyPath.resolve(path, undefined)
            return "path" in resolved ? undefined : resolved.reason
          })()
        if (refusal !== undefined) return refused(48001, `api unauthorized: ${refusal}`)
        if (namesToken(call.query)) return refused(40001, "invalid credential: one access token per call")
        const prefix = `/${path}?${call.query.size === 0 ? "" : `${call.query.toString()}&`}${call.tokenName}=`
        const headers: Record<string, string> = call.contentType === undefined
          ? {}
          : { "content-type": call.contentType }
        const once = (token: string) => send(call.method, prefix + encodeURIComponent(token), headers, call.body)

        const first = yield* tokens.get(call.componentAppId)
        let answer = yield* once(first.value)
        const used = [first.value]
        const errcode = errcodeOf(answer.body)
        if (errcode !== undefined && ProxyTarget.DEAD_TOKEN.has(errcode)) {
          const fresh = yield* tokens.refresh(call.componentAppId, first.value)
          if (fresh.value !== first.value) {
            used.push(fresh.value)
            answer = yield* once(fresh.value)
          }
        }
        let body: Uint8Array = TokenScrubber.whole(answer.body, used)
        if (underComponent) {
          try {
            body = new TextEncoder().encode(
              JSON.stringify(withoutRefreshTokens(JSON.parse(Buffer.from(body).toString("utf8"))))
            )
          } catch {
            // Not JSON: no refresh token field to replace.
          }
        }
        return { response: Answers.raw(body, answer.contentType, answer.status), ok: true }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.succeed(typeof error === "string" ? refused(-1, `system error: ${error}`) : failed(error))
        )
      )
  }
}
