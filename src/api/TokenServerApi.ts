/**
 * The HTTP API of the central token server, as an `HttpApi` value: the
 * server implements it, the OpenAPI document at `/openapi.json` is derived
 * from it, and a client can be derived from it too.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { AppId } from "../AppId.js"
import { version } from "../internal/version.js"
import { AgentKey, CorpId } from "../OwnerId.js"
import { CredentialKind } from "../Token.js"
import { AdminGroup } from "./AdminApi.js"
import {
  BadRequest,
  ErrorDetail,
  MethodNotAllowed,
  NotFound,
  PayloadTooLarge,
  RequestTimeout,
  TokenUnavailable,
  Unauthorized
} from "./ApiError.js"
import { ClientAuth } from "./ClientAuth.js"
import * as GatewayApi from "./GatewayApi.js"
import { JsSdkConfig, WeComJsSdkConfig } from "./JsSdkConfig.js"
import * as ProxyApi from "./ProxyApi.js"

const appId = AppId.annotations({ description: "A WeChat app id: \"wx\" followed by 16 lowercase hex characters" })

const corpId = CorpId.annotations({
  description: "A WeCom corp id: \"ww\" or \"wx\" followed by 16 lowercase hex characters"
})

const agent = AgentKey.annotations({
  description:
    "The WeCom app: its AgentId (digits), or the label of a special secret such as contacts ([a-z0-9_-]{1,32})"
})

// A 400 names the field and the rule it broke, and never echoes the value:
// a body may hold 16 KiB of anything.
const kindOf = (actual: unknown): string =>
  actual === null
    ? "null"
    : Array.isArray(actual)
    ? "an array"
    : typeof actual === "object"
    ? "an object"
    : `a ${typeof actual}`

const lengthOf = (actual: unknown): string => typeof actual === "string" ? ` (got ${actual.length})` : ""

const StringField = Schema.String.annotations({ message: (issue) => `must be a string, got ${kindOf(issue.actual)}` })

const ExpiresIn = Schema.Int.pipe(Schema.nonNegative()).annotations({
  identifier: "ExpiresIn",
  title: "ExpiresIn",
  description: "Whole seconds the caller may still use the value: never past the moment WeChat invalidates it " +
    "(a replaced token lives 5 more minutes, and the server plans for that)"
})

const ExpiresAt = Schema.String.annotations({
  identifier: "ExpiresAt",
  title: "ExpiresAt",
  description: "The same moment as an ISO-8601 UTC timestamp, e.g. 2025-01-01T12:00:00.000Z",
  jsonSchema: { format: "date-time" }
})

const StaleToken = StringField.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(4096, { message: (issue) => `at most 4096 characters${lengthOf(issue.actual)}` })
).annotations({ identifier: "StaleToken", title: "StaleToken", description: "The token WeChat rejected" })

const PageUrl = StringField.pipe(
  Schema.maxLength(4096, { message: (issue) => `at most 4096 characters${lengthOf(issue.actual)}` })
).annotations({
  identifier: "PageUrl",
  title: "PageUrl",
  description: "The full URL of the page that calls wx.config (location.href); any #fragment is ignored"
})

// Request bodies are decoded leniently (unknown fields are ignored), which
// the document says with `additionalProperties: true`.
const requestBody = (identifier: string) => ({
  identifier,
  message: (issue: { readonly actual: unknown }) => `the body must be a JSON object, got ${kindOf(issue.actual)}`,
  jsonSchema: { additionalProperties: true }
})

// Every credential answer says how long it may be used, both ways.
const lifetime = { expires_in: ExpiresIn, expires_at: ExpiresAt }

/**
 * `GET /v1/apps/{appId}/access-token` and the refresh route answer this.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AccessTokenResponse = Schema.Struct({ access_token: Schema.String, ...lifetime }).annotations({
  identifier: "AccessTokenResponse"
})

/**
 * The body of `POST /v1/apps/{appId}/access-token/refresh`: the token WeChat
 * rejected (40001/40014/42001). Only that token is replaced; if another caller
 * already replaced it, the current one comes back without an upstream fetch.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RefreshRequest = Schema.Struct({ stale_token: StaleToken }).annotations(requestBody("RefreshRequest"))

/**
 * @since 0.1.0
 * @category schemas
 */
