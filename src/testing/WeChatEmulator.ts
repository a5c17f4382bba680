/**
 * A faithful WeChat emulator for tests: the token, stable-token, ticket and
 * callback-IP endpoints, WeCom's gettoken, corp and agent tickets, and the
 * third-party platform's component endpoints and encrypted pushes, with their lifetimes, 5-minute overlap, quotas,
 * errcodes (each errmsg ending in a ` rid: …` request id) and injectable faults. All time comes from Effect `Clock` and all
 * randomness from Effect `Random`, so `TestClock` drives every expiry.
 *
 * Use it in-process (`layerClient`, no sockets) or over real HTTP (`serve`,
 * `listen`).
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import { Context, type Duration, Effect, Layer, type Scope, type Stream } from "effect"
import * as Faults from "./Fault.js"
import * as apis from "./internal/apis.js"
import * as client from "./internal/client.js"
import * as component from "./internal/component.js"
import * as emulator from "./internal/emulator.js"
import * as server from "./internal/server.js"
import * as wecomSuite from "./internal/wecomSuite.js"

/**
 * Faults the emulator can inject (busy, HTTP status, malformed body, slow, refused or reset connection).
 *
 * @since 0.1.0
 * @category faults
 */
export const Fault = Faults.Fault

/**
 * @since 0.1.0
 * @category faults
 */
export type Fault = Faults.Fault

/**
 * The emulator endpoints a fault can be limited to.
 *
 * @since 0.1.0
 * @category faults
 */
export type Endpoint = Faults.Endpoint

/**
 * A fault and where and how often it applies.
 *
 * @since 0.1.0
 * @category faults
 */
export type FaultRule = Faults.FaultRule

/**
 * The emulated WeCom endpoints a fault can be limited to.
 *
 * @since 0.2.0
 * @category faults
 */
export type WeComEndpoint = Faults.WeComEndpoint

/**
 * The emulated third-party platform endpoints a fault can be limited to.
 *
 * @since 0.3.0
 * @category faults
 */
export type ComponentEndpoint = Faults.ComponentEndpoint

/**
 * @since 0.3.0
 * @category models
 */
export type SuiteEndpoint = Faults.SuiteEndpoint

/**
 * An app WeChat knows. Without `ipWhitelist` every caller IP is accepted.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppRegistration {
  readonly appId: string
  readonly secret: string
  readonly ipWhitelist?: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EmulatorOptions {
  /** Lifetime of access tokens (classic and stable); default 7,200 s as on WeChat. */
  readonly tokenLifetime?: Duration.DurationInput
  /** Lifetime of jsapi and wx_card tickets; default 7,200 s. */
  readonly ticketLifetime?: Duration.DurationInput
  /**
   * What `getticket` answers while the app's ticket of that type is valid.
   * `same-while-valid` (default, as WeChat does): that same ticket, labelled
   * `expires_in` 7,200 again; a new one only once it has expired.
   * `new-per-call`: a new ticket every call, the previous one cut to 5 minutes.
   */
  readonly ticketRenewal?: "same-while-valid" | "new-per-call"
  /** The egress IP WeChat sees for every request; default `127.0.0.1`. */
  readonly callerIp?: string
  readonly apps?: ReadonlyArray<AppRegistration>
  /** WeCom corps and their apps (tokens and tickets take `tokenLifetime` and `ticketLifetime` too). */
  readonly corps?: ReadonlyArray<WeComCorpRegistration>
  /** Third-party platforms (开放平台第三方平台); component and authorizer tokens take `tokenLifetime`. */
  readonly components?: ReadonlyArray<ComponentRegistration>
  /** WeCom suites (企业微信第三方应用); suite tokens take `tokenLifetime`, corp tokens are WeCom corp tokens. */
  readonly suites?: ReadonlyArray<SuiteRegistration>
  /**
   * How pushes reach a component's `pushUrl`. Default: an HTTP POST through
   * `@effect/platform`'s `FetchHttpClient` (the runtime's `fetch`), so pushes
   * work the same whether the emulator runs in-process or behind `serve`.
   * Pass `pushOver(client)` to use another `HttpClient`, `pushToWebHandler`
   * for a web-standard handler in the same process, or any function.
   */
  readonly pushTransport?: PushTransport
  /**
   * Whether `api_authorizer_token` answers a new refresh token.
   * `on-authorization` (default, as WeChat does): the refresh token changes
   * only when the merchant authorizes again, every refresh answers the same one.
   * `every-refresh`: each refresh answers a new one and the previous one is
   * refused with 61023, to prove a client persists what comes back.
   */
  readonly refreshTokenRotation?: "on-authorization" | "every-refresh"
  /**
   * Which verify tickets `api_component_token` takes. `latest` (default):
   * only the one pushed last, so a client must keep the newest; any other
   * answers 61006. `unexpired`: any ticket pushed in the last 12 hours, the
   * more forgiving reading of WeChat's documentation. Either way a ticket
   * older than 12 hours answers 61005.
   */
  readonly verifyTicketAcceptance?: "latest" | "unexpired"
}

