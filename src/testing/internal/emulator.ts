/**
 * The emulator's core: WeChat's token, stable-token, ticket and callback-IP
 * endpoints as one `handle(request)` that both transports share.
 *
 * State is one mutable record per emulator, touched only inside
 * `Effect.sync` blocks: JavaScript runs each block to completion, so every
 * request sees and updates the state atomically without a lock.
 *
 * @internal
 */
import { Clock, Duration, Effect } from "effect"
import type { ComponentEndpoint, Endpoint, Fault, FaultRule, SuiteEndpoint, WeComEndpoint } from "../Fault.js"
import type {
  AppRegistration,
  AppStats,
  EmulatorOptions,
  EmulatorRequest,
  EmulatorResponse,
  Stats,
  TicketType,
  WeChatEmulatorShape
} from "../WeChatEmulator.js"
import * as Apis from "./apis.js"
import * as Component from "./component.js"
import { getOrMake } from "./getOrMake.js"
import { json, parseJsonObject, stringField } from "./json.js"
import * as Opaque from "./opaque.js"
import { DAY, MINUTE, SECOND } from "./units.js"
import * as WeCom from "./wecom.js"
import * as WeComSuite from "./wecomSuite.js"

/** A replaced token (classic, or stable after a forced refresh) lives this much longer. */
const OVERLAP = 5 * MINUTE
/** Stable tokens are renewed by WeChat itself once less than this remains. */
const STABLE_RENEWAL = 5 * MINUTE

const CLASSIC_DAILY_QUOTA = 2_000
const STABLE_MINUTE_QUOTA = 10_000
const STABLE_DAILY_QUOTA = 500_000
const FORCE_REFRESH_DAILY = 20
const FORCE_REFRESH_SPACING = 30 * SECOND
const TICKET_DAILY_QUOTA = 100_000
const CALLBACK_IP_DAILY_QUOTA = 10_000

// WeChat's real callback-IP answer is a list of its egress ranges.
const CALLBACK_IPS = ["101.226.103.0/25", "101.226.62.0/26", "180.163.15.0/24", "58.251.80.0/24"]

interface Issued {
  readonly appId: string
  readonly issuedAt: number
  /** Natural end of life. */
  readonly naturalExpiry: number
  /** When it actually dies: the natural end, or earlier once replaced or killed. */
  expiresAt: number
}

interface AppState {
  secret: string
  ipWhitelist: ReadonlyArray<string> | undefined
  classic: string | undefined
  stable: string | undefined
  tickets: Record<TicketType, string | undefined>
  classicToday: number
  stableToday: number
  stableThisMinute: number
  ticketsToday: number
  callbackIpToday: number
  forcedToday: number
  lastForcedAt: number | undefined
}

interface ArmedRule {
  readonly rule: FaultRule
  remaining: number | undefined
}

type MutableStats = { -readonly [K in keyof AppStats]: AppStats[K] }

const emptyStats = (): MutableStats => ({
  classicCalls: 0,
  stableCalls: 0,
  forceRefreshes: 0,
  tokensIssued: 0,
  ticketCalls: 0,
  callbackIpCalls: 0,
  deadTokenUses: 0
})

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0")

// WeChat ends every errmsg with a request id (three groups of 8 hex digits),
// which `openapi/rid/get` explains: `invalid appid rid: 6746b0c2-6f1a2b3c-0a1b2c3d`.
// Counted per emulator, so every run of a test sees the same ids.
const errorAnswers = () => {
  let answered = 0
  return (errcode: number, errmsg: string): EmulatorResponse => {
    answered++
    return json({
      errcode,
      errmsg: `${errmsg} rid: ${hex8(0x6746b0c2 + answered)}-${hex8(Math.imul(answered, 0x9e3779b1))}-${hex8(errcode)}`
    })
  }
}

const weComEndpoints: ReadonlySet<string> = new Set<WeComEndpoint>([
  "gettoken",
  "get_jsapi_ticket",
  "ticket_get",
  "agent_get"
])

const notFound: EmulatorResponse = {
  _tag: "Respond",
  status: 404,
  contentType: "text/plain",
  body: "404 page not found"
}

