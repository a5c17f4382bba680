/**
 * The emulator's WeCom service-provider side (企业微信第三方应用): suite
 * tickets pushed encrypted to each suite's command URL every 10 minutes,
 * the suite token, pre-auth codes and their session, installs (a
 * `create_auth` push with a temporary code, exchanged by
 * `v2/get_permanent_code`), `get_auth_info`, corp tokens from permanent
 * codes, the provider token, and the `change_auth`, `cancel_auth` and
 * `reset_permanent_code` pushes, with WeCom's errcodes.
 *
 * Corp tokens are WeCom corp tokens: they live in the WeCom part's token
 * table (through `Host.issueCorpToken`), so its ticket endpoints take them.
 * State is touched only inside `Effect.sync` blocks, as in the rest of the
 * emulator, so each request updates it atomically.
 *
 * @internal
 */
import { Clock, Data, Duration, Effect, type Scope } from "effect"
import * as MessageCrypto from "../../MessageCrypto.js"
import type { SuiteEndpoint } from "../Fault.js"
import type { EmulatorRequest, EmulatorResponse, PushRecord, PushTransport } from "../WeChatEmulator.js"
import { getOrMake } from "./getOrMake.js"
import { json, parseJsonObject, stringField } from "./json.js"
import * as Opaque from "./opaque.js"
import * as PushDelivery from "./pushDelivery.js"
import { MINUTE, SECOND } from "./units.js"
import type * as WeCom from "./wecom.js"

/** WeCom pushes a suite ticket every 10 minutes… */
const TICKET_PUSH_INTERVAL = Duration.minutes(10)
/** …each good for 30 minutes: two missed pushes are survivable, a third is not (40085). */
const TICKET_LIFETIME = 30 * MINUTE
/** A call in a token's last 5 minutes gets a new one; the previous one lives out its life. */
const RENEWAL = 5 * MINUTE
const PRE_AUTH_CODE_LIFETIME = 1200 * SECOND
/** The temporary code of a `create_auth` or `reset_permanent_code` push is good for 10 minutes. */
const AUTH_CODE_LIFETIME = 10 * MINUTE
/** WeCom waits for `success`, then tries again: three attempts in all. */

