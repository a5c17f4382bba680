/**
 * The emulator's third-party platform (开放平台第三方平台): verify tickets
 * pushed every 10 minutes, the component token, pre-auth codes, the
 * authorization-code exchange, authorizer tokens from refresh tokens and the
 * paged authorizer list, with the 61xxx errcodes, plus the encrypted pushes
 * to each component's authorization-event URL.
 *
 * Authorizer tokens are official-account tokens of the authorizer's app id:
 * they live in the emulator's own token table (through `Host.tokens`), so
 * every endpoint that checks an access token accepts them.
 *
 * State is touched only inside `Effect.sync` blocks, as in the rest of the
 * emulator, so each request updates it atomically.
 *
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Clock, Data, Duration, Effect, Either, Random, Redacted, type Scope } from "effect"
import * as MessageCrypto from "../../MessageCrypto.js"
import * as MessageSignature from "../../MessageSignature.js"
import type { ComponentEndpoint } from "../Fault.js"
import type {
  ComponentControls,
  ComponentRegistration,
  ComponentStats,
  EmulatorRequest,
  EmulatorResponse,
  PushInfoType,
  PushRecord,
  PushTransport
} from "../WeChatEmulator.js"
import { getOrMake } from "./getOrMake.js"
import { json, parseJsonObject, stringField } from "./json.js"
import * as Opaque from "./opaque.js"
import * as PushDelivery from "./pushDelivery.js"
import { DAY, HOUR, MINUTE, SECOND } from "./units.js"

/** A replaced component or authorizer token lives this much longer, as classic tokens do. */
const OVERLAP = 5 * MINUTE
/** WeChat pushes a new verify ticket this often… */
const TICKET_PUSH_INTERVAL = Duration.minutes(10)
/** …and each one is good for 12 hours: pushes may stop for that long before 61005. */
const TICKET_LIFETIME = 12 * HOUR
const PRE_AUTH_CODE_LIFETIME = 1800 * SECOND
/** The redirect after authorization carries `expires_in=3600` for its code. */
const AUTHORIZATION_CODE_LIFETIME = 3600 * SECOND
const LIST_PAGE_MAX = 500
/** WeChat waits 5 s for `success`, then tries again: three attempts in all. */

// Daily quotas per component (per authorizer for api_authorizer_token). The
// token endpoints get the classic token's 2,000 a day, so a client that
// refreshes in a loop meets 45009 as it would on WeChat; the others are
// generous, high enough never to bind a well-behaved client.
const COMPONENT_TOKEN_DAILY_QUOTA = 2_000
const PRE_AUTH_CODE_DAILY_QUOTA = 100_000
const QUERY_AUTH_DAILY_QUOTA = 100_000
const AUTHORIZER_TOKEN_DAILY_QUOTA = 2_000
const LIST_DAILY_QUOTA = 100_000

