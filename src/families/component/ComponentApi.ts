/**
 * The third-party platform (开放平台第三方平台) endpoints, over
 * `@effect/platform`'s `HttpClient`: the component token from the latest
 * verify ticket, asking WeChat to resume ticket pushes, pre-auth codes, the
 * exchange of an authorization code, authorizer tokens from refresh tokens,
 * and the paged authorizer list (the way back to a lost refresh token).
 * Every body is decoded with `effect/Schema` as in `WeChatApi`; the 61xxx
 * errcodes become errors that tell an operator what happened.
 *
 * @since 0.3.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Duration, Effect, Layer, Redacted, Schema } from "effect"
import type { AppId } from "../../AppId.js"
import type { Issued } from "../../CredentialFamily.js"
import * as Upstream from "../../internal/upstream.js"
import { type CallSite, WeChatApiError, type WeChatError } from "../../WeChatError.js"
import { decodeBody } from "../officialAccount/WeChatApi.js"
import type { ComponentCredentials } from "./ComponentConfig.js"

/**
 * Where WeChat is and how long a call may take.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Default `https://api.weixin.qq.com`; the emulator's URL in tests. A trailing `/` is ignored. */
  readonly baseUrl?: string
  /** Each upstream call gives up after this long; default 10 s. */
  readonly timeout?: Duration.DurationInput
}

/**
 * What `api_query_auth` answers for an authorization code.
 *
 * @since 0.3.0
 * @category models
 */
export interface Authorization {
  readonly authorizerAppId: string
  readonly accessToken: Issued
  readonly refreshToken: string
  /** The permission sets (权限集) the merchant granted, by id. */
  readonly funcInfo: ReadonlyArray<number>
}

/**
 * What `api_authorizer_token` answers: the token and the refresh token to keep from now on.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuthorizerToken {
  readonly accessToken: Issued
  readonly refreshToken: string
}

/**
 * One page of `api_get_authorizer_list`.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuthorizerPage {
  readonly totalCount: number
  readonly authorizers: ReadonlyArray<{ readonly authorizerAppId: string; readonly refreshToken: string }>
}

/**
 * The largest page `api_get_authorizer_list` answers, and so the largest
 * page of `ComponentToken.authorizers`, which mirrors it.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_PAGE = 500

/**
 * @since 0.3.0
 * @category models
 */
