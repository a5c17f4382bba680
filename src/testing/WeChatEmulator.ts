/**
 * A faithful WeChat emulator for tests: the token, stable-token, ticket and
 * callback-IP endpoints, and WeCom's gettoken, corp and agent tickets, with their lifetimes, 5-minute overlap, quotas,
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
import * as emulator from "./internal/emulator.js"
import * as server from "./internal/server.js"

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
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: EmulatorOptions): Layer.Layer<WeChatEmulator> =>
  Layer.effect(WeChatEmulator, make(options))

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
