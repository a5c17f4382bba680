/**
 * The emulator's WeCom (企业微信) endpoints: `gettoken` per (corpid, agent),
 * the corp ticket (`get_jsapi_ticket`, 400 an hour per corp), the agent
 * ticket (`ticket/get?type=agent_config`, 100 an hour per agent) and
 * `agent/get`, where a token used for another agent answers 301002.
 *
 * `gettoken` answers the same token while it is valid. As with WeChat's
 * stable token, a call in the token's last 5 minutes gets a new one and the
 * previous one lives out its life; tickets behave the same way. Error
 * answers from `gettoken` are counted per corp: about 2,000 in an hour block
 * it for the rest of that hour (45009), as WeCom does.
 *
 * @internal
 */
import type {
  EmulatorResponse,
  WeComCorpRegistration,
  WeComEndpoint,
  WeComStats,
  WeComTicketKind
} from "../WeChatEmulator.js"
import { getOrMake } from "./getOrMake.js"
import * as Opaque from "./opaque.js"
import { HOUR, SECOND } from "./units.js"

/** A call in a token's (or ticket's) last 5 minutes gets a new one. */
const RENEWAL = 5 * 60 * SECOND
const CORP_TICKETS_PER_HOUR = 400
const AGENT_TICKETS_PER_HOUR = 100
const GETTOKEN_ERRORS_PER_HOUR = 2_000

interface Issued {
  readonly corpId: string
  readonly agent: string
  readonly naturalExpiry: number
  expiresAt: number
}

interface AgentState {
  readonly agent: string
  secret: string
  trustedIps: ReadonlyArray<string> | undefined
  token: string | undefined
  agentTicket: string | undefined
  agentTicketsThisHour: number
}

interface CorpState {
  readonly agents: Map<string, AgentState>
  corpTicket: string | undefined
  corpTicketsThisHour: number
  gettokenErrorsThisHour: number
}

// The counters of one corp or agent, bumped in place and copied out as `WeComStats`.
class Counters implements WeComStats {
  gettokenCalls = 0
  gettokenErrors = 0
  tokensIssued = 0
  corpTicketCalls = 0
  agentTicketCalls = 0
  wrongAgentUses = 0
}

const emptyStats = (): Counters => new Counters()

const json = (body: unknown): EmulatorResponse => ({
  _tag: "Respond",
  status: 200,
  contentType: "application/json; charset=UTF-8",
  body: JSON.stringify(body)
})

/** The WeCom paths, as named in fault rules. */
export const endpointOf = (path: string): WeComEndpoint | undefined => {
  switch (path) {
    case "/cgi-bin/gettoken":
      return "gettoken"
    case "/cgi-bin/get_jsapi_ticket":
      return "get_jsapi_ticket"
    case "/cgi-bin/ticket/get":
      return "ticket_get"
    case "/cgi-bin/agent/get":
      return "agent_get"
    default:
      return undefined
  }
}

/** What the WeCom part needs from the emulator around it. */
export interface Host {
  readonly error: (errcode: number, errmsg: string) => EmulatorResponse
  readonly callerIp: () => string
  readonly tokenLifetime: number
  readonly ticketLifetime: number
}

/** The controls, synchronous: `WeChatEmulator` reads the clock around them. */
export interface Controls {
  readonly registerCorp: (registration: WeComCorpRegistration) => void
  readonly endToken: (token: string, now: number) => void
  readonly isValidToken: (token: string, owner: string | undefined, now: number) => boolean
  readonly isValidTicket: (ticket: string, kind: WeComTicketKind, owner: string, now: number) => boolean
  readonly stats: (key: string) => WeComStats
  readonly resetStats: () => void
  /** Whether WeCom ever issued `token`, alive or not. */
  readonly isKnownToken: (token: string) => boolean
  /**
   * A corp token issued another way (a suite's `get_corp_token`), by the
   * `gettoken` rules, registering the agent (without a secret) if unknown.
   */
  readonly issueCorpToken: (
    corpId: string,
    agent: string,
    value: string,
    now: number
  ) => { readonly token: string; readonly expiresIn: number }
}