export const JsapiTicketResponse = Schema.Struct({ ticket: Schema.String, ...lifetime }).annotations({
  identifier: "JsapiTicketResponse"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const JsSdkConfigRequest = Schema.Struct({ url: PageUrl }).annotations(requestBody("JsSdkConfigRequest"))

/**
 * One credential in `/readyz`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CredentialReadiness = Schema.Struct({
  app_id: Schema.String,
  kind: CredentialKind,
  valid: Schema.Boolean,
  expires_in: Schema.optional(ExpiresIn),
  last_error: Schema.optional(ErrorDetail)
}).annotations({ identifier: "CredentialReadiness" })

const CredentialCount = Schema.Int.annotations({
  identifier: "CredentialCount",
  title: "CredentialCount",
  description: "A number of credentials"
})

/**
 * Per kind, how many credentials the server holds and how many of them are
 * valid: in `/readyz` once the server holds too many to list each.
 *
 * @since 0.3.0
 * @category schemas
 */
export const KindReadiness = Schema.Struct({
  kind: CredentialKind,
  total: CredentialCount,
  valid: CredentialCount
}).annotations({ identifier: "KindReadiness" })

const readinessFields = {
  ready: Schema.Boolean,
  store: Schema.Struct({
    healthy: Schema.Boolean,
    error: Schema.optional(Schema.String).annotations({
      description: "Why the store cannot keep what it is given (ops key only)"
    })
  }).annotations({ identifier: "StoreHealth" }),
  credentials: Schema.optional(
    Schema.Array(CredentialReadiness).annotations({
      description:
        "With an ops key: every credential, up to 1,000 of them; beyond that, at most 100 of the invalid ones, with `summary` counting all"
    })
  ),
  summary: Schema.optional(
    Schema.Array(KindReadiness).annotations({
      description: "Per kind, how many credentials there are and how many are valid: without an ops key, or past 1,000"
    })
  )
}

/**
 * `/readyz` when every configured app holds a valid access token.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ready = Schema.Struct(readinessFields).annotations({ identifier: "Readiness" })

/**
 * `/readyz` with 503: some app has no valid access token.
 *
 * @since 0.1.0
 * @category models
 */
export class NotReady extends Schema.Class<NotReady>("NotReady")(
  readinessFields,
  HttpApiSchema.annotations({ status: 503, description: "Some app has no valid access token" })
) {}

/**
 * What a group of credential routes needs to know about its owners.
 *
 * @since 0.3.0
 * @category models
 */
export interface CredentialRoutes<
  Name extends string,
  Path extends Schema.Schema.Any,
  Config extends Schema.Schema.Any
> {
  readonly name: Name
  /** The route pattern with `:param` segments, e.g. `/v1/apps/:appId`. */
  readonly prefix: `/${string}`
  /** The schema of those parameters. */
  readonly path: Path & HttpApiEndpoint.HttpApiEndpoint.ValidatePath<Path>
  /** How summaries name the owner: "an app". */
  readonly owner: string
  /** What `jssdk-config` answers, and how its summary says so. */
  readonly jsSdkConfig: Config
  readonly jsSdkConfigSummary: string
  readonly description: string
}

/**
 * The routes every owner of an access token answers under its path prefix
 * (an app, a WeCom app, an authorizer): the token, compare-and-refresh, the
 * jsapi ticket and a signed JS-SDK config, with the errors and the key check
 * they share. A group adds what is its own (WeCom's agent ticket) after these.
 *
 * @since 0.3.0
 * @category constructors
 */
export const credentialGroup = <
  const Name extends string,
  Path extends Schema.Schema.Any,
  Config extends Schema.Schema.Any
>(routes: CredentialRoutes<Name, Path, Config>) =>
  HttpApiGroup.make(routes.name)
    .add(
      HttpApiEndpoint.get("accessToken", `${routes.prefix}/access-token`)
        .setPath(routes.path)
        .addSuccess(AccessTokenResponse)
        .annotate(OpenApi.Summary, `The current access token of ${routes.owner}`)
    )
    .add(
      HttpApiEndpoint.post("refreshAccessToken", `${routes.prefix}/access-token/refresh`)
        .setPath(routes.path)
        .setPayload(RefreshRequest)
        .addSuccess(AccessTokenResponse)
        .annotate(OpenApi.Summary, `Compare-and-refresh after WeChat rejected a token of ${routes.owner}`)
    )
    .add(
      HttpApiEndpoint.get("jsapiTicket", `${routes.prefix}/jsapi-ticket`)
        .setPath(routes.path)
        .addSuccess(JsapiTicketResponse)
        .annotate(OpenApi.Summary, `The current JS-SDK (jsapi) ticket of ${routes.owner}, for wx.config`)
    )
    .add(
      HttpApiEndpoint.post("jsSdkConfig", `${routes.prefix}/jssdk-config`)
        .setPath(routes.path)
        .setPayload(JsSdkConfigRequest)
        .addSuccess(routes.jsSdkConfig)
        .annotate(OpenApi.Summary, routes.jsSdkConfigSummary)
    )
    .addError(BadRequest)
    .addError(NotFound)
    .addError(TokenUnavailable)
    .middleware(ClientAuth)
    .annotate(OpenApi.Description, `${routes.description}; every route needs \`Authorization: Bearer <client key>\``)

/**
 * The routes business servers call, all behind `ClientAuth`.
 *
 * @since 0.1.0
 * @category models
 */
export class TokensGroup extends credentialGroup({
  name: "tokens",
  prefix: "/v1/apps/:appId",
  path: Schema.Struct({ appId }),
  owner: "an app",
  jsSdkConfig: JsSdkConfig,
  jsSdkConfigSummary: "A signed wx.config for a page URL",
  description: "What business servers ask for"
}) {}

const WeComPath = Schema.Struct({ corpId, agent })

/**
 * The WeCom (企业微信) routes, per configured app `corpid/agent`, all behind `ClientAuth`.
 *
 * @since 0.2.0
 * @category models
 */
export class WeComGroup extends credentialGroup({
  name: "wecom",
  prefix: "/v1/wecom/:corpId/agents/:agent",
  path: WeComPath,
  owner: "a WeCom app (the corp's ticket for jsapi-ticket)",
  jsSdkConfig: WeComJsSdkConfig,
  jsSdkConfigSummary: "A signed wx.config and (for an AgentId) wx.agentConfig for a page URL",
  description: "WeCom apps configured in `WECOM_APPS`"
}).add(
  HttpApiEndpoint.get("agentTicket", "/v1/wecom/:corpId/agents/:agent/agent-ticket")
    .setPath(WeComPath)
    .addSuccess(JsapiTicketResponse)
    .annotate(OpenApi.Summary, "The agent's ticket (ticket/get?type=agent_config), for wx.agentConfig")
) {}

const AuthorizerPath = Schema.Struct({ componentAppId: appId, authorizerAppId: appId })

/**
 * Per account a merchant authorized to a configured third-party platform
 * (component): its token, compare-and-refresh, jsapi ticket and JS-SDK
 * config, all behind `ClientAuth`.
 *
 * @since 0.3.0
 * @category models
 */
export class AuthorizersGroup extends credentialGroup({
  name: "authorizers",
  prefix: "/v1/components/:componentAppId/authorizers/:authorizerAppId",
  path: AuthorizerPath,
  owner: "an account authorized to a component",
  jsSdkConfig: JsSdkConfig,
  jsSdkConfigSummary: "A signed wx.config for a page of the authorizer (appId = the authorizer)",
  description: "Accounts merchants authorized to a third-party platform configured in `WECHAT_COMPONENTS`"
}) {}

const ComponentPath = Schema.Struct({ componentAppId: appId })

const CodeField = StringField.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(512, { message: (issue) => `at most 512 characters${lengthOf(issue.actual)}` })
).annotations({
  identifier: "AuthorizationCode",
  title: "AuthorizationCode",
  description: "The auth_code WeChat appended to the redirect URL after the merchant authorized"
})

/**
 * The body of `POST /v1/components/{componentAppId}/pre-auth-code`: with a
 * `redirect_uri`, the answer also holds the authorization page's URL.
 *
 * @since 0.3.0
 * @category schemas
 */
export const PreAuthCodeRequest = Schema.Struct({
  redirect_uri: Schema.optional(
    StringField.pipe(
      Schema.pattern(/^https?:\/\/\S+$/, { message: () => "must be an http(s) URL" }),
      Schema.maxLength(2048, { message: (issue) => `at most 2048 characters${lengthOf(issue.actual)}` })
    ).annotations({
      identifier: "RedirectUri",
      title: "RedirectUri",
      description: "Where WeChat (or WeCom) sends the admin back after authorizing, with the auth_code appended"
    })
  )
}).annotations(requestBody("PreAuthCodeRequest"))

/**
 * A fresh, single-use pre-auth code (never cached).
 *
 * @since 0.3.0
 * @category schemas
 */
export const PreAuthCodeResponse = Schema.Struct({
  pre_auth_code: Schema.String,
  expires_in: ExpiresIn,
  authorization_url: Schema.optional(Schema.String)
}).annotations({ identifier: "PreAuthCodeResponse" })

/**
 * The body of `POST /v1/components/{componentAppId}/authorizations`: the
 * `auth_code` WeChat appended to the redirect after the merchant authorized.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AuthorizationRequest = Schema.Struct({ authorization_code: CodeField }).annotations(
  requestBody("AuthorizationRequest")
)

/**
 * @since 0.3.0
 * @category schemas
 */
export const AuthorizationResponse = Schema.Struct({
  authorizer_app_id: Schema.String,
  func_info: Schema.Array(Schema.Number)
}).annotations({ identifier: "AuthorizationResponse" })

/**
 * `?cursor&limit` of the authorizer list.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AuthorizersQuery = Schema.Struct({
  cursor: Schema.optional(appId),
  limit: Schema.optional(
    Schema.NumberFromString.pipe(
      Schema.int({ message: () => "must be a whole number" }),
      Schema.between(1, 500, { message: () => "must be between 1 and 500" })
    )
  )
})

/**
 * One page of a component's authorizers, ordered by app id.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AuthorizersResponse = Schema.Struct({
  authorizers: Schema.Array(
    Schema.Struct({ app_id: Schema.String, valid: Schema.Boolean, expires_in: Schema.optional(ExpiresIn) })
  ),
  next_cursor: Schema.optional(Schema.String)
}).annotations({ identifier: "AuthorizersResponse" })

/**
 * A third-party platform's own routes, all behind `ClientAuth`.
 *
 * @since 0.3.0
 * @category models
 */
export class ComponentsGroup extends HttpApiGroup.make("components")
  .add(
    HttpApiEndpoint.get("componentAccessToken", "/v1/components/:componentAppId/access-token")
      .setPath(ComponentPath)
      .addSuccess(AccessTokenResponse)
      .annotate(OpenApi.Summary, "The current component_access_token")
  )
  .add(
    HttpApiEndpoint.post("preAuthCode", "/v1/components/:componentAppId/pre-auth-code")
      .setPath(ComponentPath)
      .setPayload(PreAuthCodeRequest)
      .addSuccess(PreAuthCodeResponse)
      .annotate(OpenApi.Summary, "A fresh single-use pre-auth code (and the authorization page URL)")
  )
  .add(
    HttpApiEndpoint.post("authorize", "/v1/components/:componentAppId/authorizations")
      .setPath(ComponentPath)
      .setPayload(AuthorizationRequest)
      .addSuccess(AuthorizationResponse)
      .annotate(OpenApi.Summary, "Exchanges an authorization code (redirect flow); the refresh token is stored")
  )
  .add(
    HttpApiEndpoint.get("authorizers", "/v1/components/:componentAppId/authorizers")
      .setPath(ComponentPath)
      .setUrlParams(AuthorizersQuery)
      .addSuccess(AuthorizersResponse)
      .annotate(OpenApi.Summary, "A page of the accounts authorized to the component (limit 1-500, default 100)")
  )
  .addError(BadRequest)
  .addError(NotFound)
  .addError(TokenUnavailable)
  .middleware(ClientAuth)
  .annotate(
    OpenApi.Description,
    "Third-party platforms configured in `WECHAT_COMPONENTS`; every route needs `Authorization: Bearer <client key>`"
  )
{}

/**
 * The query WeChat signs a push with (safe mode).
 *
 * @since 0.3.0
 * @category schemas
 */
export const PushQuery = Schema.Struct({
  timestamp: Schema.String,
  nonce: Schema.String,
  msg_signature: Schema.String,
  encrypt_type: Schema.optional(Schema.String),
  signature: Schema.optional(Schema.String)
})

/**
 * WeChat's authorization-event push (verify tickets, authorizations,
 * revocations): no client key, checked by `msg_signature` instead.
 *
 * @since 0.3.0
 * @category models
 */
export class ComponentEventsGroup extends HttpApiGroup.make("componentEvents")
  .add(
    HttpApiEndpoint.post("componentEvents", "/wechat/components/:componentAppId/events")
      .setPath(ComponentPath)
      .setUrlParams(PushQuery)
      .addSuccess(HttpApiSchema.Text())
      .annotate(
        OpenApi.Summary,
        "WeChat's authorization-event URL (XML, safe mode): answers the text `success` once the event is stored"
      )
  )
  .addError(BadRequest)
  .addError(Unauthorized)
  .addError(TokenUnavailable)
  .annotate(
    OpenApi.Description,
    "Called by WeChat, not by business servers: no client key; a push whose msg_signature does not verify changes nothing and gets 401"
  )
{}

const SuitePath = Schema.Struct({
  suiteId: Schema.String.annotations({ description: "A suite id configured in `WECOM_SUITES`" })
})

/**
 * WeCom's command URL (指令回调URL) of a suite: the pushes (suite tickets,
 * installs, uninstalls) and the URL verification, checked by `msg_signature`.
 *
 * @since 0.3.0
 * @category models
 */
export class SuiteEventsGroup extends HttpApiGroup.make("suiteEvents")
  .add(
    HttpApiEndpoint.post("suiteEvents", "/wecom/suites/:suiteId/events")
      .setPath(SuitePath)
      .setUrlParams(PushQuery)
      .addSuccess(HttpApiSchema.Text())
      .annotate(
        OpenApi.Summary,
        "WeCom's command URL (XML, encrypted): answers the text `success` once the event is stored (an install's permanent code included)"
      )
  )
  .add(
    HttpApiEndpoint.get("suiteUrlVerification", "/wecom/suites/:suiteId/events")
      .setPath(SuitePath)
      .setUrlParams(Schema.Struct({ ...PushQuery.fields, echostr: Schema.String }))
      .addSuccess(HttpApiSchema.Text())
      .annotate(OpenApi.Summary, "WeCom's URL verification: answers the decrypted `echostr`")
  )
  .addError(BadRequest)
  .addError(Unauthorized)
  .addError(TokenUnavailable)
  .annotate(
    OpenApi.Description,
    "Called by WeCom, not by business servers: no client key; a push whose msg_signature does not verify changes nothing and gets 401"
  )
{}

const SuiteCorpPath = Schema.Struct({
  suiteId: SuitePath.fields.suiteId,
  corpId: Schema.String.annotations({ description: "A corp that installed the suite's app (its corp id)" })
})

/**
 * The body of `POST /v1/wecom-suites/{suiteId}/pre-auth-code`: with a
 * `redirect_uri`, the answer also holds WeCom's install page; `app_ids` and
 * `auth_type` are set on the code (`set_session_info`) before it is answered.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuiteInstallRequest = Schema.Struct({
  redirect_uri: PreAuthCodeRequest.fields.redirect_uri,
  state: Schema.optional(
    StringField.pipe(
      Schema.pattern(/^[A-Za-z0-9]{0,128}$/, { message: () => "at most 128 of a-z A-Z 0-9" })
    ).annotations({ description: "Sent back with the auth_code: a-z A-Z 0-9, 128 at most (WeCom's rule)" })
  ),
  app_ids: Schema.optional(
    Schema.Array(
      Schema.Int.pipe(Schema.positive({ message: () => "must be a positive whole number" })).annotations({
        identifier: "SuiteAppId",
        title: "SuiteAppId",
        description: "An app of the suite, by its id in WeCom's console"
      })
    ).pipe(
      Schema.maxItems(100, { message: () => "at most 100 app ids" })
    ).annotations({ description: "The suite's apps the install may add (set_session_info appid); all when absent" })
  ),
  auth_type: Schema.optional(
    Schema.Literal(0, 1).annotations({ description: "0 a real install (default), 1 a test install" })
  )
}).annotations(requestBody("SuiteInstallRequest"))

/**
 * A fresh, single-use pre-auth code (never cached), and WeCom's install page
 * for it when a `redirect_uri` was given.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuitePreAuthCodeResponse = Schema.Struct({
  pre_auth_code: Schema.String,
  expires_in: ExpiresIn,
  install_url: Schema.optional(Schema.String)
}).annotations({ identifier: "SuitePreAuthCodeResponse" })

/**
 * `?cursor&limit` of the corp list.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CorpsQuery = Schema.Struct({
  cursor: Schema.optional(corpId),
  limit: AuthorizersQuery.fields.limit
})

/**
 * One page of the corps that installed a suite, ordered by corp id.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CorpsResponse = Schema.Struct({
  corps: Schema.Array(
    Schema.Struct({ corp_id: Schema.String, valid: Schema.Boolean, expires_in: Schema.optional(ExpiresIn) })
  ),
  next_cursor: Schema.optional(Schema.String)
}).annotations({ identifier: "CorpsResponse" })

/**
 * A WeCom suite's own routes (suite token, install links, its corps) and
 * the service provider's token, all behind `ClientAuth`.
 *
 * @since 0.3.0
 * @category models
 */
export class SuitesGroup extends HttpApiGroup.make("suites")
  .add(
    HttpApiEndpoint.get("suiteAccessToken", "/v1/wecom-suites/:suiteId/access-token")
      .setPath(SuitePath)
      .addSuccess(AccessTokenResponse)
      .annotate(OpenApi.Summary, "The current suite_access_token")
  )
  .add(
    HttpApiEndpoint.post("suitePreAuthCode", "/v1/wecom-suites/:suiteId/pre-auth-code")
      .setPath(SuitePath)
      .setPayload(SuiteInstallRequest)
      .addSuccess(SuitePreAuthCodeResponse)
      .annotate(OpenApi.Summary, "A fresh single-use pre-auth code, its session set (and the install page URL)")
  )
  .add(
    HttpApiEndpoint.get("providerAccessToken", "/v1/wecom-suites/:suiteId/provider-token")
      .setPath(SuitePath)
      .addSuccess(AccessTokenResponse)
      .annotate(OpenApi.Summary, "The service provider's provider_access_token (WECOM_PROVIDER)")
  )
  .add(
    HttpApiEndpoint.get("corps", "/v1/wecom-suites/:suiteId/corps")
      .setPath(SuitePath)
      .setUrlParams(CorpsQuery)
      .addSuccess(CorpsResponse)
      .annotate(OpenApi.Summary, "A page of the corps that installed the suite (limit 1-500, default 100)")
  )
  .addError(BadRequest)
  .addError(NotFound)
  .addError(TokenUnavailable)
  .middleware(ClientAuth)
  .annotate(
    OpenApi.Description,
    "WeCom suites configured in `WECOM_SUITES`; every route needs `Authorization: Bearer <client key>`"
  )
{}

/**
 * Per corp that installed a configured WeCom suite: its corp token,
 * compare-and-refresh, the corp's jsapi ticket, the app's agent ticket and
 * a signed `wx.config` + `wx.agentConfig`, all behind `ClientAuth`.
 *
 * @since 0.3.0
 * @category models
 */
export class SuiteCorpsGroup extends credentialGroup({
  name: "suiteCorps",
  prefix: "/v1/wecom-suites/:suiteId/corps/:corpId",
  path: SuiteCorpPath,
  owner: "a corp that installed the suite (get_corp_token)",
  jsSdkConfig: WeComJsSdkConfig,
  jsSdkConfigSummary: "A signed wx.config (appId = the corp) and wx.agentConfig (the suite's app) for a page URL",
  description: "Corps that installed a WeCom suite configured in `WECOM_SUITES`"
}).add(
  HttpApiEndpoint.get("agentTicket", "/v1/wecom-suites/:suiteId/corps/:corpId/agent-ticket")
    .setPath(SuiteCorpPath)
    .addSuccess(JsapiTicketResponse)
    .annotate(OpenApi.Summary, "The suite app's agent ticket in the corp, for wx.agentConfig")
) {}

/**
 * Probes and metrics: totals for anyone, detail with an ops key.
 *
 * @since 0.1.0
 * @category models
 */
export class OpsGroup extends HttpApiGroup.make("ops")
  .add(
    HttpApiEndpoint.get("healthz", "/healthz")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ok") }).annotations({ identifier: "Health" }))
      .annotate(OpenApi.Summary, "200 while the process serves")
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Ready)
      .addError(NotReady)
      .addError(Unauthorized)
      .annotate(
        OpenApi.Summary,
        "200 when every app holds a valid access token and the store keeps what it is given, else 503; counts per kind, each credential only with an ops key"
      )
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .addError(Unauthorized)
      .annotate(OpenApi.Summary, "Prometheus text exposition; series per app only with an ops key")
  )
  .annotate(
    OpenApi.Description,
    "Probes and metrics for the platform that runs the server. No key needed for the verdict and totals; " +
      "which apps the server holds only with an ops key (OPS_KEYS) as Authorization: Bearer; any other key gets 401"
  )
{}