export interface ComponentApiShape {
  readonly fetchComponentToken: (
    component: ComponentCredentials,
    verifyTicket: string
  ) => Effect.Effect<Issued, WeChatError>
  /** Asks WeChat to push a verify ticket again (and to resume the 10-minute pushes). */
  readonly startPushTicket: (component: ComponentCredentials) => Effect.Effect<void, WeChatError>
  /** A fresh, single-use pre-auth code: never cached. */
  readonly createPreAuthCode: (componentAppId: AppId, componentToken: string) => Effect.Effect<Issued, WeChatError>
  readonly queryAuth: (
    componentAppId: AppId,
    componentToken: string,
    authorizationCode: string
  ) => Effect.Effect<Authorization, WeChatError>
  readonly fetchAuthorizerToken: (
    componentAppId: AppId,
    componentToken: string,
    authorizerAppId: string,
    refreshToken: string
  ) => Effect.Effect<AuthorizerToken, WeChatError>
  readonly listAuthorizers: (
    componentAppId: AppId,
    componentToken: string,
    offset: number,
    count: number
  ) => Effect.Effect<AuthorizerPage, WeChatError>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class ComponentApi extends Context.Tag("effect-wechat-token/ComponentApi")<ComponentApi, ComponentApiShape>() {}

const Lifetime = Upstream.Lifetime
const Value = Upstream.CredentialValue

const ComponentTokenBody = Schema.Struct({ component_access_token: Value, expires_in: Lifetime })
const OkBody = Schema.Struct({ errcode: Schema.optional(Schema.Literal(0)), errmsg: Schema.optional(Schema.String) })
const PreAuthCodeBody = Schema.Struct({ pre_auth_code: Value, expires_in: Lifetime })
const FuncInfo = Schema.Array(Schema.Struct({ funcscope_category: Schema.Struct({ id: Schema.Number }) }))
const QueryAuthBody = Schema.Struct({
  authorization_info: Schema.Struct({
    authorizer_appid: Value,
    authorizer_access_token: Value,
    expires_in: Lifetime,
    authorizer_refresh_token: Value,
    func_info: Schema.optionalWith(FuncInfo, { default: () => [] })
  })
})
const AuthorizerTokenBody = Schema.Struct({
  authorizer_access_token: Value,
  expires_in: Lifetime,
  authorizer_refresh_token: Value
})
const AuthorizerListBody = Schema.Struct({
  total_count: Schema.Number,
  list: Schema.Array(Schema.Struct({ authorizer_appid: Value, refresh_token: Value }))
})

const advice: Readonly<Record<number, string>> = {
  61003: "the merchant no longer authorizes this component",
  61004: "the caller IP is not among the component's whitelisted IPs: add it in the open platform console",
  61005: "the component verify ticket expired",
  61006: "the component verify ticket is invalid",
  61009: "the authorization code is invalid or already used",
  61010: "the authorization code expired",
  61011: "WeChat does not know this component: check WECHAT_COMPONENTS",
  61023: "the authorizer's refresh token is no longer valid"
}

/**
 * The third-party platform's reading of an errcode: 61xxx codes get a
 * message naming the component (or authorizer) and what it means. Never
 * holds a secret.
 *
 * @since 0.3.0
 * @category errors
 */
export const componentError = (subject: string) => (error: WeChatError): WeChatError =>
  error._tag === "WeChatApiError" && advice[error.errcode] !== undefined
    ? new WeChatApiError({ errcode: error.errcode, errmsg: `${subject}: ${advice[error.errcode]} (${error.errmsg})` })
    : error

const funcInfoIds = (info: typeof FuncInfo.Type): ReadonlyArray<number> =>
  info.map((entry) => entry.funcscope_category.id)

/**
 * Builds the service over the `HttpClient` in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<ComponentApiShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const baseUrl = (options.baseUrl ?? "https://api.weixin.qq.com").replace(/\/+$/, "")
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const execute = yield* Upstream.makeSend(timeout)
    // Every component endpoint is a JSON POST; the component token rides in the query.
    const post = <A, I>(
      endpoint: string,
      body: Record<string, unknown>,
      success: Schema.Schema<A, I>,
      context: { readonly appId: string; readonly site: CallSite },
      componentToken?: string
    ) =>
      execute(
        endpoint,
        HttpClientRequest.post(`${baseUrl}/cgi-bin/component/${endpoint}`).pipe(
          HttpClientRequest.setUrlParams(
            componentToken === undefined ? {} : { component_access_token: componentToken }
          ),
          HttpClientRequest.bodyUnsafeJson(body)
        )
      ).pipe(
        Effect.flatMap((answer) => decodeBody(success)(answer, context)),
        Effect.mapError(componentError(context.appId))
      )

    return ComponentApi.of({
      fetchComponentToken: (component, verifyTicket) =>
        post(
          "api_component_token",
          {
            component_appid: component.componentAppId,
            component_appsecret: Redacted.value(component.secret),
            component_verify_ticket: verifyTicket
          },
          ComponentTokenBody,
          { appId: component.componentAppId, site: "token-endpoint" }
        ).pipe(
          Effect.map((body) => ({ value: body.component_access_token, expiresInSeconds: body.expires_in }))
        ),
      startPushTicket: (component) =>
        post(
          "api_start_push_ticket",
          {
            component_appid: component.componentAppId,
            component_secret: Redacted.value(component.secret)
          },
          OkBody,
          { appId: component.componentAppId, site: "token-endpoint" }
        ).pipe(Effect.asVoid),
      createPreAuthCode: (componentAppId, componentToken) =>
        post(
          "api_create_preauthcode",
          { component_appid: componentAppId },
          PreAuthCodeBody,
          { appId: componentAppId, site: "api-call" },
          componentToken
        ).pipe(Effect.map((body) => ({ value: body.pre_auth_code, expiresInSeconds: body.expires_in }))),
      queryAuth: (componentAppId, componentToken, authorizationCode) =>
        post(
          "api_query_auth",
          { component_appid: componentAppId, authorization_code: authorizationCode },
          QueryAuthBody,
          { appId: componentAppId, site: "api-call" },
          componentToken
        ).pipe(Effect.map(({ authorization_info: info }) => ({
          authorizerAppId: info.authorizer_appid,
          accessToken: { value: info.authorizer_access_token, expiresInSeconds: info.expires_in },
          refreshToken: info.authorizer_refresh_token,
          funcInfo: funcInfoIds(info.func_info)
        }))),
      fetchAuthorizerToken: (componentAppId, componentToken, authorizerAppId, refreshToken) =>
        post(
          "api_authorizer_token",
          {
            component_appid: componentAppId,
            authorizer_appid: authorizerAppId,
            authorizer_refresh_token: refreshToken
          },
          AuthorizerTokenBody,
          { appId: `${componentAppId}:${authorizerAppId}`, site: "api-call" },
          componentToken
        ).pipe(Effect.map((body) => ({
          accessToken: { value: body.authorizer_access_token, expiresInSeconds: body.expires_in },
          refreshToken: body.authorizer_refresh_token
        }))),
      listAuthorizers: (componentAppId, componentToken, offset, count) =>
        post(
          "api_get_authorizer_list",
          { component_appid: componentAppId, offset, count: Math.min(count, MAX_PAGE) },
          AuthorizerListBody,
          { appId: componentAppId, site: "api-call" },
          componentToken
        ).pipe(Effect.map((body) => ({
          totalCount: body.total_count,
          authorizers: body.list.map((entry) => ({
            authorizerAppId: entry.authorizer_appid,
            refreshToken: entry.refresh_token
          }))
        })))
    })
  })

/**
 * The service over the `HttpClient` in context.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ComponentApi, never, HttpClient.HttpClient> =>
  Layer.effect(ComponentApi, make(options))