/** @internal */
export const make = (host: Host, registrations: ReadonlyArray<WeComCorpRegistration>) => {
  const corps = new Map<string, CorpState>()
  const tokens = new Map<string, Issued>()
  const tickets = new Map<string, Issued & { readonly kind: WeComTicketKind }>()
  let stats = new Map<string, Counters>()
  let hour = 0

  const register = (registration: WeComCorpRegistration) => {
    const corp = getOrMake(corps, registration.corpId, () => ({
      agents: new Map(),
      corpTicket: undefined,
      corpTicketsThisHour: 0,
      gettokenErrorsThisHour: 0
    }))
    for (const app of registration.apps) {
      const known = corp.agents.get(app.agent)
      if (known !== undefined) {
        known.secret = app.secret
        known.trustedIps = app.trustedIps
      } else {
        corp.agents.set(app.agent, {
          agent: app.agent,
          secret: app.secret,
          trustedIps: app.trustedIps,
          token: undefined,
          agentTicket: undefined,
          agentTicketsThisHour: 0
        })
      }
    }
  }
  for (const registration of registrations) register(registration)

  const statsOf = (key: string): Counters => getOrMake(stats, key, emptyStats)

  const rollHour = (now: number) => {
    const current = Math.floor(now / HOUR)
    if (current === hour) return
    hour = current
    for (const corp of corps.values()) {
      corp.corpTicketsThisHour = 0
      corp.gettokenErrorsThisHour = 0
      for (const agent of corp.agents.values()) agent.agentTicketsThisHour = 0
    }
  }

  const alive = (issued: Issued | undefined, now: number): issued is Issued =>
    issued !== undefined && now < issued.expiresAt

  /** The app a gettoken call names by its secret; WeCom knows the app by its secret. */
  const appOfSecret = (query: URLSearchParams) => {
    const corp = corps.get(query.get("corpid") ?? "")
    const secret = query.get("corpsecret")
    return corp === undefined || secret === null
      ? undefined
      : Array.from(corp.agents.values()).find((agent) => agent.secret === secret)
  }

  /** Who a request is attributed to: `corpid/agent` when known, else the corp id. */
  const ownerOf = (endpoint: WeComEndpoint, query: URLSearchParams): string | undefined => {
    if (endpoint === "gettoken") {
      const corpId = query.get("corpid") ?? undefined
      const app = appOfSecret(query)
      return app === undefined ? corpId : `${corpId}/${app.agent}`
    }
    const issued = tokens.get(query.get("access_token") ?? "")
    return issued === undefined ? undefined : `${issued.corpId}/${issued.agent}`
  }

  const count = (endpoint: WeComEndpoint, owner: string | undefined) => {
    if (owner === undefined) return
    const corpId = owner.split("/")[0]!
    const targets = owner === corpId ? [statsOf(corpId)] : [statsOf(corpId), statsOf(owner)]
    for (const target of targets) {
      if (endpoint === "gettoken") target.gettokenCalls++
      if (endpoint === "get_jsapi_ticket") target.corpTicketCalls++
      if (endpoint === "ticket_get") target.agentTicketCalls++
    }
  }

  const bumpStat = (corpId: string, agent: string | undefined, field: keyof Counters) => {
    statsOf(corpId)[field]++
    if (agent !== undefined) statsOf(`${corpId}/${agent}`)[field]++
  }

  const gettoken = (query: URLSearchParams, value: string, now: number): EmulatorResponse => {
    const corpId = query.get("corpid")
    const corp = corpId === null ? undefined : corps.get(corpId)
    const failed = (errcode: number, errmsg: string) => {
      if (corpId !== null && corp !== undefined) {
        corp.gettokenErrorsThisHour++
        bumpStat(corpId, undefined, "gettokenErrors")
      }
      return host.error(errcode, errmsg)
    }
    if (corpId === null || corpId === "") return failed(41002, "corpid missing")
    if (corp === undefined) return failed(40013, "invalid corpid")
    if (corp.gettokenErrorsThisHour >= GETTOKEN_ERRORS_PER_HOUR) return failed(45009, "api freq out of limit")
    const secret = query.get("corpsecret")
    if (secret === null || secret === "") return failed(41004, "corpsecret missing")
    const app = appOfSecret(query)
    if (app === undefined) return failed(40001, "invalid credential")
    const ip = host.callerIp()
    if (app.trustedIps !== undefined && !app.trustedIps.includes(ip)) {
      return failed(60020, `not allow to access from your ip, hint: [${now}], from ip: ${ip}`)
    }
    const issued = issueToken(corpId, app, value, now)
    return json({ errcode: 0, errmsg: "ok", access_token: issued.token, expires_in: issued.expiresIn })
  }

  /** The agent's token while it has more than 5 minutes left; otherwise `value`, as a new one. */
  const issueToken = (corpId: string, app: AgentState, value: string, now: number) => {
    const held = app.token === undefined ? undefined : tokens.get(app.token)
    if (alive(held, now) && held.expiresAt - now > RENEWAL) {
      return { token: app.token!, expiresIn: Math.floor((held.expiresAt - now) / SECOND) }
    }
    // The previous token, if any, lives out its natural life.
    app.token = value
    tokens.set(value, {
      corpId,
      agent: app.agent,
      naturalExpiry: now + host.tokenLifetime,
      expiresAt: now + host.tokenLifetime
    })
    bumpStat(corpId, app.agent, "tokensIssued")
    return { token: value, expiresIn: Math.floor(host.tokenLifetime / SECOND) }
  }

  /** The app owning `token` while WeCom would accept it; otherwise WeCom's answer. */
  const checkToken = (token: string | null, now: number): { readonly issued: Issued } | EmulatorResponse => {
    if (token === null || token === "") return host.error(41001, "access_token missing")
    const issued = tokens.get(token)
    if (!Opaque.isWellFormed(token) || issued === undefined) return host.error(40014, "invalid access_token")
    if (now < issued.expiresAt) return { issued }
    return issued.expiresAt < issued.naturalExpiry
      ? host.error(40014, "invalid access_token")
      : host.error(42001, "access_token expired")
  }

  const ticket = (
    kind: WeComTicketKind,
    issued: Issued,
    held: string | undefined,
    value: string,
    now: number,
    store: (value: string) => void
  ): EmulatorResponse => {
    const current = held === undefined ? undefined : tickets.get(held)
    const expiresIn = (at: number) => Math.floor((at - now) / SECOND)
    if (alive(current, now) && current.expiresAt - now > RENEWAL) {
      return json({ errcode: 0, errmsg: "ok", ticket: held, expires_in: expiresIn(current.expiresAt) })
    }
    store(value)
    const expiresAt = now + host.ticketLifetime
    tickets.set(value, { corpId: issued.corpId, agent: issued.agent, kind, naturalExpiry: expiresAt, expiresAt })
    return json({ errcode: 0, errmsg: "ok", ticket: value, expires_in: expiresIn(expiresAt) })
  }

  const answer = (endpoint: WeComEndpoint, method: string, query: URLSearchParams, value: string, now: number) => {
    rollHour(now)
    if (method !== "GET") return host.error(43001, "require GET method")
    if (endpoint === "gettoken") return gettoken(query, value, now)
    const checked = checkToken(query.get("access_token"), now)
    if (!("issued" in checked)) return checked
    const { issued } = checked
    const corp = corps.get(issued.corpId)!
    const agent = corp.agents.get(issued.agent)!
    switch (endpoint) {
      case "get_jsapi_ticket":
        if (corp.corpTicketsThisHour >= CORP_TICKETS_PER_HOUR) return host.error(45009, "api freq out of limit")
        corp.corpTicketsThisHour++
        return ticket("corp", issued, corp.corpTicket, value, now, (fresh) => {
          corp.corpTicket = fresh
        })
      case "ticket_get":
        if (query.get("type") !== "agent_config") return host.error(40097, "invalid args")
        if (agent.agentTicketsThisHour >= AGENT_TICKETS_PER_HOUR) return host.error(45009, "api freq out of limit")
        agent.agentTicketsThisHour++
        return ticket("agent", issued, agent.agentTicket, value, now, (fresh) => {
          agent.agentTicket = fresh
        })
      case "agent_get": {
        const agentId = query.get("agentid") ?? ""
        if (!corp.agents.has(agentId)) return host.error(40056, "invalid agentid")
        if (agentId !== issued.agent) {
          bumpStat(issued.corpId, issued.agent, "wrongAgentUses")
          return host.error(301002, "not allow operate another agent with this accesstoken.")
        }
        return json({ errcode: 0, errmsg: "ok", agentid: Number(agentId), name: `agent ${agentId}`, close: 0 })
      }
    }
  }

  const controls: Controls = {
    registerCorp: (registration) => register(registration),
    endToken: (token, now) => {
      const issued = tokens.get(token)
      if (issued !== undefined) issued.expiresAt = Math.min(issued.expiresAt, now)
    },
    isValidToken: (token, owner, now) => {
      const issued = tokens.get(token)
      return alive(issued, now) && (owner === undefined || `${issued.corpId}/${issued.agent}` === owner)
    },
    isValidTicket: (value, kind, owner, now) => {
      const issued = tickets.get(value)
      if (!alive(issued, now) || issued.kind !== kind) return false
      // A corp ticket serves every app of its corp; an agent ticket only its agent.
      return kind === "corp" ? owner.split("/")[0] === issued.corpId : owner === `${issued.corpId}/${issued.agent}`
    },
    stats: (key) => ({ ...(stats.get(key) ?? emptyStats()) }),
    resetStats: () => {
      stats = new Map()
    },
    isKnownToken: (token) => tokens.has(token),
    issueCorpToken: (corpId, agent, value, now) => {
      register({ corpId, apps: [] })
      const corp = corps.get(corpId)!
      const app = getOrMake(corp.agents, agent, () => ({
        agent,
        secret: "",
        trustedIps: undefined,
        token: undefined,
        agentTicket: undefined,
        agentTicketsThisHour: 0
      }))
      return issueToken(corpId, app, value, now)
    }
  }

  return {
    controls,
    checkToken,
    ownerOf,
    count,
    answer,
    /** Whether a fault rule's `appId` names this request: the corp id or `corpid/agent`. */
    matches: (ruleOwner: string, owner: string | undefined) =>
      owner !== undefined && (owner === ruleOwner || owner.split("/")[0] === ruleOwner)
  }
}
