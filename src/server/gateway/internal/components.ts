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
import { type Duration, Effect, Option, Redacted, Schedule } from "effect"
import type { AccessTokenError } from "../../../AccessToken.js"
import type { ComponentTokenShape } from "../../../families/component/ComponentToken.js"
import * as ProxyTarget from "../../../ProxyTarget.js"
import type * as UpstreamCall from "../../internal/upstreamCall.js"
import * as Answers from "./answers.js"
import * as GatewayToken from "./gatewayToken.js"
import type { Keys } from "./keys.js"
import * as OwnCalls from "./ownCalls.js"
import { type Answered, refused, text } from "./ownCalls.js"

/**
 * What the gateway answers as `authorizer_refresh_token`: the server holds
 * the real one, and sent back it means nothing.
 */
export const PLACEHOLDER_REFRESH_TOKEN = "refreshtoken@@@held-by-the-token-server"

// The component's own endpoints: refresh tokens, as WeChat names them in
// their answers, read as the placeholder; a quota every caller shares is
// not reset, in any spelling the path check lets through.
const OWN: OwnCalls.Own = {
  under: "cgi-bin/component/",
  refused: /^cgi-bin\/component\/(api_)?clear_quota/i,
  because: "it resets a quota every caller shares",
  hidden: new Set(["authorizer_refresh_token", "refresh_token"]),
  placeholder: PLACEHOLDER_REFRESH_TOKEN,
  deadToken: ProxyTarget.DEAD_TOKEN
}

const failed = (error: AccessTokenError): Answered =>
  OwnCalls.failed(error, refused(61003, "component is not authorized by this account"))

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
  readonly forward: (call: OwnCalls.Call & { readonly componentAppId: string }) => Effect.Effect<Answered>
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
  const send = OwnCalls.sender(options)
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
      return OwnCalls.passed(
        send("POST", "/cgi-bin/component/api_start_push_ticket", { "content-type": "application/json" }, body),
        [secret]
      )
    },
    forward: (call) =>
      OwnCalls.forward({
        send,
        call,
        own: OWN,
        token: tokens.get(call.componentAppId),
        refresh: (stale) => tokens.refresh(call.componentAppId, stale),
        failed
      })
  }
}