/** @internal */
export class ComponentControlError extends Data.TaggedError("ComponentControlError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/**
 * One merchant's authorization. Kept to a few short strings and numbers:
 * `generateAuthorizers` makes 100,000 of them.
 */
interface Authorizer {
  refreshToken: string
  /** Unix seconds, as `api_get_authorizer_list` answers it. */
  authTime: number
  funcInfo: ReadonlyArray<number> | undefined
  /** The authorizer token issued last, if any. */
  token: string | undefined
  /** False once revoked: every call answers 61003. */
  authorized: boolean
  /** False once lost: missing from `api_get_authorizer_list`. */
  listed: boolean
}

interface Code {
  readonly expiresAt: number
  used: boolean
}

interface AuthorizationCode extends Code {
  readonly authorizerAppId: string
}

interface ComponentToken {
  readonly componentAppId: string
  readonly naturalExpiry: number
  expiresAt: number
}

// The counters of one component, bumped in place and copied out as `ComponentStats`.
class Counters implements ComponentStats {
  componentTokenCalls = 0
  componentTokensIssued = 0
  startPushCalls = 0
  preAuthCodes = 0
  queryAuthCalls = 0
  authorizerTokenCalls = 0
  authorizerTokensIssued = 0
  listCalls = 0
  pushesSent = 0
  pushesDelivered = 0
  pushesFailed = 0
  pushesAbandoned = 0
  deadTokenUses = 0
}

const emptyStats = (): Counters => new Counters()

interface ComponentState {
  secret: string
  messageToken: string
  crypto: MessageCrypto.MessageCrypto
  pushUrl: string | undefined
  stopped: boolean
  /** The latest verify ticket. */
  ticket: string | undefined
  /** Every ticket pushed in the last day and when it expires (or expired: 61005 rather than 61006). */
  readonly tickets: Map<string, number>
  token: string | undefined
  /** Insertion order is authorization order, as the list pages it. */
  readonly authorizers: Map<string, Authorizer>
  /** The listed app ids, rebuilt after a change: paging 100,000 authorizers must not filter them per page. */
  listed: Array<string> | undefined
  readonly preAuthCodes: Map<string, Code>
  readonly codes: Map<string, AuthorizationCode>
  log: Array<PushRecord>
  tokensToday: number
  preAuthCodesToday: number
  queryAuthToday: number
  listToday: number
  /** Authorizer-token calls today, only for the authorizers that made one. */
  authorizerTokensToday: Map<string, number>
}

const ok = json({ errcode: 0, errmsg: "ok" })

/** The component endpoint names, for telling them apart in fault rules. */
export const endpoints: ReadonlySet<string> = new Set<ComponentEndpoint>([
  "api_component_token",
  "api_start_push_ticket",
  "api_create_preauthcode",
  "api_query_auth",
  "api_authorizer_token",
  "api_get_authorizer_list"
])

/** The component paths, as named in fault rules. */
export const endpointOf = (path: string): ComponentEndpoint | undefined => {
  switch (path) {
    case "/cgi-bin/component/api_component_token":
      return "api_component_token"
    case "/cgi-bin/component/api_start_push_ticket":
      return "api_start_push_ticket"
    case "/cgi-bin/component/api_create_preauthcode":
      return "api_create_preauthcode"
    case "/cgi-bin/component/api_query_auth":
      return "api_query_auth"
    case "/cgi-bin/component/api_authorizer_token":
      return "api_authorizer_token"
    case "/cgi-bin/component/api_get_authorizer_list":
      return "api_get_authorizer_list"
    default:
      return undefined
  }
}

/** The emulator's official-account token table, where authorizer tokens live. */
export interface Tokens {
  /** Records a live token of `appId` (registering the app, without a secret, if unknown). */
  readonly issue: (appId: string, value: string, now: number) => void
  /** Shortens the token's life to end at `at` at the latest. */
  readonly end: (value: string, at: number) => void
  readonly isAlive: (value: string, appId: string, now: number) => boolean
}

/** What the component part needs from the emulator around it. */
export interface Host {
  readonly error: (errcode: number, errmsg: string) => EmulatorResponse
  readonly tokenLifetime: number
  readonly tokens: Tokens
  readonly transport: PushTransport
  readonly refreshTokenRotation: "on-authorization" | "every-refresh"
  readonly verifyTicketAcceptance: "latest" | "unexpired"
}

/** A `PushTransport` POSTing through `client`. */
export const pushOver = (client: HttpClient.HttpClient): PushTransport => (request) =>
  client.execute(HttpClientRequest.bodyText(HttpClientRequest.post(request.url), request.body, "text/xml")).pipe(
    Effect.flatMap((response) => Effect.map(response.text, (body) => ({ status: response.status, body })))
  )

/** A `PushTransport` calling a web-standard handler in-process. */
export const pushToWebHandler = (handler: (request: Request) => Promise<Response>): PushTransport => (request) =>
  Effect.tryPromise(async () => {
    const response = await handler(
      new Request(request.url, { method: "POST", headers: { "content-type": "text/xml" }, body: request.body })
    )
    return { status: response.status, body: await response.text() }
  })

/** The default transport: the runtime's `fetch`, needing nothing from the caller's context. */
export const fetchTransport: PushTransport = (request) =>
  Effect.flatMap(HttpClient.HttpClient, (client) => pushOver(client)(request)).pipe(
    Effect.provide(FetchHttpClient.layer)
  )

const cryptoOf = (registration: ComponentRegistration): MessageCrypto.MessageCrypto =>
  PushDelivery.cryptoFor("component", { ...registration, receiveId: registration.componentAppId })

const element = PushDelivery.element

const funcInfoOf = (ids: ReadonlyArray<number>) => ids.map((id) => ({ funcscope_category: { id } }))

/** The permission sets a merchant grants when the test does not say: messages, users, accounts. */
const DEFAULT_FUNC_INFO: ReadonlyArray<number> = [1, 2, 3]

/** @internal */
export const make = (host: Host, registrations: ReadonlyArray<ComponentRegistration>) => {
  const components = new Map<string, ComponentState>()
  const componentTokens = new Map<string, ComponentToken>()
  let stats = new Map<string, Counters>()
  let quotaDay = 0
  let scheduleRunning = false
  const pushing = PushDelivery.pushGate(() =>
    Array.from(components.values()).some((state) => state.pushUrl !== undefined)
  )

  const register = (registration: ComponentRegistration) => {
    const crypto = cryptoOf(registration)
    const known = components.get(registration.componentAppId)
    if (known !== undefined) {
      known.secret = registration.secret
      known.messageToken = registration.messageToken
      known.crypto = crypto
      known.pushUrl = registration.pushUrl
      return
    }
    components.set(registration.componentAppId, {
      secret: registration.secret,
      messageToken: registration.messageToken,
      crypto,
      pushUrl: registration.pushUrl,
      stopped: false,
      ticket: undefined,
      tickets: new Map(),
      token: undefined,
      authorizers: new Map(),
      listed: undefined,
      preAuthCodes: new Map(),
      codes: new Map(),
      log: [],
      tokensToday: 0,
      preAuthCodesToday: 0,
      queryAuthToday: 0,
      listToday: 0,
      authorizerTokensToday: new Map()
    })
  }
  for (const registration of registrations) register(registration)
  pushing.update()

  const statsOf = (componentAppId: string): Counters => getOrMake(stats, componentAppId, emptyStats)

  const rollQuotas = (now: number) => {
    const day = Math.floor(now / DAY)
    if (day === quotaDay) return
    quotaDay = day
    for (const state of components.values()) {
      state.tokensToday = 0
      state.preAuthCodesToday = 0
      state.queryAuthToday = 0
      state.listToday = 0
      state.authorizerTokensToday = new Map()
    }
  }

  const lookup = (componentAppId: string): Either.Either<ComponentState, ComponentControlError> => {
    const state = components.get(componentAppId)
    return state === undefined
      ? Either.left(new ComponentControlError({ reason: `unknown component ${componentAppId}` }))
      : Either.right(state)
  }

  /** The component's state, looked up when the effect runs. */
  const known = (componentAppId: string): Effect.Effect<ComponentState, ComponentControlError> =>
    Effect.suspend(() => lookup(componentAppId))

  const authorizerOf = (
    componentAppId: string,
    authorizerAppId: string
  ): Either.Either<Authorizer, ComponentControlError> =>
    Either.flatMap(lookup(componentAppId), (state) => {
      const authorizer = state.authorizers.get(authorizerAppId)
      return authorizer === undefined || !authorizer.authorized
        ? Either.left(
          new ComponentControlError({ reason: `${authorizerAppId} has not authorized component ${componentAppId}` })
        )
        : Either.right(authorizer)
    })

  /**
   * Encrypts `fields` as one event and POSTs it to the push URL until it is
   * answered `success`, at most three times. `force` pushes while stopped.
   */
  const push = (
    componentAppId: string,
    infoType: PushInfoType,
    fields: ReadonlyArray<readonly [string, string | number]>,
    force: boolean
  ): Effect.Effect<void> =>
    Effect.gen(function*() {
      const state = components.get(componentAppId)
      if (state === undefined) return
      const now = yield* Clock.currentTimeMillis
      const xml = `<xml>${element("AppId", componentAppId)}${element("CreateTime", Math.floor(now / SECOND))}${
        element("InfoType", infoType)
      }${fields.map(([name, value]) => element(name, value)).join("")}</xml>`
      const url = state.pushUrl
      if (url === undefined || (state.stopped && !force)) {
        yield* Effect.sync(() =>
          PushDelivery.remember(state, {
            infoType,
            xml,
            attempts: 0,
            delivered: false,
            failure: url === undefined ? "no push URL" : "pushes stopped"
          })
        )
        return
      }
      const sealed = yield* state.crypto.seal(xml)
      const query = new URLSearchParams({
        signature: MessageSignature.sign({
          token: Redacted.make(state.messageToken),
          timestamp: sealed.timestamp,
          nonce: sealed.nonce
        }),
        timestamp: sealed.timestamp,
        nonce: sealed.nonce,
        encrypt_type: "aes",
        msg_signature: sealed.msgSignature
      })
      // The outer envelope of a third-party platform push names the component, not a ToUserName.
      const body = `<xml>${element("AppId", componentAppId)}${element("Encrypt", sealed.encrypted)}</xml>`
      const request = { componentAppId, url: PushDelivery.withQuery(url, query), body }
      const delivery = yield* PushDelivery.deliver(host.transport, request, statsOf(componentAppId))
      yield* Effect.sync(() => PushDelivery.remember(state, { infoType, xml, ...delivery }))
    })

  /** A new verify ticket becomes the only one accepted, then is pushed (the callers decide about stopped pushes). */
  const pushTicket = (componentAppId: string, state: ComponentState): Effect.Effect<string> =>
    Effect.gen(function*() {
      const value = `ticket@@@${(yield* Opaque.draw).slice(0, 86)}`
      const now = yield* Clock.currentTimeMillis
      yield* Effect.sync(() => {
        for (const [held, expiresAt] of state.tickets) {
          if (now >= expiresAt + TICKET_LIFETIME) state.tickets.delete(held)
        }
        state.ticket = value
        state.tickets.set(value, now + TICKET_LIFETIME)
      })
      yield* push(componentAppId, "component_verify_ticket", [["ComponentVerifyTicket", value]], true)
      return value
    })

  const pushAllTickets = Effect.suspend(() =>
    Effect.forEach(
      Array.from(components).filter(([, state]) => state.pushUrl !== undefined && !state.stopped),
      ([componentAppId, state]) => pushTicket(componentAppId, state),
      { concurrency: "unbounded", discard: true }
    )
  )

  const runTicketSchedule: Effect.Effect<void, never, Scope.Scope> = Effect.suspend(() => {
    if (scheduleRunning) return Effect.void
    scheduleRunning = true
    return Effect.forkScoped(
      Effect.forever(pushing.whenOpen(Effect.zipRight(pushAllTickets, Effect.sleep(TICKET_PUSH_INTERVAL)))).pipe(
        Effect.ensuring(Effect.sync(() => {
          scheduleRunning = false
        }))
      )
    )
  }).pipe(Effect.asVoid)

  const freshRefreshToken = Effect.map(Opaque.draw, (value) => `refreshtoken@@@${value.slice(0, 43)}`)

  const codeFor = (
    componentAppId: string,
    authorizerAppId: string,
    infoType: "authorized" | "updateauthorized",
    preAuthCode: string,
    update: (state: ComponentState, now: number) => Either.Either<void, ComponentControlError>
  ) =>
    Effect.gen(function*() {
      const code = `queryauthcode@@@${(yield* Opaque.draw).slice(0, 86)}`
      const now = yield* Clock.currentTimeMillis
      const expiresAt = now + AUTHORIZATION_CODE_LIFETIME
      yield* Effect.flatMap(known(componentAppId), (state) =>
        Effect.suspend(() =>
          Either.map(update(state, now), () => {
            for (const [held, { expiresAt }] of state.codes) if (now >= expiresAt) state.codes.delete(held)
            state.codes.set(code, { authorizerAppId, expiresAt, used: false })
          })
        ))
      yield* push(componentAppId, infoType, [
        ["AuthorizerAppid", authorizerAppId],
        ["AuthorizationCode", code],
        ["AuthorizationCodeExpiredTime", Math.floor(expiresAt / SECOND)],
        ["PreAuthCode", preAuthCode]
      ], false)
      return code
    })

  const authorize: ComponentControls["authorize"] = (componentAppId, authorizerAppId, options = {}) =>
    Effect.gen(function*() {
      const refreshToken = yield* freshRefreshToken
      const preAuthCode = options.preAuthCode ?? `preauthcode@@@${(yield* Opaque.draw).slice(0, 86)}`
      return yield* codeFor(componentAppId, authorizerAppId, "authorized", preAuthCode, (state, now) => {
        if (options.preAuthCode !== undefined) {
          const held = state.preAuthCodes.get(options.preAuthCode)
          if (held === undefined || held.used || now >= held.expiresAt) {
            return Either.left(
              new ComponentControlError({
                reason: `pre-auth code ${
                  held === undefined ? "unknown to" : held.used ? "already used with" : "expired for"
                } component ${componentAppId}`
              })
            )
          }
          held.used = true
        }
        const previous = state.authorizers.get(authorizerAppId)
        // A returning merchant goes to the end of the list, as a new authorization does.
        state.authorizers.delete(authorizerAppId)
        state.authorizers.set(authorizerAppId, {
          refreshToken,
          authTime: Math.floor(now / SECOND),
          funcInfo: options.funcInfo,
          token: previous?.token,
          authorized: true,
          listed: true
        })
        state.listed = undefined
        return Either.void
      })
    })

  const updateAuthorization: ComponentControls["updateAuthorization"] = (
    componentAppId,
    authorizerAppId,
    options = {}
  ) =>
    Effect.gen(function*() {
      const preAuthCode = `preauthcode@@@${(yield* Opaque.draw).slice(0, 86)}`
      return yield* codeFor(componentAppId, authorizerAppId, "updateauthorized", preAuthCode, () =>
        Either.map(authorizerOf(componentAppId, authorizerAppId), (authorizer) => {
          authorizer.funcInfo = options.funcInfo ?? authorizer.funcInfo
        }))
    })

  const unauthorize: ComponentControls["unauthorize"] = (componentAppId, authorizerAppId) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* Effect.suspend(() =>
        Either.map(authorizerOf(componentAppId, authorizerAppId), (authorizer) => {
          authorizer.authorized = false
          authorizer.listed = false
          if (authorizer.token !== undefined) host.tokens.end(authorizer.token, now)
          components.get(componentAppId)!.listed = undefined
        })
      )
      yield* push(componentAppId, "unauthorized", [["AuthorizerAppid", authorizerAppId]], false)
    })

  const generateAuthorizers: ComponentControls["generateAuthorizers"] = (componentAppId, count) =>
    Effect.gen(function*() {
      // One draw for the whole batch: per-authorizer randomness would dominate 100,000 of them.
      const salt = (yield* Opaque.draw).slice(0, 24)
      const prefix = (yield* Random.nextIntBetween(0, 2 ** 32)).toString(16).padStart(8, "0")
      const now = yield* Clock.currentTimeMillis
      const state = yield* known(componentAppId)
      return yield* Effect.sync(() => {
        const authTime = Math.floor(now / SECOND)
        const created: Array<string> = []
        for (let i = 0; created.length < count; i++) {
          const appId = `wx${prefix}${(i >>> 0).toString(16).padStart(8, "0")}`
          if (state.authorizers.has(appId)) continue
          state.authorizers.set(appId, {
            refreshToken: `refreshtoken@@@${salt}${i.toString(36)}`,
            authTime,
            funcInfo: undefined,
            token: undefined,
            authorized: true,
            listed: true
          })
          created.push(appId)
        }
        state.listed = undefined
        return created
      })
    })

  /** The component and authorizer a request names, for stats and fault rules: `component` or `component/authorizer`. */
  const ownerOf = (endpoint: ComponentEndpoint, request: EmulatorRequest): string | undefined => {
    const body = parseJsonObject(request.body)
    const componentAppId = stringField(body?.["component_appid"])
    if (componentAppId === undefined) return undefined
    const authorizerAppId = endpoint === "api_authorizer_token" ? stringField(body?.["authorizer_appid"]) : undefined
    return authorizerAppId === undefined ? componentAppId : `${componentAppId}/${authorizerAppId}`
  }

  const count = (endpoint: ComponentEndpoint, owner: string | undefined) => {
    if (owner === undefined) return
    const counts = statsOf(owner.split("/")[0]!)
    switch (endpoint) {
      case "api_component_token":
        counts.componentTokenCalls++
        return
      case "api_start_push_ticket":
        counts.startPushCalls++
        return
      case "api_query_auth":
        counts.queryAuthCalls++
        return
      case "api_authorizer_token":
        counts.authorizerTokenCalls++
        return
      case "api_get_authorizer_list":
        counts.listCalls++
        return
      case "api_create_preauthcode":
        return
    }
  }

  /** The component a request is for, once its component token and `component_appid` check out. */
  const admit = (
    query: URLSearchParams,
    body: Record<string, unknown> | undefined,
    now: number
  ):
    | { readonly componentAppId: string; readonly state: ComponentState; readonly body: Record<string, unknown> }
    | EmulatorResponse =>
  {
    // Newer docs write `access_token` for the same parameter.
    const token = query.get("component_access_token") ?? query.get("access_token")
    if (token === null || token === "") return host.error(41001, "access_token missing")
    if (!Opaque.isWellFormed(token)) return host.error(40014, "invalid access_token")
    const issued = componentTokens.get(token)
    if (issued === undefined) return host.error(40001, "invalid credential, access_token is invalid or not latest")
    if (now >= issued.expiresAt) {
      statsOf(issued.componentAppId).deadTokenUses++
      return issued.expiresAt < issued.naturalExpiry
        ? host.error(40001, "invalid credential, access_token is invalid or not latest")
        : host.error(42001, "access_token expired")
    }
    if (body === undefined) return host.error(47001, "data format error")
    const componentAppId = stringField(body["component_appid"])
    if (componentAppId === undefined) return host.error(41002, "appid missing")
    if (componentAppId !== issued.componentAppId) return host.error(61011, "invalid component")
    return { componentAppId, state: components.get(componentAppId)!, body }
  }

  const componentToken = (body: Record<string, unknown> | undefined, value: string, now: number) => {
    if (body === undefined) return host.error(47001, "data format error")
    const componentAppId = stringField(body["component_appid"])
    if (componentAppId === undefined) return host.error(41002, "appid missing")
    const state = components.get(componentAppId)
    if (state === undefined) return host.error(61011, "invalid component")
    const secret = stringField(body["component_appsecret"])
    if (secret === undefined) return host.error(41004, "appsecret missing")
    if (secret !== state.secret) return host.error(40125, "invalid appsecret")
    if (state.tokensToday >= COMPONENT_TOKEN_DAILY_QUOTA) return host.error(45009, "reach max api daily quota limit")
    const ticket = stringField(body["component_verify_ticket"]) ?? ""
    const expiresAt = host.verifyTicketAcceptance === "latest" && ticket !== state.ticket
      ? undefined
      : state.tickets.get(ticket)
    if (expiresAt === undefined) return host.error(61006, "component ticket is invalid")
    if (now >= expiresAt) return host.error(61005, "component ticket is expired")
    state.tokensToday++
    const previous = state.token === undefined ? undefined : componentTokens.get(state.token)
    if (previous !== undefined) previous.expiresAt = Math.min(previous.expiresAt, now + OVERLAP)
    state.token = value
    componentTokens.set(value, {
      componentAppId,
      naturalExpiry: now + host.tokenLifetime,
      expiresAt: now + host.tokenLifetime
    })
    statsOf(componentAppId).componentTokensIssued++
    return json({ component_access_token: value, expires_in: Math.floor(host.tokenLifetime / SECOND) })
  }

  /** `api_start_push_ticket`: WeChat's refusal, or the component to push a ticket to. */
  const startPushTicket = (
    body: Record<string, unknown> | undefined
  ): EmulatorResponse | { readonly componentAppId: string; readonly state: ComponentState } => {
    if (body === undefined) return host.error(47001, "data format error")
    const componentAppId = stringField(body["component_appid"])
    if (componentAppId === undefined) return host.error(41002, "appid missing")
    const state = components.get(componentAppId)
    if (state === undefined) return host.error(61011, "invalid component")
    const secret = stringField(body["component_secret"])
    if (secret === undefined) return host.error(41004, "appsecret missing")
    if (secret !== state.secret) return host.error(40125, "invalid appsecret")
    state.stopped = false
    return { componentAppId, state }
  }

  /** Issues the authorizer a new token, the previous one living out the overlap. */
  const issueAuthorizerToken = (
    componentAppId: string,
    authorizerAppId: string,
    authorizer: Authorizer,
    value: string,
    now: number
  ) => {
    if (authorizer.token !== undefined) host.tokens.end(authorizer.token, now + OVERLAP)
    authorizer.token = value
    host.tokens.issue(authorizerAppId, value, now)
    statsOf(componentAppId).authorizerTokensIssued++
  }

  const expiresIn = () => Math.floor(host.tokenLifetime / SECOND)

  const queryAuth = (
    state: ComponentState,
    componentAppId: string,
    body: Record<string, unknown>,
    value: string,
    now: number
  ) => {
    if (state.queryAuthToday >= QUERY_AUTH_DAILY_QUOTA) return host.error(45009, "reach max api daily quota limit")
    state.queryAuthToday++
    const code = state.codes.get(stringField(body["authorization_code"]) ?? "")
    if (code === undefined || code.used) return host.error(61009, "code is invalid")
    if (now >= code.expiresAt) return host.error(61010, "code is expired")
    const authorizer = state.authorizers.get(code.authorizerAppId)
    if (authorizer === undefined || !authorizer.authorized) {
      return host.error(61003, "component is not authorized by this account")
    }
    code.used = true
    issueAuthorizerToken(componentAppId, code.authorizerAppId, authorizer, value, now)
    return json({
      authorization_info: {
        authorizer_appid: code.authorizerAppId,
        authorizer_access_token: value,
        expires_in: expiresIn(),
        authorizer_refresh_token: authorizer.refreshToken,
        func_info: funcInfoOf(authorizer.funcInfo ?? DEFAULT_FUNC_INFO)
      }
    })
  }

  const authorizerToken = (
    state: ComponentState,
    componentAppId: string,
    body: Record<string, unknown>,
    value: string,
    rotated: string,
    now: number
  ) => {
    const authorizerAppId = stringField(body["authorizer_appid"])
    if (authorizerAppId === undefined) return host.error(41002, "appid missing")
    const authorizer = state.authorizers.get(authorizerAppId)
    if (authorizer === undefined || !authorizer.authorized) {
      return host.error(61003, "component is not authorized by this account")
    }
    const used = state.authorizerTokensToday.get(authorizerAppId) ?? 0
    if (used >= AUTHORIZER_TOKEN_DAILY_QUOTA) return host.error(45009, "reach max api daily quota limit")
    state.authorizerTokensToday.set(authorizerAppId, used + 1)
    if (stringField(body["authorizer_refresh_token"]) !== authorizer.refreshToken) {
      return host.error(61023, "refresh_token is invalid")
    }
    // WeChat keeps a refresh token until the merchant authorizes again, so by
    // default every refresh answers the same one; `every-refresh` rotates it
    // to prove a client persists whatever comes back.
    if (host.refreshTokenRotation === "every-refresh") {
      authorizer.refreshToken = rotated
      state.listed = undefined
    }
    issueAuthorizerToken(componentAppId, authorizerAppId, authorizer, value, now)
    return json({
      authorizer_access_token: value,
      expires_in: expiresIn(),
      authorizer_refresh_token: authorizer.refreshToken
    })
  }

  const authorizerList = (state: ComponentState, body: Record<string, unknown>) => {
    const offset = body["offset"] ?? 0
    const count = body["count"]
    if (
      typeof offset !== "number" || !Number.isInteger(offset) || offset < 0 ||
      typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > LIST_PAGE_MAX
    ) return host.error(40097, "invalid args")
    if (state.listToday >= LIST_DAILY_QUOTA) return host.error(45009, "reach max api daily quota limit")
    state.listToday++
    if (state.listed === undefined) {
      state.listed = Array.from(state.authorizers).filter(([, authorizer]) => authorizer.listed).map(([appId]) => appId)
    }
    return json({
      total_count: state.listed.length,
      list: state.listed.slice(offset, offset + count).map((appId) => {
        const authorizer = state.authorizers.get(appId)!
        return { authorizer_appid: appId, refresh_token: authorizer.refreshToken, auth_time: authorizer.authTime }
      })
    })
  }

  const answerNow = (
    endpoint: Exclude<ComponentEndpoint, "api_component_token" | "api_start_push_ticket">,
    query: URLSearchParams,
    body: Record<string, unknown> | undefined,
    value: string,
    rotated: string,
    now: number
  ): EmulatorResponse => {
    const admitted = admit(query, body, now)
    if ("_tag" in admitted) return admitted
    const { componentAppId, state } = admitted
    const checked = admitted.body
    switch (endpoint) {
      case "api_create_preauthcode": {
        if (state.preAuthCodesToday >= PRE_AUTH_CODE_DAILY_QUOTA) {
          return host.error(45009, "reach max api daily quota limit")
        }
        state.preAuthCodesToday++
        for (const [code, held] of state.preAuthCodes) if (now >= held.expiresAt) state.preAuthCodes.delete(code)
        const code = `preauthcode@@@${value.slice(0, 86)}`
        state.preAuthCodes.set(code, { expiresAt: now + PRE_AUTH_CODE_LIFETIME, used: false })
        statsOf(componentAppId).preAuthCodes++
        return json({ pre_auth_code: code, expires_in: Math.floor(PRE_AUTH_CODE_LIFETIME / SECOND) })
      }
      case "api_query_auth":
        return queryAuth(state, componentAppId, checked, value, now)
      case "api_authorizer_token":
        return authorizerToken(state, componentAppId, checked, value, rotated, now)
      case "api_get_authorizer_list":
        return authorizerList(state, checked)
    }
  }

  const answer = (endpoint: ComponentEndpoint, request: EmulatorRequest): Effect.Effect<EmulatorResponse> =>
    Effect.gen(function*() {
      if (request.method !== "POST") return host.error(43002, "require POST method")
      // Drawn before the state is touched, so the update below is one atomic step. A second
      // value only when a refresh may rotate the refresh token: estates of 100,000 refresh often.
      const value = yield* Opaque.draw
      const rotated = endpoint === "api_authorizer_token" && host.refreshTokenRotation === "every-refresh"
        ? `refreshtoken@@@${(yield* Opaque.draw).slice(0, 43)}`
        : ""
      const now = yield* Clock.currentTimeMillis
      const body = parseJsonObject(request.body)
      return yield* Effect.sync(() => {
        rollQuotas(now)
        switch (endpoint) {
          case "api_component_token":
            return Effect.succeed(componentToken(body, value, now))
          case "api_start_push_ticket": {
            const started = startPushTicket(body)
            // WeChat answers first and pushes after: the caller is not kept waiting on its own receiver.
            return "_tag" in started
              ? Effect.succeed(started)
              : Effect.as(Effect.forkDaemon(pushTicket(started.componentAppId, started.state)), ok)
          }
          default:
            return Effect.succeed(answerNow(endpoint, request.query, body, value, rotated, now))
        }
      }).pipe(Effect.flatten)
    })

  const resetStats = () => {
    stats = new Map()
  }

  const controls: ComponentControls = {
    registerComponent: (registration) =>
      Effect.sync(() => {
        register(registration)
        pushing.update()
      }),
    setPushUrl: (componentAppId, url) =>
      Effect.map(known(componentAppId), (state) => {
        state.pushUrl = url
        pushing.update()
      }),
    authorize,
    updateAuthorization,
    unauthorize,
    pushTicket: (componentAppId) => Effect.flatMap(known(componentAppId), (state) => pushTicket(componentAppId, state)),
    stopPushes: (componentAppId) =>
      Effect.map(known(componentAppId), (state) => {
        state.stopped = true
      }),
    resumePushes: (componentAppId) =>
      Effect.map(known(componentAppId), (state) => {
        state.stopped = false
      }),
    expireTicket: (componentAppId) =>
      Effect.flatMap(
        known(componentAppId),
        (state) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            for (const [held, expiresAt] of state.tickets) state.tickets.set(held, Math.min(expiresAt, now))
          })
      ),
    invalidateRefreshToken: (componentAppId, authorizerAppId) =>
      Effect.flatMap(
        freshRefreshToken,
        (fresh) =>
          Effect.map(Effect.suspend(() => authorizerOf(componentAppId, authorizerAppId)), (authorizer) => {
            authorizer.refreshToken = fresh
            components.get(componentAppId)!.listed = undefined
            return fresh
          })
      ),
    loseAuthorizer: (componentAppId, authorizerAppId) =>
      Effect.flatMap(
        freshRefreshToken,
        (fresh) =>
          Effect.map(Effect.suspend(() => authorizerOf(componentAppId, authorizerAppId)), (authorizer) => {
            authorizer.refreshToken = fresh
            authorizer.listed = false
            components.get(componentAppId)!.listed = undefined
          })
      ),
    generateAuthorizers,
    runTicketSchedule,
    isValidComponentToken: (token, componentAppId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const issued = componentTokens.get(token)
        return issued !== undefined && now < issued.expiresAt &&
          (componentAppId === undefined || issued.componentAppId === componentAppId)
      }),
    isValidAuthorizerToken: (token, authorizerAppId) =>
      Effect.map(Clock.currentTimeMillis, (now) => host.tokens.isAlive(token, authorizerAppId, now)),
    currentRefreshToken: (componentAppId, authorizerAppId) =>
      Effect.sync(() => {
        const authorizer = components.get(componentAppId)?.authorizers.get(authorizerAppId)
        return authorizer?.authorized === true ? authorizer.refreshToken : undefined
      }),
    currentVerifyTicket: (componentAppId) => Effect.sync(() => components.get(componentAppId)?.ticket),
    pushLog: (componentAppId) => Effect.sync(() => [...(components.get(componentAppId)?.log ?? [])]),
    stats: (componentAppId) => Effect.sync(() => ({ ...(stats.get(componentAppId) ?? emptyStats()) })),
    resetStats: Effect.sync(() => resetStats())
  }

  return {
    controls,
    ownerOf,
    count,
    answer,
    resetStats,
    /** Whether a fault rule's `appId` names this request: its component or, for `api_authorizer_token`, its authorizer. */
    matches: (ruleOwner: string, owner: string | undefined) =>
      owner !== undefined && owner.split("/").includes(ruleOwner)
  }
}
