/**
 * Calls any WeChat API with the app's access token injected, and recovers
 * from a token WeChat no longer accepts: on 40001 / 40014 / 42001 it asks
 * `AccessToken` for a compare-and-refresh and replays the call once with the
 * new token. Works over the local engine (`TokenLayer`) and over a central
 * server (`RemoteTokenLayer`) alike.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Context, Effect, Layer, type Schema } from "effect"
import { AccessToken, type AccessTokenError } from "./AccessToken.js"
import type { AppId } from "./AppId.js"
import * as WeChatApi from "./WeChatApi.js"
import type { WeChatError } from "./WeChatError.js"

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