/**
 * A third-party platform (component) WeChat knows. `messageToken` and
 * `encodingAesKey` (43 characters) are what its pushes are signed and
 * encrypted with; without `pushUrl` nothing is pushed (tickets are still
 * issued, so `api_component_token` works with `currentVerifyTicket`). A key
 * that is not 43 base64 characters is a defect when the component is registered.
 *
 * @since 0.3.0
 * @category models
 */
export interface ComponentRegistration {
  readonly componentAppId: string
  readonly secret: string
  readonly messageToken: string
  readonly encodingAesKey: string
  /** The authorization-event URL: verify tickets and authorization changes are POSTed here. */
  readonly pushUrl?: string
}

/**
 * One push on its way to a component: the full URL (the `pushUrl` with
 * `signature`, `timestamp`, `nonce`, `encrypt_type=aes` and `msg_signature`
 * appended) and the XML body.
 *
 * @since 0.3.0
 * @category models
 */
export interface PushRequest {
  readonly componentAppId: string
  readonly url: string
  readonly body: string
}

/**
 * What the receiver answered. Only status 200 with the body exactly
 * `success` counts as delivered.
 *
 * @since 0.3.0
 * @category models
 */
export interface PushAnswer {
  readonly status: number
  readonly body: string
}

/**
 * Delivers one push. A failure (connection refused, timeout…) counts as an
 * undelivered attempt, like an answer other than `success`.
 *
 * @since 0.3.0
 * @category models
 */
export type PushTransport = (request: PushRequest) => Effect.Effect<PushAnswer, unknown>

/**
 * The `InfoType` of a push to a component's authorization-event URL.
 *
 * @since 0.3.0
 * @category models
 */
export type PushInfoType =
  | "component_verify_ticket"
  | "authorized"
  | "updateauthorized"
  | "unauthorized"
  | wecomSuite.SuiteInfoType

/**
 * One push as the emulator delivered it (or failed to): its decrypted XML,
 * how many POSTs it took and whether one was answered `success`.
 *
 * @since 0.3.0
 * @category models
 */
export interface PushRecord {
  readonly infoType: PushInfoType
  /** The decrypted inner XML, as the receiver should read it. */
  readonly xml: string
  readonly attempts: number
  readonly delivered: boolean
  /** Why the last attempt failed: the status and body answered, or the transport error. */
  readonly failure?: string
}

/**
 * Counts for one component, all zero before its first request.
 *
 * @since 0.3.0
 * @category models
 */
export interface ComponentStats {
  readonly componentTokenCalls: number
  readonly componentTokensIssued: number
  readonly startPushCalls: number
  /** Pre-auth codes issued by `api_create_preauthcode`. */
  readonly preAuthCodes: number
  readonly queryAuthCalls: number
  readonly authorizerTokenCalls: number
  /** Authorizer tokens issued, by `api_query_auth` and `api_authorizer_token`. */
  readonly authorizerTokensIssued: number
  readonly listCalls: number
  /** POSTs to the push URL, retries included. */
  readonly pushesSent: number
  /** POSTs answered with exactly `success`. */
  readonly pushesDelivered: number
  /** POSTs answered otherwise, failed or timed out. */
  readonly pushesFailed: number
  /** Pushes given up after every attempt failed. */
  readonly pushesAbandoned: number
  /** Requests that presented one of this component's component tokens after it died. */
  readonly deadTokenUses: number
}

/**
 * A control asked for something the emulated WeChat would not do: an
 * unknown component or authorizer, a pre-auth code that is unknown, used or
 * expired.
 *
 * @since 0.3.0
 * @category errors
 */
export const ComponentControlError = component.ComponentControlError

/**
 * @since 0.3.0
 * @category errors
 */