const endpointOf = (path: string): Endpoint | undefined => {
  switch (path) {
    case "/cgi-bin/token":
      return "token"
    case "/cgi-bin/stable_token":
      return "stable_token"
    case "/cgi-bin/ticket/getticket":
      return "getticket"
    case "/cgi-bin/getcallbackip":
      return "getcallbackip"
    default:
      return undefined
  }
}

const faultResponse = (
  fault: Fault,
  error: (errcode: number, errmsg: string) => EmulatorResponse
): Effect.Effect<EmulatorResponse | undefined> => {
  switch (fault._tag) {
    case "Busy":
      return Effect.succeed(error(-1, "system error"))
    case "HttpStatus":
      return Effect.succeed({ _tag: "Respond", status: fault.status, contentType: "text/html", body: fault.body })
    case "Malformed":
      return Effect.succeed({
        _tag: "Respond",
        status: 200,
        contentType: "application/json; encoding=utf-8",
        body: fault.body
      })
    case "Errcode":
      return Effect.succeed(error(fault.errcode, fault.errmsg))
    case "ConnectionRefused":
    case "ConnectionReset":
      return Effect.succeed({ _tag: "Drop", reason: fault._tag })
    case "Slow":
      // Answers normally once the delay has passed.
      return Effect.as(Effect.sleep(fault.delay), undefined)
  }
}

