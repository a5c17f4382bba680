/**
 * The routes of official accounts and mini programs: the token (the hot
 * path), compare-and-refresh, the jsapi ticket and a signed `wx.config`,
 * over the engine; and the proxy target `/v1/apps/{appId}/wechat/{path}`.
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import * as FamilyRoutes from "../../FamilyRoutes.js"
import { accessTokenBody, answer, NO_STORE, pageUrlError, toApiError } from "../../internal/credentialAnswer.js"
import * as JsSdk from "../../JsSdk.js"
import * as ProxyTarget from "../../ProxyTarget.js"
import { TokenEngine } from "../../TokenEngine.js"

const TokensLive = HttpApiBuilder.group(TokenServerApi, "tokens", (handlers) =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    const accessToken = (credential: Effect.Effect<Credential, AccessTokenError>) =>
      Effect.flatMap(Effect.mapError(credential, toApiError), (token) =>
        Effect.map(Clock.currentTimeMillis, (now) => accessTokenBody(token, now)))
    return handlers
      // The hot path: the engine answers from memory; nothing here reads the
      // store, logs, or runs the success schema (the body is already its
      // encoded form: two strings and a number), which `handleRaw` skips.
      .handleRaw("accessToken", ({ path }) =>
        Effect.map(accessToken(engine.get(path.appId)), (body) =>
          HttpServerResponse.unsafeJson(body, { headers: NO_STORE })))
      .handle("refreshAccessToken", ({ path, payload }) =>
        accessToken(engine.refresh(path.appId, payload.stale_token)))
      .handle("jsapiTicket", ({ path }) =>
        answer(engine.get(path.appId, "jsapi_ticket"), (ticket) => ({ ticket })))
      .handle("jsSdkConfig", ({ path, payload }) =>
        JsSdk.config(path.appId, payload.url).pipe(
          Effect.provideService(TokenEngine, engine),
          Effect.mapError((error) =>
            error._tag === "InvalidPageUrl" ? pageUrlError(error) : toApiError(error)
          )
        ))
  }))

/**
 * Official accounts and mini programs: `/v1/apps/{appId}/…`, proxied to WeChat.
 *
 * @since 0.3.0
 * @category families
 */
export const routes = FamilyRoutes.make({
  name: "officialAccount",
  handlers: TokensLive,
  scopeOf: (params) => params["appId"],
  proxy: (upstreams) =>
    Effect.map(TokenEngine, (engine) =>
      ProxyTarget.make({
        group: TokenServerApi.groups.tokens,
        ownerOf: (params) => params["appId"] ?? "",
        // Configured official accounts only: a component or an authorizer is an owner too, of other kinds.
        known: (owner) => engine.servable.some((key) => key.appId === owner && key.kind === "access_token"),
        baseUrl: upstreams.wechat,
        token: (owner) => engine.get(owner),
        replace: (owner, stale) => engine.refresh(owner, stale)
      }))
})