export type ComponentControlError = component.ComponentControlError

/**
 * The third-party platform side of the emulator. Pushes run in the calling
 * fiber and complete (delivered, retried or given up) before the control
 * returns; the answer to `api_start_push_ticket` does not wait for its push.
 *
 * @since 0.3.0
 * @category models
 */
export interface ComponentControls {
  /** Adds a component, or replaces a known one's secret, message token, key and push URL (its state stays). */
  readonly registerComponent: (registration: ComponentRegistration) => Effect.Effect<void>
  /** Points the pushes at `url` (e.g. once the server under test listens); `undefined` stops them. */
  readonly setPushUrl: (componentAppId: string, url: string | undefined) => Effect.Effect<void, ComponentControlError>
  /**
   * A merchant authorizes the component (again): a new authorization code
   * and, for a new or returning merchant, a new refresh token (the previous
   * one answers 61023). Pushes `authorized` and returns the code. With
   * `preAuthCode` the merchant used that code on the authorization page
   * (single use); otherwise the emulator makes one up.
   */
  readonly authorize: (
    componentAppId: string,
    authorizerAppId: string,
    options?: { readonly funcInfo?: ReadonlyArray<number>; readonly preAuthCode?: string }
  ) => Effect.Effect<string, ComponentControlError>
  /** The merchant changes the granted permissions: a new code, pushed as `updateauthorized`; the refresh token stays. */
  readonly updateAuthorization: (
    componentAppId: string,
    authorizerAppId: string,
    options?: { readonly funcInfo?: ReadonlyArray<number> }
  ) => Effect.Effect<string, ComponentControlError>
  /** The merchant revokes: pushes `unauthorized`; its tokens die and later calls answer 61003. */
  readonly unauthorize: (componentAppId: string, authorizerAppId: string) => Effect.Effect<void, ComponentControlError>
  /** Issues a new verify ticket (the latest wins) and pushes it, even while pushes are stopped; returns it. */
  readonly pushTicket: (componentAppId: string) => Effect.Effect<string, ComponentControlError>
  /** WeChat stops pushing to this component (tickets and authorization events) until `resumePushes` or `api_start_push_ticket`. */
  readonly stopPushes: (componentAppId: string) => Effect.Effect<void, ComponentControlError>
  readonly resumePushes: (componentAppId: string) => Effect.Effect<void, ComponentControlError>
  /** Every verify ticket issued so far expires now: `api_component_token` answers 61005 until a new one is pushed. */
  readonly expireTicket: (componentAppId: string) => Effect.Effect<void, ComponentControlError>
  /**
   * The refresh token a client holds goes stale (61023) while the
   * authorization stands: `api_get_authorizer_list` shows the new current
   * one, which is returned.
   */
  readonly invalidateRefreshToken: (
    componentAppId: string,
    authorizerAppId: string
  ) => Effect.Effect<string, ComponentControlError>
  /** The unrecoverable case: the refresh token goes stale and the authorizer is missing from the list. */
  readonly loseAuthorizer: (
    componentAppId: string,
    authorizerAppId: string
  ) => Effect.Effect<void, ComponentControlError>
  /**
   * `count` merchants authorize at once, without pushes and without tokens
   * (a few short strings each, for estates of 100,000); their refresh
   * tokens are listed by `api_get_authorizer_list`. Returns their app ids.
   */
  readonly generateAuthorizers: (
    componentAppId: string,
    count: number
  ) => Effect.Effect<ReadonlyArray<string>, ComponentControlError>
  /**
   * Forks the 10-minute verify-ticket pushes into the scope: one push to
   * every component with a push URL at once, then every 10 minutes (Effect
   * `Clock`, so `TestClock` drives it). While no component has a push URL it
   * waits without sleeping (a `TestClock` jump costs nothing), and pushes at
   * once when the first one gets one. `layer`, `serve` and `listen` start
   * it; a second start while one runs does nothing.
   */
  readonly runTicketSchedule: Effect.Effect<void, never, Scope.Scope>
  /** True while `token` is a live component token (of `componentAppId` when given). */
  readonly isValidComponentToken: (token: string, componentAppId?: string) => Effect.Effect<boolean>
  /** True while `token` is a live authorizer token of `authorizerAppId`. */
  readonly isValidAuthorizerToken: (token: string, authorizerAppId: string) => Effect.Effect<boolean>
  /** The refresh token WeChat currently accepts for the authorizer; `undefined` when not authorized. */
  readonly currentRefreshToken: (componentAppId: string, authorizerAppId: string) => Effect.Effect<string | undefined>
  /** The latest verify ticket issued, pushed or not. */
  readonly currentVerifyTicket: (componentAppId: string) => Effect.Effect<string | undefined>
  /** The last pushes to the component (at most 100), oldest first. */
  readonly pushLog: (componentAppId: string) => Effect.Effect<ReadonlyArray<PushRecord>>
  readonly stats: (componentAppId: string) => Effect.Effect<ComponentStats>
  readonly resetStats: Effect.Effect<void>
}