/** @internal */
export const make = (options: EmulatorOptions = {}): Effect.Effect<WeChatEmulatorShape> =>
  Effect.sync(() => {
    const tokenLifetime = Duration.toMillis(options.tokenLifetime ?? Duration.seconds(7200))
    const ticketLifetime = Duration.toMillis(options.ticketLifetime ?? Duration.seconds(7200))
    const ticketRenewal = options.ticketRenewal ?? "same-while-valid"
    const error = errorAnswers()
    let callerIp = options.callerIp ?? "127.0.0.1"
    const apps = new Map<string, AppState>()
    const tokens = new Map<string, Issued>()
    const tickets = new Map<string, Issued & { readonly type: TicketType }>()
    let rules: Array<ArmedRule> = []
    let appStats = new Map<string, MutableStats>()
    let deadTokenUses = 0
    let inFlight = 0
    let peakInFlight = 0
    // Quotas reset when the day (or minute) number changes.
    let quotaDay = 0
    let quotaMinute = 0

    const register = (app: AppRegistration) => {
      const known = apps.get(app.appId)
      if (known !== undefined) {
        known.secret = app.secret
        known.ipWhitelist = app.ipWhitelist
        return
      }
      apps.set(app.appId, {
        secret: app.secret,
        ipWhitelist: app.ipWhitelist,
        classic: undefined,
        stable: undefined,
        tickets: { jsapi: undefined, wx_card: undefined },
        classicToday: 0,
        stableToday: 0,
        stableThisMinute: 0,
        ticketsToday: 0,
        callbackIpToday: 0,
        forcedToday: 0,
        lastForcedAt: undefined
      })
    }
    for (const app of options.apps ?? []) register(app)
    const wecom = WeCom.make({ error, callerIp: () => callerIp, tokenLifetime, ticketLifetime }, options.corps ?? [])
    // Authorizer tokens are official-account tokens of the authorizer: they go in `tokens` like any other.
    const component = Component.make({
      error,
      tokenLifetime,
      transport: options.pushTransport ?? Component.fetchTransport,
      refreshTokenRotation: options.refreshTokenRotation ?? "on-authorization",
      verifyTicketAcceptance: options.verifyTicketAcceptance ?? "latest",
      tokens: {
        issue: (appId, value, now) => {
          if (!apps.has(appId)) register({ appId, secret: "" })
          tokens.set(value, {
            appId,
            issuedAt: now,
            naturalExpiry: now + tokenLifetime,
            expiresAt: now + tokenLifetime
          })
        },
        end: (value, at) => {
          const issued = tokens.get(value)
          if (issued !== undefined) issued.expiresAt = Math.min(issued.expiresAt, at)
        },
        isAlive: (value, appId, now) => {
          const issued = tokens.get(value)
          return issued !== undefined && issued.appId === appId && now < issued.expiresAt
        }
      }
    }, options.components ?? [])
    // Corp tokens of suites are WeCom corp tokens: they go in the WeCom part's table.
    const suite = WeComSuite.make({
      error,
      tokenLifetime,
      transport: options.pushTransport ?? Component.fetchTransport,
      issueCorpToken: wecom.controls.issueCorpToken
    }, options.suites ?? [])

    const statsOf = (appId: string): MutableStats => getOrMake(appStats, appId, emptyStats)

    const rollQuotas = (now: number) => {
      const day = Math.floor(now / DAY)
      if (day !== quotaDay) {
        quotaDay = day
        for (const app of apps.values()) {
          app.classicToday = 0
          app.stableToday = 0
          app.ticketsToday = 0
          app.callbackIpToday = 0
          app.forcedToday = 0
        }
      }
      const minute = Math.floor(now / MINUTE)
      if (minute !== quotaMinute) {
        quotaMinute = minute
        for (const app of apps.values()) app.stableThisMinute = 0
      }
    }

    const isAlive = (issued: Issued | undefined, now: number): boolean => issued !== undefined && now < issued.expiresAt

    /** Shortens a replaced token's (or ticket's) life to the overlap, never lengthens it. */
    const cut = (issued: Issued | undefined, now: number) => {
      if (issued !== undefined) issued.expiresAt = Math.min(issued.expiresAt, now + OVERLAP)
    }

    const issue = (appId: string, value: string, now: number) => {
      tokens.set(value, { appId, issuedAt: now, naturalExpiry: now + tokenLifetime, expiresAt: now + tokenLifetime })
      statsOf(appId).tokensIssued++
      return json({ access_token: value, expires_in: Math.floor(tokenLifetime / SECOND) })
    }

    /** The checks both token endpoints make, in WeChat's order; the app when they pass. */
    const admit = (
      appId: string | undefined,
      secret: string | undefined,
      wrongSecret: EmulatorResponse
    ): { readonly _tag: "Admitted"; readonly appId: string; readonly app: AppState } | EmulatorResponse => {
      if (appId === undefined) return error(41002, "appid missing")
      if (secret === undefined) return error(41004, "appsecret missing")
      const app = apps.get(appId)
      if (app === undefined) return error(40013, "invalid appid")
      if (app.ipWhitelist !== undefined && !app.ipWhitelist.includes(callerIp)) {
        return error(40164, `invalid ip ${callerIp} ipv6 ::ffff:${callerIp}, not in whitelist`)
      }
      if (app.secret !== secret) return wrongSecret
      return { _tag: "Admitted", appId, app }
    }

    const classicToken = (query: URLSearchParams, value: string, now: number): EmulatorResponse => {
      if (query.get("grant_type") !== "client_credential") return error(40002, "invalid grant_type")
      const admission = admit(
        stringField(query.get("appid")),
        stringField(query.get("secret")),
        error(40001, "invalid credential, access_token is invalid or not latest")
      )
      if (admission._tag !== "Admitted") return admission
      const { app: admitted, appId } = admission
      if (admitted.classicToday >= CLASSIC_DAILY_QUOTA) return error(45009, "reach max api daily quota limit")
      admitted.classicToday++
      cut(admitted.classic === undefined ? undefined : tokens.get(admitted.classic), now)
      admitted.classic = value
      return issue(appId, value, now)
    }

    const stableToken = (body: Record<string, unknown> | undefined, value: string, now: number): EmulatorResponse => {
      if (body === undefined) return error(47001, "data format error")
      if (body["grant_type"] !== "client_credential") return error(40002, "invalid grant_type")
      const admission = admit(
        stringField(body["appid"]),
        stringField(body["secret"]),
        error(40125, "invalid appsecret")
      )
      if (admission._tag !== "Admitted") return admission
      const { app: admitted, appId } = admission
      if (admitted.stableThisMinute >= STABLE_MINUTE_QUOTA) return error(45011, "api minute-quota reach limit")
      if (admitted.stableToday >= STABLE_DAILY_QUOTA) return error(45009, "reach max api daily quota limit")
      admitted.stableThisMinute++
      admitted.stableToday++
      const current = admitted.stable === undefined ? undefined : tokens.get(admitted.stable)
      if (body["force_refresh"] === true) {
        if (admitted.forcedToday >= FORCE_REFRESH_DAILY) return error(45009, "reach max api daily quota limit")
        if (admitted.lastForcedAt !== undefined && now - admitted.lastForcedAt < FORCE_REFRESH_SPACING) {
          return error(45011, "api minute-quota reach limit mustslower retry next minute")
        }
        admitted.forcedToday++
        admitted.lastForcedAt = now
        cut(current, now)
      } else if (current !== undefined && current.expiresAt - now > STABLE_RENEWAL) {
        // The same token while it is not yet due for renewal, with what remains of its life.
        return json({ access_token: admitted.stable, expires_in: Math.floor((current.expiresAt - now) / SECOND) })
      }
      // A renewed token leaves the previous one its natural (at most five-minute) rest of life.
      admitted.stable = value
      return issue(appId, value, now)
    }

    /** The app owning `token` when WeChat would accept it; otherwise WeChat's answer. */
    const checkToken = (token: string | null, now: number): { readonly appId: string } | EmulatorResponse => {
      if (token === null || token === "") return error(41001, "access_token missing")
      if (!Opaque.isWellFormed(token)) {
        deadTokenUses++
        return error(40014, "invalid access_token")
      }
      const issued = tokens.get(token)
      if (issued === undefined) {
        deadTokenUses++
        return error(40001, "invalid credential, access_token is invalid or not latest")
      }
      if (now < issued.expiresAt) return { appId: issued.appId }
      deadTokenUses++
      statsOf(issued.appId).deadTokenUses++
      return issued.expiresAt < issued.naturalExpiry
        ? error(40001, "invalid credential, access_token is invalid or not latest")
        : error(42001, "access_token expired")
    }

    const getTicket = (appId: string, query: URLSearchParams, value: string, now: number): EmulatorResponse => {
      const type = query.get("type")
      if (type !== "jsapi" && type !== "wx_card") return error(40097, "invalid args")
      const app = apps.get(appId)
      if (app === undefined) return error(40013, "invalid appid")
      if (app.ticketsToday >= TICKET_DAILY_QUOTA) return error(45009, "reach max api daily quota limit")
      app.ticketsToday++
      const expiresIn = Math.floor(ticketLifetime / SECOND)
      const held = app.tickets[type]
      const current = held === undefined ? undefined : tickets.get(held)
      if (ticketRenewal === "same-while-valid" && isAlive(current, now)) {
        // The ticket already issued, labelled with a full lifetime again.
        return json({ errcode: 0, errmsg: "ok", ticket: held, expires_in: expiresIn })
      }
      cut(current, now)
      app.tickets[type] = value
      tickets.set(value, {
        appId,
        type,
        issuedAt: now,
        naturalExpiry: now + ticketLifetime,
        expiresAt: now + ticketLifetime
      })
      return json({ errcode: 0, errmsg: "ok", ticket: value, expires_in: expiresIn })
    }

    const callbackIps = (appId: string): EmulatorResponse => {
      const app = apps.get(appId)
      if (app === undefined) return error(40013, "invalid appid")
      if (app.callbackIpToday >= CALLBACK_IP_DAILY_QUOTA) return error(45009, "reach max api daily quota limit")
      app.callbackIpToday++
      return json({ ip_list: CALLBACK_IPS })
    }

    /** Who a request is attributed to, for stats and app-scoped fault rules. */
    const appOf = (endpoint: Endpoint, request: EmulatorRequest): string | undefined => {
      switch (endpoint) {
        case "token":
          return stringField(request.query.get("appid"))
        case "stable_token":
          return stringField(parseJsonObject(request.body)?.["appid"])
        case "getticket":
        case "getcallbackip": {
          const token = request.query.get("access_token")
          return token === null ? undefined : tokens.get(token)?.appId
        }
      }
    }

    const count = (endpoint: Endpoint, appId: string | undefined, body: string) => {
      if (appId === undefined) return
      const stats = statsOf(appId)
      switch (endpoint) {
        case "token":
          stats.classicCalls++
          return
        case "stable_token":
          stats.stableCalls++
          if (parseJsonObject(body)?.["force_refresh"] === true) stats.forceRefreshes++
          return
        case "getticket":
          stats.ticketCalls++
          return
        case "getcallbackip":
          stats.callbackIpCalls++
          return
      }
    }

    const takeFault = (
      endpoint: Endpoint | WeComEndpoint | ComponentEndpoint | SuiteEndpoint,
      appId: string | undefined
    ): Fault | undefined => {
      const armed = rules.find(({ rule }) =>
        (rule.endpoints === undefined || rule.endpoints.includes(endpoint)) &&
        (rule.appId === undefined || rule.appId === appId ||
          (weComEndpoints.has(endpoint) && wecom.matches(rule.appId, appId)) ||
          (Component.endpoints.has(endpoint) && component.matches(rule.appId, appId)) ||
          (WeComSuite.endpoints.has(endpoint) && suite.matches(rule.appId, appId)))
      )
      if (armed === undefined) return undefined
      if (armed.remaining !== undefined) {
        armed.remaining--
        if (armed.remaining <= 0) rules = rules.filter((candidate) => candidate !== armed)
      }
      return armed.rule.fault
    }

    const answer = (endpoint: Endpoint, request: EmulatorRequest, value: string, now: number): EmulatorResponse => {
      rollQuotas(now)
      switch (endpoint) {
        case "token":
          return request.method === "GET" ? classicToken(request.query, value, now) : notFound
        case "stable_token":
          return request.method === "POST"
            ? stableToken(parseJsonObject(request.body), value, now)
            : error(43002, "require POST method")
        case "getticket":
        case "getcallbackip": {
          const owner = checkToken(request.query.get("access_token"), now)
          if (!("appId" in owner)) return owner
          return endpoint === "getticket"
            ? getTicket(owner.appId, request.query, value, now)
            : callbackIps(owner.appId)
        }
      }
    }

    // WeCom and component requests take the same path as WeChat's: counted, faults, then the answer.
    const handlePart = <E extends WeComEndpoint | ComponentEndpoint | SuiteEndpoint>(
      part: {
        readonly ownerOf: (endpoint: E, request: EmulatorRequest) => string | undefined
        readonly count: (endpoint: E, owner: string | undefined) => void
        readonly answer: (endpoint: E, request: EmulatorRequest) => Effect.Effect<EmulatorResponse>
      },
      endpoint: E,
      request: EmulatorRequest
    ): Effect.Effect<EmulatorResponse> =>
      Effect.gen(function*() {
        const fault = yield* Effect.sync(() => {
          const owner = part.ownerOf(endpoint, request)
          part.count(endpoint, owner)
          return takeFault(endpoint, owner)
        })
        const injected = fault === undefined ? undefined : yield* faultResponse(fault, error)
        return injected ?? (yield* part.answer(endpoint, request))
      })

    // The business APIs behind the token (for proxies): a token either host issued is theirs to judge.
    const apis = Apis.make({
      error,
      secretOf: (appId) => apps.get(appId)?.secret,
      weChatOwner: (token, now) => {
        if (!tokens.has(token)) return undefined
        const owner = checkToken(token, now)
        return "appId" in owner ? owner.appId : owner
      },
      weComOwner: (token, now) => {
        if (!wecom.controls.isKnownToken(token)) return undefined
        const owner = wecom.checkToken(token, now)
        return "issued" in owner ? `${owner.issued.corpId}/${owner.issued.agent}` : owner
      }
    })
    const weComPart = {
      ownerOf: (endpoint: WeComEndpoint, request: EmulatorRequest) => wecom.ownerOf(endpoint, request.query),
      count: wecom.count,
      answer: (endpoint: WeComEndpoint, request: EmulatorRequest) =>
        Effect.gen(function*() {
          const value = yield* Opaque.draw
          const later = yield* Clock.currentTimeMillis
          return yield* Effect.sync(() => wecom.answer(endpoint, request.method, request.query, value, later))
        })
    }

    const handle = (request: EmulatorRequest): Effect.Effect<EmulatorResponse> => {
      if (Apis.serves(request.path)) {
        return Effect.flatMap(Clock.currentTimeMillis, (now) => apis.handle(request, now))
      }
      const weComEndpoint = WeCom.endpointOf(request.path)
      const componentEndpoint = Component.endpointOf(request.path)
      const suiteEndpoint = WeComSuite.endpointOf(request.path)
      const endpoint = endpointOf(request.path)
      if (
        endpoint === undefined && weComEndpoint === undefined && componentEndpoint === undefined &&
        suiteEndpoint === undefined
      ) {
        return Effect.succeed(notFound)
      }
      const enter = Effect.sync(() => {
        inFlight++
        peakInFlight = Math.max(peakInFlight, inFlight)
      })
      const leave = Effect.sync(() => {
        inFlight--
      })
      const respond = weComEndpoint !== undefined
        ? handlePart(weComPart, weComEndpoint, request)
        : componentEndpoint !== undefined
        ? handlePart(component, componentEndpoint, request)
        : suiteEndpoint !== undefined
        ? handlePart(suite, suiteEndpoint, request)
        : endpoint !== undefined
        ? handleWeChat(endpoint, request)
        : Effect.succeed(notFound)
      return Effect.acquireUseRelease(enter, () => respond, () => leave)
    }

    const handleWeChat = (endpoint: Endpoint, request: EmulatorRequest): Effect.Effect<EmulatorResponse> =>
      Effect.gen(function*() {
        const fault = yield* Effect.sync(() => {
          const appId = appOf(endpoint, request)
          count(endpoint, appId, request.body)
          return takeFault(endpoint, appId)
        })
        const injected = fault === undefined ? undefined : yield* faultResponse(fault, error)
        if (injected !== undefined) return injected
        // Drawn before the state is touched, so the update below is one atomic step.
        const value = yield* Opaque.draw
        const later = yield* Clock.currentTimeMillis
        return yield* Effect.sync(() => answer(endpoint, request, value, later))
      })

    const snapshot = (): Stats => ({
      apps: Object.fromEntries(Array.from(appStats, ([appId, stats]) => [appId, { ...stats }])),
      deadTokenUses,
      peakInFlight
    })

    return {
      handle,
      registerApp: (app) => Effect.sync(() => register(app)),
      setCallerIp: (ip) =>
        Effect.sync(() => {
          callerIp = ip
        }),
      killTokens: (appId) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            for (const issued of tokens.values()) {
              if (issued.appId === appId) issued.expiresAt = Math.min(issued.expiresAt, now)
            }
          })),
      isValidToken: (token) => Effect.map(Clock.currentTimeMillis, (now) => isAlive(tokens.get(token), now)),
      isValidTicket: (ticket, type) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const issued = tickets.get(ticket)
          return issued !== undefined && issued.type === type && isAlive(issued, now)
        }),
      clearQuota: (appId) =>
        Effect.sync(() => {
          const app = apps.get(appId)
          if (app === undefined) return
          app.classicToday = 0
          app.stableToday = 0
          app.stableThisMinute = 0
          app.ticketsToday = 0
          app.callbackIpToday = 0
        }),
      injectFault: (rule) =>
        Effect.sync(() => {
          rules.push({ rule, remaining: rule.times })
        }),
      clearFaults: Effect.sync(() => {
        rules = []
      }),
      stats: Effect.sync(snapshot),
      appStats: (appId) => Effect.sync(() => ({ ...(appStats.get(appId) ?? emptyStats()) })),
      wecom: {
        registerCorp: (registration) => Effect.sync(() => wecom.controls.registerCorp(registration)),
        endToken: (token) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => wecom.controls.endToken(token, now))),
        isValidToken: (token, owner) =>
          Effect.map(Clock.currentTimeMillis, (now) => wecom.controls.isValidToken(token, owner, now)),
        isValidTicket: (ticket, kind, owner) =>
          Effect.map(Clock.currentTimeMillis, (now) => wecom.controls.isValidTicket(ticket, kind, owner, now)),
        stats: (key) => Effect.sync(() => wecom.controls.stats(key)),
        resetStats: Effect.sync(() => wecom.controls.resetStats())
      },
      apis: {
        calls: Effect.sync(() => apis.controls.calls()),
        resetCalls: Effect.sync(() => apis.controls.resetCalls()),
        seedMedia: (size) => Effect.sync(() => apis.controls.seedMedia(size))
      },
      component: component.controls,
      wecomSuite: suite.controls,
      resetStats: Effect.sync(() => {
        wecom.controls.resetStats()
        component.resetStats()
        suite.resetStats()
        appStats = new Map()
        deadTokenUses = 0
        peakInFlight = inFlight
      })
    }
  })