// The platform documents its own decode-error body for 400; this server
// answers every 400 as `BadRequest` instead (see `TokenServer.errorBodies`).
type JsonObject = Record<string, unknown>

// OpenAPI documents are untyped JSON: every step down is checked.
const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null
const valuesOf = (value: unknown): ReadonlyArray<unknown> => isObject(value) ? Object.values(value) : []

const documentBadRequest = (spec: JsonObject): JsonObject => {
  for (const path of valuesOf(spec.paths)) {
    for (const operation of valuesOf(path)) {
      const responses = isObject(operation) ? operation.responses : undefined
      const badRequest = isObject(responses) ? responses["400"] : undefined
      if (!isObject(badRequest)) continue
      badRequest.description = "The request is malformed: JSON, types, app id shape or page URL"
      badRequest.content = { "application/json": { schema: { $ref: "#/components/schemas/BadRequest" } } }
    }
  }
  const schemas = isObject(spec.components) && isObject(spec.components.schemas) ? spec.components.schemas : {}
  // Only the platform's decode error refers to these.
  delete schemas.HttpApiDecodeError
  delete schemas.Issue
  delete schemas.PropertyKey
  return spec
}

// The generator registers a component for every tagged error class, also
// those it inlines into the failure union: left in, they are schemas nothing
// refers to. Dropped until no unreferenced one is left.
const withoutUnusedSchemas = (spec: Record<string, unknown>): Record<string, unknown> => {
  const components = (spec.components ?? {}) as { readonly schemas?: Record<string, unknown> }
  const schemas = { ...components.schemas }
  for (let dropped = true; dropped;) {
    dropped = false
    const text = JSON.stringify({ ...spec, components: { ...components, schemas } })
    for (const name of Object.keys(schemas)) {
      if (!text.includes(`"#/components/schemas/${name}"`)) {
        delete schemas[name]
        dropped = true
      }
    }
  }
  return { ...spec, components: { ...components, schemas } }
}