/**
 * One WeCom app: its agent (AgentId, or a label such as `contacts`) and
 * secret. With `trustedIps`, gettoken from any other caller IP answers 60020.
 *
 * @since 0.2.0
 * @category models
 */
export interface WeComAppRegistration {
  readonly agent: string
  readonly secret: string
  readonly trustedIps?: ReadonlyArray<string>
}

/**
 * A WeCom corp the emulator knows.
 *
 * @since 0.2.0
 * @category models
 */
export interface WeComCorpRegistration {
  readonly corpId: string
  readonly apps: ReadonlyArray<WeComAppRegistration>
}

/**
 * The corp ticket (`get_jsapi_ticket`) or an agent ticket (`ticket/get?type=agent_config`).
 *
 * @since 0.2.0
 * @category models
 */
export type WeComTicketKind = "corp" | "agent"

/**
 * WeCom requests received, per corp id (every request) or per `corpid/agent`
 * (requests whose app is known: by its secret for gettoken, by its token otherwise).
 *
 * @since 0.2.0
 * @category models
 */
export interface WeComStats {
  readonly gettokenCalls: number
  /** gettoken answers with a non-zero errcode (wrong secret, untrusted IP…), per corp. */
  readonly gettokenErrors: number
  readonly tokensIssued: number
  readonly corpTicketCalls: number
  readonly agentTicketCalls: number
  /** `agent/get` calls refused with 301002: a token used for another agent. */
  readonly wrongAgentUses: number
}

/**
 * The WeCom side of the emulator.
 *
 * @since 0.2.0
 * @category models
 */
export interface WeComControls {
  /** Adds a corp, or adds apps to a known one (a known agent gets the new secret and trusted IPs). */
  readonly registerCorp: (registration: WeComCorpRegistration) => Effect.Effect<void>
  /** WeCom ends `token` now, before its time (it may): using it answers 40014, gettoken issues a new one. */
  readonly endToken: (token: string) => Effect.Effect<void>
  /** True while WeCom would accept `token`; with `owner` (`corpid/agent`), only as that app's token. */
  readonly isValidToken: (token: string, owner?: string) => Effect.Effect<boolean>
  /** True while `ticket` is valid for `owner` (`corpid/agent`): a corp ticket for any app of its corp. */
  readonly isValidTicket: (ticket: string, kind: WeComTicketKind, owner: string) => Effect.Effect<boolean>
  /** Counts for a corp id or a `corpid/agent`, all zero before its first request. */
  readonly stats: (corpIdOrOwner: string) => Effect.Effect<WeComStats>
  readonly resetStats: Effect.Effect<void>
}

/**
 * The ticket types of `GET /cgi-bin/ticket/getticket`.
 *
 * @since 0.1.0
 * @category models
 */
export type TicketType = "jsapi" | "wx_card"

/**
 * One HTTP request as the emulator sees it, whatever the transport.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmulatorRequest {
  readonly method: string
  /** The URL path, e.g. `/cgi-bin/token`; the host is ignored. */
  readonly path: string
  readonly query: URLSearchParams
  readonly body: string
  /** The `Content-Type` header, when the request has one. */
  readonly contentType?: string
  /** The raw body as it arrives, for the APIs that take bytes (media uploads); `body` is then empty. */
  readonly stream?: Stream.Stream<Uint8Array>
}

/**
 * The emulator's answer: an HTTP response, or a connection dropped without one.
 *
 * @since 0.1.0
 * @category models
 */
export type EmulatorResponse =
  | {
    readonly _tag: "Respond"
    readonly status: number
    readonly contentType: string
    readonly body: string
    /** A binary body (media downloads), sent instead of `body`. */
    readonly stream?: Stream.Stream<Uint8Array>
    /** Further headers, e.g. `content-disposition` of a download. */
    readonly headers?: Readonly<Record<string, string>>
  }
  | { readonly _tag: "Drop"; readonly reason: "ConnectionRefused" | "ConnectionReset" }

