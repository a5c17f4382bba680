/**
 * Calls any WeChat API with the app's access token injected, and recovers
 * from a token WeChat no longer accepts: on 40001 / 40014 / 42001 it asks
 * `AccessToken` for a compare-and-refresh and replays the call once with the
 * new token. Works over the local engine (`TokenLayer`) and over a central
 * server (`RemoteTokenLayer`) alike. In proxy mode (`layerProxy`) it holds no
 * token at all: each call goes through the central server's proxy with only
 * a client key, and the server adds the token and replays.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Duration, Effect, Layer, Redacted, type Schema } from "effect"
import { AccessToken, type AccessTokenError } from "./AccessToken.js"
import type { AppId } from "./AppId.js"
import * as WeChatApi from "./families/officialAccount/WeChatApi.js"
import { UpstreamUnavailable, type WeChatError } from "./WeChatError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type ApiRequest = WeChatApi.ApiRequest

/**
 * @since 0.1.0
 * @category models
 */
export interface WeChatClientShape {
  /**
   * Sends `request` with `access_token` added to its query and decodes the
   * success body with `success`. A non-zero errcode fails with the typed
   * `WeChatError` it stands for; a dead token is replaced and the call
   * replayed once.
   */
  readonly call: <A, I>(
    appId: string,
    request: ApiRequest,
    success: Schema.Schema<A, I>
  ) => Effect.Effect<A, WeChatError | AccessTokenError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WeChatClient extends Context.Tag("effect-wechat-token/WeChatClient")<WeChatClient, WeChatClientShape>() {}

/**
 * Where WeChat is and how long a call may take (`WeChatApi.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export type ClientOptions = WeChatApi.Options

/**
 * Builds the client from `AccessToken` and an `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ClientOptions = {}
): Effect.Effect<WeChatClientShape, never, AccessToken | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const tokens = yield* AccessToken
    const api = yield* WeChatApi.make(options)

    const call: WeChatClientShape["call"] = (appId, request, success) =>
      Effect.gen(function*() {
        const used = yield* tokens.get(appId)
        // `AccessToken` answered for this id, so it is a configured, valid app id.
        const app = appId as AppId
        return yield* api.call(app, used.value, request, success).pipe(
          Effect.catchTag("InvalidCredential", (rejected) =>
            Effect.gen(function*() {
              // Compare-and-refresh: however many calls saw the same token
              // rejected, the upstream is asked for a new one at most once.
              const fresh = yield* tokens.refresh(appId, used.value)
              // Replaying with the token WeChat just rejected cannot succeed.
              if (fresh.value === used.value) return yield* rejected
              yield* Effect.logInfo("access token rejected; replaying once with the new token").pipe(
                Effect.annotateLogs({ app: appId, path: request.path, errcode: rejected.errcode })
              )
              return yield* api.call(app, fresh.value, request, success)
            }))
        )
      }).pipe(Effect.withSpan("WeChatClient.call", { attributes: { appId, path: request.path } }))

    return WeChatClient.of({ call })
  })

/**
 * The client over the `AccessToken` and `HttpClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: ClientOptions): Layer.Layer<WeChatClient, never, AccessToken | HttpClient.HttpClient> =>
  Layer.effect(WeChatClient, make(options))

/**
 * Where the central server is, the client key it knows this business server
 * by, and how long a call may take.
 *
 * @since 0.3.0
 * @category models
 */
export interface ProxyOptions {
  /** The central server, e.g. `http://tokens.internal:8787` (as `RemoteTokenLayer.Options.baseUrl`). */
  readonly baseUrl: string
  readonly clientKey: Redacted.Redacted<string>
  /** Each call gives up after this long; default 30 s (the server itself waits up to 10 s on WeChat, and replays). */
  readonly timeout?: Duration.DurationInput
}

// The server's own refusals (401, 403, 404, 502, 504…): their code and message say what to fix.
const refusalOf = (body: unknown): string => {
  const error = typeof body === "object" && body !== null && "error" in body ? body.error : undefined
  return typeof error === "object" && error !== null && "code" in error && "message" in error
    ? `${String(error.code)}: ${String(error.message)}`
    : "no error body"
}

/**
 * Builds a client that calls WeChat through the central server's proxy
 * (`/v1/apps/{appId}/wechat/{path}`): no `AccessToken`, no token in this
 * process. The server adds the current token and recovers from a dead one;
 * a non-zero errcode still fails with its typed `WeChatError`, and a refusal
 * by the server itself with `UpstreamUnavailable` naming its code.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeProxy = (options: ProxyOptions): Effect.Effect<WeChatClientShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const base = options.baseUrl.replace(/\/+$/, "")
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const authorization = `Bearer ${Redacted.value(options.clientKey)}`

    const call: WeChatClientShape["call"] = (appId, request, success) => {
      const decode = WeChatApi.decodeBody(success)
      const url = `${base}/v1/apps/${encodeURIComponent(appId)}/wechat/${request.path.replace(/^\/+/, "")}`
      const start = request.method === "GET" ? HttpClientRequest.get(url) : HttpClientRequest.post(url)
      const withBody = request.body === undefined ? start : HttpClientRequest.bodyUnsafeJson(start, request.body)
      const unavailable = (reason: UpstreamUnavailable["reason"], detail: string) =>
        new UpstreamUnavailable({ reason, detail: `${request.path} via the proxy: ${detail}` })
      return http.execute(withBody.pipe(
        HttpClientRequest.setUrlParams(request.query ?? {}),
        HttpClientRequest.setHeader("authorization", authorization)
      )).pipe(
        Effect.mapError((error) => unavailable("network", error.reason)),
        Effect.flatMap((response) =>
          Effect.flatMap(
            Effect.mapError(response.json, () => unavailable("malformed-body", "the body is not JSON")),
            (body) =>
              response.status >= 200 && response.status < 300
                ? decode(body, { appId, site: "api-call" })
                : Effect.fail(unavailable("http-status", `HTTP ${response.status} ${refusalOf(body)}`))
          )
        ),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => unavailable("timeout", `no answer within ${Duration.format(timeout)}`)
        }),
        Effect.withSpan("WeChatClient.call", { attributes: { appId, path: request.path, proxy: true } })
      )
    }

    return WeChatClient.of({ call })
  })

/**
 * The client in proxy mode (`makeProxy`) over the `HttpClient` in context:
 * an Effect business server that needs no token at all.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerProxy = (options: ProxyOptions): Layer.Layer<WeChatClient, never, HttpClient.HttpClient> =>
  Layer.effect(WeChatClient, makeProxy(options))