/** @internal */
export class SuiteControlError extends Data.TaggedError("SuiteControlError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** The push types of a suite's command URL. */
export type SuiteInfoType = "suite_ticket" | "create_auth" | "change_auth" | "cancel_auth" | "reset_permanent_code"

/** A suite WeCom knows; `commandUrl` is where its pushes go (none pushed without it). */
export interface SuiteRegistration {
  readonly suiteId: string
  readonly secret: string
  readonly messageToken: string
  readonly encodingAesKey: string
  readonly commandUrl?: string
}

/** One suite's counters. */
export interface SuiteStats {
  readonly suiteTokenCalls: number
  readonly suiteTokensIssued: number
  readonly preAuthCodes: number
  readonly permanentCodeCalls: number
  readonly corpTokenCalls: number
  readonly providerTokenCalls: number
  readonly pushesSent: number
  readonly pushesDelivered: number
  readonly pushesAbandoned: number
}

class Counters implements SuiteStats {
  suiteTokenCalls = 0
  suiteTokensIssued = 0
  preAuthCodes = 0
  permanentCodeCalls = 0
  corpTokenCalls = 0
  providerTokenCalls = 0
  pushesSent = 0
  pushesDelivered = 0
  pushesAbandoned = 0
}

/** One corp's install of a suite: a few short strings, `generateCorps` makes many. */
interface Install {
  permanentCode: string
  readonly agentId: number
  authorized: boolean
}

interface SuiteState {
  secret: string
  crypto: MessageCrypto.MessageCrypto
  commandUrl: string | undefined
  stopped: boolean
  /** Every ticket pushed in the last 30 minutes and when it expires. */
  tickets: Map<string, number>
  token: string | undefined
  corps: Map<string, Install>
  preAuthCodes: Map<string, number>
  /** Temporary codes: the corp they install and when they expire. */
  authCodes: Map<string, { readonly corpId: string; readonly expiresAt: number }>
  log: Array<PushRecord>
}

interface SuiteToken {
  readonly suiteId: string
  readonly expiresAt: number
}

/** What the suite part needs from the emulator around it. */
export interface Host {
  readonly error: (errcode: number, errmsg: string) => EmulatorResponse
  readonly tokenLifetime: number
  readonly transport: PushTransport
  /** WeCom's own `gettoken` rules, for the corp tokens `get_corp_token` issues. */
  readonly issueCorpToken: WeCom.Controls["issueCorpToken"]
}

/** The controls, each an Effect reading the clock itself. */
export interface SuiteControls {
  readonly registerSuite: (registration: SuiteRegistration) => Effect.Effect<void>
  readonly registerProvider: (corpId: string, secret: string) => Effect.Effect<void>
  readonly setCommandUrl: (suiteId: string, url: string | undefined) => Effect.Effect<void, SuiteControlError>
  /** Pushes a new suite ticket now (even while pushes are stopped) and answers it. */
  readonly pushTicket: (suiteId: string) => Effect.Effect<string, SuiteControlError>
  /** Every ticket held expires and pushes stop: `get_suite_token` answers 40085 until `resumePushes`. */
  readonly loseTickets: (suiteId: string) => Effect.Effect<void, SuiteControlError>
  readonly resumePushes: (suiteId: string) => Effect.Effect<void, SuiteControlError>
  /** A corp installs the suite's app: a `create_auth` push whose temporary code is answered. */
  readonly install: (suiteId: string, corpId: string, agentId?: number) => Effect.Effect<string, SuiteControlError>
  readonly changeAuth: (suiteId: string, corpId: string) => Effect.Effect<void, SuiteControlError>
  /** The corp uninstalls: its permanent code dies and `cancel_auth` is pushed. */
  readonly revoke: (suiteId: string, corpId: string) => Effect.Effect<void, SuiteControlError>
  /** The permanent code is reset: the old one dies and `reset_permanent_code` pushes a temporary code. */
  readonly resetPermanentCode: (suiteId: string, corpId: string) => Effect.Effect<string, SuiteControlError>
  /** `n` installed corps with their permanent codes, without pushes, for scale tests. */
  readonly generateCorps: (
    suiteId: string,
    n: number
  ) => Effect.Effect<
    ReadonlyArray<{ readonly corpId: string; readonly permanentCode: string; readonly agentId: number }>,
    SuiteControlError
  >
  /** Starts the 10-minute ticket pushes to every suite with a command URL, for the scope's life. */
  readonly runTicketSchedule: Effect.Effect<void, never, Scope.Scope>
  readonly currentTicket: (suiteId: string) => Effect.Effect<string | undefined>
  readonly permanentCode: (suiteId: string, corpId: string) => Effect.Effect<string | undefined>
  readonly isValidSuiteToken: (token: string, suiteId?: string) => Effect.Effect<boolean>
  readonly pushLog: (suiteId: string) => Effect.Effect<ReadonlyArray<PushRecord>>
  readonly stats: (suiteId: string) => Effect.Effect<SuiteStats>
  readonly resetStats: Effect.Effect<void>
}

const PATHS: ReadonlyArray<readonly [string, SuiteEndpoint]> = [
  ["/cgi-bin/service/get_suite_token", "get_suite_token"],
  ["/cgi-bin/service/get_pre_auth_code", "get_pre_auth_code"],
  ["/cgi-bin/service/set_session_info", "set_session_info"],
  ["/cgi-bin/service/v2/get_permanent_code", "get_permanent_code"],
  ["/cgi-bin/service/get_auth_info", "get_auth_info"],
  ["/cgi-bin/service/get_corp_token", "get_corp_token"],
  ["/cgi-bin/service/get_provider_token", "get_provider_token"]
]
const BY_PATH = new Map(PATHS)

/** The service-provider paths. */
export const endpointOf = (path: string): SuiteEndpoint | undefined => BY_PATH.get(path)

/** Every suite endpoint, for fault rules. */
export const endpoints: ReadonlySet<string> = new Set(PATHS.map(([, endpoint]) => endpoint))

// WeCom encrypts a suite's pushes for the suite id.
const cryptoOf = (registration: SuiteRegistration): MessageCrypto.MessageCrypto =>
  PushDelivery.cryptoFor("suite", { ...registration, receiveId: registration.suiteId })

const element = PushDelivery.element

/** @internal */
export const make = (host: Host, registrations: ReadonlyArray<SuiteRegistration>) => {
  const suites = new Map<string, SuiteState>()
  const suiteTokens = new Map<string, SuiteToken>()
  const providers = new Map<string, { secret: string; token: string | undefined }>()
  const providerTokens = new Map<string, { readonly corpId: string; readonly expiresAt: number }>()
  let stats = new Map<string, Counters>()
  const resetStats = () => {
    stats = new Map()
  }
  let scheduleRunning = false
  let generated = 0
  const pushing = PushDelivery.pushGate(() =>
    Array.from(suites.values()).some((state) => state.commandUrl !== undefined)
  )

  const register = (registration: SuiteRegistration) => {
    const crypto = cryptoOf(registration)
    const known = suites.get(registration.suiteId)
    if (known !== undefined) {
      known.secret = registration.secret
      known.crypto = crypto
      known.commandUrl = registration.commandUrl
    } else {
      suites.set(registration.suiteId, {
        secret: registration.secret,
        crypto,
        commandUrl: registration.commandUrl,
        stopped: false,
        tickets: new Map(),
        token: undefined,
        corps: new Map(),
        preAuthCodes: new Map(),
        authCodes: new Map(),
        log: []
      })
    }
    pushing.update()
  }
  for (const registration of registrations) register(registration)

  const statsOf = (suiteId: string): Counters => getOrMake(stats, suiteId, () => new Counters())

  const known = (suiteId: string): Effect.Effect<SuiteState, SuiteControlError> =>
    Effect.suspend(() => {
      const state = suites.get(suiteId)
      return state === undefined
        ? Effect.fail(new SuiteControlError({ reason: `unknown suite ${suiteId}` }))
        : Effect.succeed(state)
    })

  const installOf = (state: SuiteState, suiteId: string, corpId: string) => {
    const install = state.corps.get(corpId)
    return install === undefined || !install.authorized
      ? Effect.fail(new SuiteControlError({ reason: `${corpId} has not installed suite ${suiteId}` }))
      : Effect.succeed(install)
  }

  /** Encrypts one event and POSTs it to the command URL until it is answered `success`, three times at most. */
  const push = (
    suiteId: string,
    infoType: SuiteInfoType,
    fields: ReadonlyArray<readonly [string, string | number]>
  ): Effect.Effect<void> =>
    Effect.gen(function*() {
      const state = suites.get(suiteId)
      if (state === undefined) return
      const now = yield* Clock.currentTimeMillis
      const xml = `<xml>${element("SuiteId", suiteId)}${element("InfoType", infoType)}${
        element("TimeStamp", Math.floor(now / SECOND))
      }${fields.map(([name, value]) => element(name, value)).join("")}</xml>`
      const url = state.commandUrl
      if (url === undefined) {
        yield* Effect.sync(() =>
          PushDelivery.remember(state, { infoType, xml, attempts: 0, delivered: false, failure: "no URL" })
        )
        return
      }
      const sealed = yield* state.crypto.seal(xml)
      const query = new URLSearchParams({
        msg_signature: sealed.msgSignature,
        timestamp: sealed.timestamp,
        nonce: sealed.nonce
      })
      // WeCom's envelope names the receiver (the suite id) beside the ciphertext.
      const body = `<xml>${element("ToUserName", suiteId)}${element("Encrypt", sealed.encrypted)}</xml>`
      const request = { componentAppId: suiteId, url: PushDelivery.withQuery(url, query), body }
      const delivery = yield* PushDelivery.deliver(host.transport, request, statsOf(suiteId))
      yield* Effect.sync(() => PushDelivery.remember(state, { infoType, xml, ...delivery }))
    })

  const pushTicket = (suiteId: string, state: SuiteState): Effect.Effect<string> =>
    Effect.gen(function*() {
      const value = (yield* Opaque.draw).slice(0, 64)
      const now = yield* Clock.currentTimeMillis
      yield* Effect.sync(() => {
        for (const [held, expiresAt] of state.tickets) if (now >= expiresAt) state.tickets.delete(held)
        state.tickets.set(value, now + TICKET_LIFETIME)
      })
      yield* push(suiteId, "suite_ticket", [["SuiteTicket", value]])
      return value
    })

  const pushAllTickets = Effect.suspend(() =>
    Effect.forEach(
      Array.from(suites).filter(([, state]) => state.commandUrl !== undefined && !state.stopped),
      ([suiteId, state]) => pushTicket(suiteId, state),
      { concurrency: "unbounded", discard: true }
    )
  )

  const newAuthCode = (suiteId: string, corpId: string, infoType: "create_auth" | "reset_permanent_code") =>
    Effect.gen(function*() {
      const code = `${(yield* Opaque.draw).slice(0, 64)}`
      const now = yield* Clock.currentTimeMillis
      const state = yield* known(suiteId)
      yield* Effect.sync(() => {
        for (const [held, { expiresAt }] of state.authCodes) if (now >= expiresAt) state.authCodes.delete(held)
        state.authCodes.set(code, { corpId, expiresAt: now + AUTH_CODE_LIFETIME })
      })
      yield* push(suiteId, infoType, [["AuthCode", code]])
      return code
    })

  // --- the endpoints ---

  const alive = (expiresAt: number | undefined, now: number) => expiresAt !== undefined && now < expiresAt

  /** The suite a suite token belongs to while WeCom takes it; otherwise WeCom's answer. */
  const checkSuiteToken = (
    query: URLSearchParams,
    now: number
  ): { readonly suiteId: string; readonly state: SuiteState } | EmulatorResponse => {
    const token = query.get("suite_access_token")
    if (token === null || token === "") return host.error(41001, "suite_access_token missing")
    const issued = suiteTokens.get(token)
    if (issued === undefined) return host.error(40082, "invalid suite_access_token")
    // WeCom's documented answer for a suite token it no longer takes, expired or replaced.
    if (now >= issued.expiresAt) return host.error(40082, "invalid suite_access_token")
    return { suiteId: issued.suiteId, state: suites.get(issued.suiteId)! }
  }

  const suiteToken = (body: Record<string, unknown>, value: string, now: number): EmulatorResponse => {
    const suiteId = stringField(body.suite_id)
    const state = suiteId === undefined ? undefined : suites.get(suiteId)
    if (suiteId === undefined || state === undefined) return host.error(40083, "invalid suite_id")
    statsOf(suiteId).suiteTokenCalls++
    if (stringField(body.suite_secret) !== state.secret) return host.error(40001, "invalid secret")
    const ticket = stringField(body.suite_ticket)
    if (ticket === undefined || !alive(state.tickets.get(ticket), now)) {
      return host.error(40085, "invalid suite ticket")
    }
    const held = state.token === undefined ? undefined : suiteTokens.get(state.token)
    if (held !== undefined && held.expiresAt - now > RENEWAL) {
      return json({ suite_access_token: state.token, expires_in: Math.floor((held.expiresAt - now) / SECOND) })
    }
    state.token = value
    suiteTokens.set(value, { suiteId, expiresAt: now + host.tokenLifetime })
    statsOf(suiteId).suiteTokensIssued++
    return json({ suite_access_token: value, expires_in: Math.floor(host.tokenLifetime / SECOND) })
  }

  const providerToken = (body: Record<string, unknown>, value: string, now: number): EmulatorResponse => {
    const corpId = stringField(body.corpid)
    const provider = corpId === undefined ? undefined : providers.get(corpId)
    if (corpId === undefined || provider === undefined) return host.error(40013, "invalid corpid")
    if (stringField(body.provider_secret) !== provider.secret) return host.error(40001, "invalid provider_secret")
    const held = provider.token === undefined ? undefined : providerTokens.get(provider.token)
    if (held !== undefined && held.expiresAt - now > RENEWAL) {
      return json({ provider_access_token: provider.token, expires_in: Math.floor((held.expiresAt - now) / SECOND) })
    }
    provider.token = value
    providerTokens.set(value, { corpId, expiresAt: now + host.tokenLifetime })
    return json({ provider_access_token: value, expires_in: Math.floor(host.tokenLifetime / SECOND) })
  }

  /** The install a permanent code names, while the corp keeps the app. */
  const installBy = (state: SuiteState, body: Record<string, unknown>) => {
    const corpId = stringField(body.auth_corpid)
    const install = corpId === undefined ? undefined : state.corps.get(corpId)
    const code = stringField(body.permanent_code)
    if (code === undefined) return host.error(41025, "permanent code missing")
    return corpId === undefined || install === undefined || !install.authorized || install.permanentCode !== code
      // The errcode WeCom's SDKs report for a dead permanent code; not in WeCom's published table,
      // so the server never acts on it: the `cancel_auth` push is what retires a corp.
      ? host.error(40084, "invalid permanent code")
      : { corpId, install }
  }

  const withSuite = (
    request: EmulatorRequest,
    now: number,
    answer: (suiteId: string, state: SuiteState, body: Record<string, unknown>) => EmulatorResponse
  ): EmulatorResponse => {
    const checked = checkSuiteToken(request.query, now)
    if (!("state" in checked)) return checked
    const body = request.method === "GET" ? {} : parseJsonObject(request.body)
    if (body === undefined) return host.error(47001, "data format error")
    return answer(checked.suiteId, checked.state, body)
  }

  const answerSync = (endpoint: SuiteEndpoint, request: EmulatorRequest, value: string, now: number) => {
    const wants = endpoint === "get_pre_auth_code" ? "GET" : "POST"
    if (request.method !== wants) return host.error(wants === "GET" ? 43001 : 43002, `require ${wants} method`)
    if (endpoint === "get_suite_token" || endpoint === "get_provider_token") {
      const body = parseJsonObject(request.body)
      if (body === undefined) return host.error(47001, "data format error")
      return endpoint === "get_suite_token" ? suiteToken(body, value, now) : providerToken(body, value, now)
    }
    return withSuite(request, now, (suiteId, state, body) => {
      switch (endpoint) {
        case "get_pre_auth_code": {
          statsOf(suiteId).preAuthCodes++
          state.preAuthCodes.set(value, now + PRE_AUTH_CODE_LIFETIME)
          return json({ errcode: 0, errmsg: "ok", pre_auth_code: value, expires_in: PRE_AUTH_CODE_LIFETIME / SECOND })
        }
        case "set_session_info": {
          const code = stringField(body.pre_auth_code)
          return code === undefined || !alive(state.preAuthCodes.get(code), now)
            ? host.error(40035, "invalid pre_auth_code")
            : json({ errcode: 0, errmsg: "ok" })
        }
        case "get_permanent_code": {
          statsOf(suiteId).permanentCodeCalls++
          const code = stringField(body.auth_code)
          const held = code === undefined ? undefined : state.authCodes.get(code)
          if (code === undefined || held === undefined || now >= held.expiresAt) {
            return host.error(40078, "invalid auth_code")
          }
          // A temporary code is good once.
          state.authCodes.delete(code)
          const install = state.corps.get(held.corpId)!
          install.authorized = true
          return json({
            errcode: 0,
            errmsg: "ok",
            permanent_code: install.permanentCode,
            auth_corp_info: { corpid: held.corpId, corp_name: `corp ${held.corpId}` }
          })
        }
        case "get_auth_info": {
          const found = installBy(state, body)
          if (!("install" in found)) return found
          return json({
            errcode: 0,
            errmsg: "ok",
            auth_corp_info: { corpid: found.corpId, corp_name: `corp ${found.corpId}` },
            auth_info: { agent: [{ agentid: found.install.agentId, name: `app of ${suiteId}` }] }
          })
        }
        case "get_corp_token": {
          statsOf(suiteId).corpTokenCalls++
          const found = installBy(state, body)
          if (!("install" in found)) return found
          const issued = host.issueCorpToken(found.corpId, String(found.install.agentId), value, now)
          return json({ errcode: 0, errmsg: "ok", access_token: issued.token, expires_in: issued.expiresIn })
        }
      }
    })
  }

  const drawPermanentCode = Effect.map(Opaque.draw, (value) => value.slice(0, 64))

  const controls: SuiteControls = {
    registerSuite: (registration) => Effect.sync(() => register(registration)),
    registerProvider: (corpId, secret) =>
      Effect.sync(() => {
        providers.set(corpId, { secret, token: undefined })
      }),
    setCommandUrl: (suiteId, url) =>
      Effect.flatMap(known(suiteId), (state) =>
        Effect.sync(() => {
          state.commandUrl = url
          pushing.update()
        })),
    pushTicket: (suiteId) => Effect.flatMap(known(suiteId), (state) => pushTicket(suiteId, state)),
    loseTickets: (suiteId) =>
      Effect.flatMap(known(suiteId), (state) =>
        Effect.sync(() => {
          state.tickets.clear()
          state.stopped = true
        })),
    resumePushes: (suiteId) =>
      Effect.flatMap(known(suiteId), (state) =>
        Effect.sync(() => {
          state.stopped = false
        })),
    install: (suiteId, corpId, agentId) =>
      Effect.gen(function*() {
        const state = yield* known(suiteId)
        const permanentCode = yield* drawPermanentCode
        yield* Effect.sync(() => {
          const held = state.corps.get(corpId)
          // Not installed until the code is exchanged; a reinstall keeps nothing of the old one.
          state.corps.set(corpId, {
            permanentCode,
            agentId: agentId ?? held?.agentId ?? 1_000_000 + state.corps.size,
            authorized: false
          })
        })
        return yield* newAuthCode(suiteId, corpId, "create_auth")
      }),
    changeAuth: (suiteId, corpId) =>
      Effect.gen(function*() {
        const state = yield* known(suiteId)
        yield* installOf(state, suiteId, corpId)
        yield* push(suiteId, "change_auth", [["AuthCorpId", corpId]])
      }),
    revoke: (suiteId, corpId) =>
      Effect.gen(function*() {
        const state = yield* known(suiteId)
        const install = yield* installOf(state, suiteId, corpId)
        yield* Effect.sync(() => {
          install.authorized = false
        })
        yield* push(suiteId, "cancel_auth", [["AuthCorpId", corpId]])
      }),
    resetPermanentCode: (suiteId, corpId) =>
      Effect.gen(function*() {
        const state = yield* known(suiteId)
        const install = yield* installOf(state, suiteId, corpId)
        const permanentCode = yield* drawPermanentCode
        yield* Effect.sync(() => {
          install.permanentCode = permanentCode
          install.authorized = false
        })
        return yield* newAuthCode(suiteId, corpId, "reset_permanent_code")
      }),
    generateCorps: (suiteId, n) =>
      Effect.gen(function*() {
        const state = yield* known(suiteId)
        const made: Array<{ corpId: string; permanentCode: string; agentId: number }> = []
        for (let i = 0; i < n; i++) {
          const permanentCode = yield* drawPermanentCode
          const corpId = `ww${(0xa0000000_00000000n + BigInt(generated++)).toString(16).slice(-16)}`
          const agentId = 1_000_000 + state.corps.size
          state.corps.set(corpId, { permanentCode, agentId, authorized: true })
          made.push({ corpId, permanentCode, agentId })
        }
        return made
      }),
    runTicketSchedule: Effect.suspend(() => {
      if (scheduleRunning) return Effect.void
      scheduleRunning = true
      return Effect.forkScoped(
        Effect.forever(pushing.whenOpen(Effect.zipRight(pushAllTickets, Effect.sleep(TICKET_PUSH_INTERVAL)))).pipe(
          Effect.ensuring(Effect.sync(() => {
            scheduleRunning = false
          }))
        )
      )
    }).pipe(Effect.asVoid),
    currentTicket: (suiteId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const live = Array.from(suites.get(suiteId)?.tickets ?? []).filter(([, expiresAt]) => now < expiresAt)
        return live.at(-1)?.[0]
      }),
    permanentCode: (suiteId, corpId) =>
      Effect.sync(() => {
        const install = suites.get(suiteId)?.corps.get(corpId)
        return install?.authorized === true ? install.permanentCode : undefined
      }),
    isValidSuiteToken: (token, suiteId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const issued = suiteTokens.get(token)
        return issued !== undefined && now < issued.expiresAt && (suiteId === undefined || issued.suiteId === suiteId)
      }),
    pushLog: (suiteId) => Effect.sync(() => [...(suites.get(suiteId)?.log ?? [])]),
    stats: (suiteId) => Effect.sync(() => ({ ...(stats.get(suiteId) ?? new Counters()) })),
    resetStats: Effect.sync(() => resetStats())
  }

  return {
    controls,
    resetStats,
    /** Who a request is attributed to: its suite, when the body or token names one. */
    ownerOf: (endpoint: SuiteEndpoint, request: EmulatorRequest): string | undefined => {
      if (endpoint === "get_suite_token") return stringField(parseJsonObject(request.body)?.suite_id)
      if (endpoint === "get_provider_token") return stringField(parseJsonObject(request.body)?.corpid)
      return suiteTokens.get(request.query.get("suite_access_token") ?? "")?.suiteId
    },
    count: (_endpoint: SuiteEndpoint, _owner: string | undefined) => {},
    answer: (endpoint: SuiteEndpoint, request: EmulatorRequest): Effect.Effect<EmulatorResponse> =>
      Effect.gen(function*() {
        const value = endpoint === "get_pre_auth_code" ? (yield* Opaque.draw).slice(0, 64) : yield* Opaque.draw
        const now = yield* Clock.currentTimeMillis
        return yield* Effect.sync(() => answerSync(endpoint, request, value, now))
      }),
    matches: (ruleOwner: string, owner: string | undefined) => owner === ruleOwner
  }
}
