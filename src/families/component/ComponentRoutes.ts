/**
 * The handlers of the third-party platform routes: the component's own
 * (token, pre-auth code, code exchange, authorizer pages), its authorizers'
 * (token, refresh, jsapi ticket, JS-SDK config) and WeChat's push intake,
 * over the `ComponentToken` service.
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Clock, Effect, Layer, Option } from "effect"
import type { AccessTokenError } from "../../AccessToken.js"
import { BadRequest, detail } from "../../api/ApiError.js"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import * as FamilyRoutes from "../../FamilyRoutes.js"
import { answer, DEFAULT_PAGE, expiresIn, pageUrlError, toApiError } from "../../internal/credentialAnswer.js"
import * as ProxyTarget from "../../ProxyTarget.js"
import * as Component from "./Component.js"
import * as ComponentEvents from "./ComponentEvents.js"
import { ComponentToken } from "./ComponentToken.js"

// An authorization code WeChat refuses is the caller's to fix, not an outage.
const exchangeError = (error: AccessTokenError) =>
  Component.isErrcode(error, 61009, 61010)
    ? new BadRequest(detail("invalid_authorization_code", error.message))
    : toApiError(error)

const ComponentsLive = HttpApiBuilder.group(
  TokenServerApi,
  "components",
  (handlers) =>
    Effect.map(ComponentToken, (components) =>
      handlers
        .handle(
          "componentAccessToken",
          ({ path }) => answer(components.get(path.componentAppId), (value) => ({ access_token: value }))
        )
        .handle("preAuthCode", ({ path, payload }) =>
          components.preAuthCode(path.componentAppId, payload.redirect_uri).pipe(
            Effect.mapError(toApiError),
            Effect.map((code) => ({
              pre_auth_code: code.preAuthCode,
              expires_in: code.expiresInSeconds,
              ...(code.authorizationUrl === undefined ? {} : { authorization_url: code.authorizationUrl })
            }))
          ))
        .handle("authorize", ({ path, payload }) =>
          components.exchange(path.componentAppId, payload.authorization_code).pipe(
            Effect.mapError(exchangeError),
            Effect.map((granted) => ({ authorizer_app_id: granted.authorizerAppId, func_info: granted.funcInfo }))
          ))
        .handle("authorizers", ({ path, urlParams }) =>
          Effect.gen(function*() {
            const page = yield* components.authorizers(path.componentAppId, {
              cursor: urlParams.cursor,
              limit: urlParams.limit ?? DEFAULT_PAGE
            }).pipe(Effect.mapError(toApiError))
            const now = yield* Clock.currentTimeMillis
            return {
              authorizers: page.authorizers.map((entry) => ({
                app_id: entry.appId,
                valid: entry.valid,
                ...expiresIn(entry.expiresAt, now)
              })),
              ...(page.nextCursor === undefined ? {} : { next_cursor: page.nextCursor })
            }
          })))
)

const AuthorizersLive = HttpApiBuilder.group(
  TokenServerApi,
  "authorizers",
  (handlers) =>
    Effect.map(ComponentToken, (components) =>
      handlers
        .handle("accessToken", ({ path }) =>
          answer(
            components.authorizerToken(path.componentAppId, path.authorizerAppId),
            (value) => ({ access_token: value })
          ))
        .handle("refreshAccessToken", ({ path, payload }) =>
          answer(
            components.refreshAuthorizerToken(path.componentAppId, path.authorizerAppId, payload.stale_token),
            (value) => ({ access_token: value })
          ))
        .handle("jsapiTicket", ({ path }) =>
          answer(
            components.authorizerJsapiTicket(path.componentAppId, path.authorizerAppId),
            (value) => ({ ticket: value })
          ))
        .handle("jsSdkConfig", ({ path, payload }) =>
          components.jsSdkConfig(path.componentAppId, path.authorizerAppId, payload.url).pipe(
            Effect.mapError((error) => error._tag === "InvalidPageUrl" ? pageUrlError(error) : toApiError(error))
          )))
)

const EventsLive = HttpApiBuilder.group(
  TokenServerApi,
  "componentEvents",
  (handlers) =>
    Effect.map(
      ComponentToken,
      (components) =>
        handlers.handle("componentEvents", ({ path, urlParams }) =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
            request.text.pipe(
              Effect.mapError(() =>
                new BadRequest(detail("invalid_push", "the push body could not be read"))
              ),
              Effect.flatMap((body) => ComponentEvents.receive(components, path.componentAppId, urlParams, body))
            )))
    )
)

/**
 * Third-party platforms (开放平台第三方平台): the component's routes, its
 * authorizers' (`/v1/components/{componentAppId}/authorizers/{authorizerAppId}/…`,
 * proxied to WeChat with the authorizer's token, a client key scoped by the
 * component) and WeChat's pushes. A server with no component configured
 * serves them all the same: every component is unknown (`404`).
 *
 * @since 0.3.0
 * @category families
 */
export const routes = FamilyRoutes.make({
  name: "component",
  handlers: Layer.merge(ComponentsLive, AuthorizersLive),
  intake: EventsLive,
  // The component's routes, its authorizers' included, are scoped by the component.
  scopeOf: (params) => params["componentAppId"],
  proxy: (upstreams) =>
    Effect.map(ComponentToken, (tokens) =>
      // The authorizers of a component change at run time: counted under their component.
      ProxyTarget.underParent({
        group: TokenServerApi.groups.authorizers,
        parent: "componentAppId",
        child: "authorizerAppId",
        label: "authorizers",
        // Configured components and those the admin API added at run time.
        knows: (componentAppId) => Option.isSome(tokens.credentials(componentAppId)),
        baseUrl: upstreams.wechat,
        token: tokens.authorizerToken,
        replace: tokens.refreshAuthorizerToken
      }))
})