/**
 * Requests received for one app, whatever the answer (errors and injected
 * faults included). Token endpoints are attributed by their `appid`, ticket
 * and callback-IP calls by the app owning the presented token.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppStats {
  readonly classicCalls: number
  readonly stableCalls: number
  /** Stable-token requests with `force_refresh: true`, granted or not. */
  readonly forceRefreshes: number
  /** New access tokens issued (classic and stable). */
  readonly tokensIssued: number
  readonly ticketCalls: number
  readonly callbackIpCalls: number
  /** Requests that presented one of this app's tokens after it died. */
  readonly deadTokenUses: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly apps: Readonly<Record<string, AppStats>>
  /** Requests that presented a dead, unknown or malformed access token, any app. */
  readonly deadTokenUses: number
  /** The most requests ever being answered at the same moment. */
  readonly peakInFlight: number
}

/**
 * One call to a business API of the emulator (`ApiControls`): what arrived,
 * so a test can assert that a proxy forwarded the token, query and body intact.
 *
 * @since 0.3.0
 * @category models
 */
export interface ApiCall {
  readonly method: string
  readonly path: string
  /** The `access_token` query parameter as received. */
  readonly token: string | undefined
  /** Whose live token it was: an app id or `corpid/agent`; `undefined` when the token was refused. */
  readonly owner: string | undefined
  /** The query without `access_token`. */
  readonly query: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly bodyBytes: number
  /** SHA-256 of the body, hex. */
  readonly bodySha256: string
  /** The errcode answered; 0 for success and for a download. */
  readonly errcode: number
}

/**
 * The business APIs the emulator serves behind the token, for testing a
 * proxy: `POST cgi-bin/message/custom/send` (WeChat) and
 * `POST cgi-bin/message/send` (WeCom), JSON; `POST cgi-bin/media/upload?type=`
 * (multipart, either token); `GET cgi-bin/media/get?media_id=` (binary,
 * streamed). A dead token answers 40001/40014/42001 as the real APIs do.
 *
 * @since 0.3.0
 * @category models
 */
export interface ApiControls {
  /** Every call received so far, in order. */
  readonly calls: Effect.Effect<ReadonlyArray<ApiCall>>
  readonly resetCalls: Effect.Effect<void>
  /**
   * A media file of `size` bytes that `cgi-bin/media/get` serves, generated as
   * it streams out: byte `i` is `mediaByte(i)`. An uploaded file is only
   * hashed, never kept: downloading it gives its size in the same pattern.
   */
  readonly seedMedia: (size: number) => Effect.Effect<string>
}

/**
 * Byte `index` of every file `cgi-bin/media/get` serves (see `ApiControls.seedMedia`).
 *
 * @since 0.3.0
 * @category utils
 */
export const mediaByte: (index: number) => number = apis.mediaByte

/**
 * A WeCom suite (企业微信第三方应用) the emulator knows: its secret, the
 * Token and 43-character EncodingAESKey its command URL's pushes are signed
 * and encrypted with (for the suite id), and the command URL (指令回调URL);
 * without it nothing is pushed, and tickets come from `pushTicket`.
 *
 * @since 0.3.0
 * @category models
 */
export type SuiteRegistration = wecomSuite.SuiteRegistration

/**
 * The `InfoType` of a push to a suite's command URL.
 *
 * @since 0.3.0
 * @category models
 */
export type SuiteInfoType = wecomSuite.SuiteInfoType

/**
 * One suite's counts, all zero before its first request.
 *
 * @since 0.3.0
 * @category models
 */
export type SuiteStats = wecomSuite.SuiteStats

/**
 * A suite control naming an unknown suite or a corp that has not installed it.
 *
 * @since 0.3.0
 * @category errors
 */
export const SuiteControlError = wecomSuite.SuiteControlError

/**
 * @since 0.3.0
 * @category errors
 */
export type SuiteControlError = wecomSuite.SuiteControlError

/**
 * WeCom's service-provider side: suites, the provider, installs and
 * revocations with their pushes, lost tickets, and `generateCorps` for scale.
 *
 * @since 0.3.0
 * @category models
 */
export type SuiteControls = wecomSuite.SuiteControls

/**
 * @since 0.1.0
 * @category models
 */