/**
 * @since 0.1.0
 * @category models
 */
export class TokenServerApi extends HttpApi.make("token-server")
  .add(TokensGroup)
  .add(WeComGroup)
  .add(ComponentsGroup)
  .add(AuthorizersGroup)
  .add(ComponentEventsGroup)
  .add(SuiteEventsGroup)
  .add(SuitesGroup)
  .add(SuiteCorpsGroup)
  .add(OpsGroup)
  .add(AdminGroup)
  // Any route: the wrong method, a request that does not arrive in time, a body over the limit.
  .addError(MethodNotAllowed)
  .addError(RequestTimeout)
  .addError(PayloadTooLarge)
  .annotate(OpenApi.Title, "effect-wechat-token central server")
  .annotate(OpenApi.Version, version)
  .annotate(OpenApi.License, { name: "MIT", url: "https://opensource.org/licenses/MIT" })
  // Relative: resolved against wherever the document was fetched from, so
  // "try it" on /docs calls the server that serves it, at any HOST and PORT.
  .annotate(OpenApi.Servers, [{ url: "/", description: "The server this document was fetched from" }])
  .annotate(
    OpenApi.Description,
    // Markdown: the page renders it, and a bare <client key> would be read as an HTML tag.
    "Hands out WeChat access tokens, JS-SDK tickets and signatures to business servers. " +
      "Every `/v1` route needs `Authorization: Bearer <client key>`. " +
      "Errors are `{\"error\":{\"code\",\"message\"}}`."
  )
  // The proxy routes and the gateway are served in front of the router; the document still lists them.
  .annotate(
    OpenApi.Transform,
    (spec) => withoutUnusedSchemas(GatewayApi.document(ProxyApi.document(documentBadRequest(spec))))
  )
{}