export interface WeChatEmulatorShape {
  /** Answers one request as WeChat would: the core both transports share. */
  readonly handle: (request: EmulatorRequest) => Effect.Effect<EmulatorResponse>
  /** Adds an app, or replaces the secret and whitelist of a known one (its tokens stay). */
  readonly registerApp: (app: AppRegistration) => Effect.Effect<void>
  readonly setCallerIp: (ip: string) => Effect.Effect<void>
  /** Every live access token of the app dies now, as if another process had refreshed long ago. */
  readonly killTokens: (appId: string) => Effect.Effect<void>
  /** True while WeChat would accept `token` (classic or stable). */
  readonly isValidToken: (token: string) => Effect.Effect<boolean>
  readonly isValidTicket: (ticket: string, type: TicketType) => Effect.Effect<boolean>
  /** WeChat's `clear_quota`: resets the app's daily and minute call counts (not the force-refresh budget). */
  readonly clearQuota: (appId: string) => Effect.Effect<void>
  readonly injectFault: (rule: FaultRule) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
  /** One app's counts, all zero before its first request. */
  readonly appStats: (appId: string) => Effect.Effect<AppStats>
  readonly resetStats: Effect.Effect<void>
  /** WeCom (企业微信): its corps, tokens, tickets and counts. */
  readonly wecom: WeComControls
  /** The third-party platform (开放平台第三方平台): components, authorizations, pushes and counts. */
  readonly component: ComponentControls
  /** WeCom's service-provider side (企业微信第三方应用): suites, installs, pushes and counts. */
  readonly wecomSuite: SuiteControls
  /** The business APIs behind the token, and what they received. */
  readonly apis: ApiControls
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WeChatEmulator extends Context.Tag("effect-wechat-token/testing/WeChatEmulator")<
  WeChatEmulator,
  WeChatEmulatorShape
>() {}

/**
 * A fresh emulator with no tokens issued yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: EmulatorOptions) => Effect.Effect<WeChatEmulatorShape> = emulator.make

/**
 * The emulator as a service; while the layer lives, components with a push
 * URL get a verify ticket at once and every 10 minutes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: EmulatorOptions): Layer.Layer<WeChatEmulator> =>
  Layer.scoped(
    WeChatEmulator,
    Effect.tap(
      make(options),
      (emulator) => Effect.zipRight(emulator.component.runTicketSchedule, emulator.wecomSuite.runTicketSchedule)
    )
  )

/**
 * An `HttpClient` answered by the emulator in context, without sockets: any
 * base URL works (e.g. `http://wechat.test`), and `TestClock` drives expiry.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient: Layer.Layer<HttpClient.HttpClient, never, WeChatEmulator> = client.layer(WeChatEmulator)

/**
 * Where to listen; default `127.0.0.1` on a free port.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions {
  readonly host?: string
  readonly port?: number
}

/**
 * A running emulator server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Served {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  readonly url: string
  readonly emulator: WeChatEmulatorShape
}

/**
 * Serves the emulator in context over real HTTP until the scope closes. The
 * request's own source address is ignored: WeChat sees the configured caller IP.
 *
 * @since 0.1.0
 * @category servers
 */
export const listen = (
  options: ServeOptions = {}
): Effect.Effect<Served, HttpServerError.ServeError, Scope.Scope | WeChatEmulator> =>
  server.listen(WeChatEmulator, options)

/**
 * Builds a new emulator from `options` and serves it like `listen`; the
 * result carries the emulator's controls.
 *
 * @since 0.1.0
 * @category servers
 */
export const serve = (
  options: EmulatorOptions & ServeOptions = {}
): Effect.Effect<Served, HttpServerError.ServeError, Scope.Scope> =>
  listen(options).pipe(Effect.provideServiceEffect(WeChatEmulator, make(options)))

/**
 * A `PushTransport` that POSTs each push through `client` (XML body, 5 s
 * timeout as WeChat allows its receivers).
 *
 * @since 0.3.0
 * @category pushes
 */
export const pushOver: (client: HttpClient.HttpClient) => PushTransport = component.pushOver

/**
 * A `PushTransport` that hands each push to a web-standard handler in the
 * same process (no socket), e.g. one made with `HttpApp.toWebHandler`.
 *
 * @since 0.3.0
 * @category pushes
 */
export const pushToWebHandler: (handler: (request: Request) => Promise<Response>) => PushTransport =
  component.pushToWebHandler
