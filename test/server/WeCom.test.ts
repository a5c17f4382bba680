import { FetchHttpClient, HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as RemoteTokenLayer from "../../src/client/RemoteTokenLayer.js"
import * as WeComConfig from "../../src/families/wecom/WeComConfig.js"
import { WeComToken } from "../../src/families/wecom/WeComToken.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import { auth, call, KEY, OPS_KEY, opsAuth } from "./harness.js"

const CORP = "ww0123456789abcdef"
const AGENT = "1000002"
const OTHER = "1000003"
const SECRET = "wecom-agent-secret-never-logged"
const OTHER_SECRET = "wecom-other-secret-never-logged"
const CONTACTS_SECRET = "wecom-contacts-secret-never-logged"
const SCOPED_KEY = "scoped-client-key-0123456789"
const owner = (agent: string) => `${CORP}/${agent}`
const route = (agent: string, rest: string) => `/v1/wecom/${CORP}/agents/${agent}/${rest}`

const sha1Signature = (ticket: string, nonceStr: string, timestamp: number, url: string) =>
  createHash("sha1").update(`jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${url}`).digest(
    "hex"
  )

/** The emulator and the server on loopback; `configured` are the WeCom apps the server knows (with their secrets). */
const start = (configured: ReadonlyArray<WeComConfig.WeComAppCredentials>) =>
  Effect.gen(function*() {
    const { emulator, url } = yield* Emulator.serve({
      corps: [{
        corpId: CORP,
        apps: [
          { agent: AGENT, secret: SECRET },
          { agent: OTHER, secret: OTHER_SECRET },
          { agent: "contacts", secret: CONTACTS_SECRET }
        ]
      }]
    })
    const store = StoreSpec.layerMemory
    const context = yield* Layer.build(
      NodeServer.layer({
        host: "127.0.0.1",
        port: 0,
        clientKeys: [
          Redacted.make(KEY),
          { key: Redacted.make(SCOPED_KEY), apps: [OwnerId.weCom(configured[0]!.corpId, configured[0]!.agent)] }
        ],
        opsKeys: [Redacted.make(OPS_KEY)]
      }).pipe(
        Layer.provide(TokenLayer.layerFamilies({
          config: TokenConfig.layer({ apps: [], apiBaseUrl: url }),
          wecom: WeComConfig.layer({ apps: configured, apiBaseUrl: url }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    return { base: `http://127.0.0.1:${address.port}`, emulator }
  })

const all = [
  WeComConfig.app(CORP, AGENT, SECRET),
  WeComConfig.app(CORP, OTHER, OTHER_SECRET),
  WeComConfig.app(CORP, "contacts", CONTACTS_SECRET)
]

const json = (body: unknown) => ({
  method: "POST",
  headers: { ...auth(), "content-type": "application/json" },
  body: JSON.stringify(body)
})

describe("TokenServer: WeCom routes over loopback", () => {
  it.live("access token, compare-and-refresh, both tickets and both signatures, every answer no-store", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* start(all)
      const token = yield* call(`${base}${route(AGENT, "access-token")}`, { headers: auth() })
      expect(token.status).toBe(200)
      expect(token.headers.get("cache-control")).toBe("no-store")
      expect(token.json.expires_in).toBeGreaterThan(7000)
      expect(yield* emulator.wecom.isValidToken(token.json.access_token, owner(AGENT))).toBe(true)
      const other = yield* call(`${base}${route(OTHER, "access-token")}`, { headers: auth() })
      expect(other.json.access_token).not.toBe(token.json.access_token)

      // WeCom ends the token early: one compare-and-refresh, however many callers report it.
      yield* emulator.wecom.endToken(token.json.access_token)
      const before = (yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls
      const refreshed = yield* Effect.forEach(
        Array.from({ length: 20 }),
        () => call(`${base}${route(AGENT, "access-token/refresh")}`, json({ stale_token: token.json.access_token })),
        { concurrency: "unbounded" }
      )
      expect(refreshed.map((answer) => answer.status)).toEqual(Array(20).fill(200))
      expect(new Set(refreshed.map((answer) => answer.json.access_token)).size).toBe(1)
      expect((yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls - before).toBe(1)
      expect(yield* emulator.wecom.isValidToken(refreshed[0]!.json.access_token, owner(AGENT))).toBe(true)

      const corpTicket = yield* call(`${base}${route(AGENT, "jsapi-ticket")}`, { headers: auth() })
      expect(corpTicket.status).toBe(200)
      expect(yield* emulator.wecom.isValidTicket(corpTicket.json.ticket, "corp", owner(AGENT))).toBe(true)
      // One corp ticket, whichever app of the corp asks.
      expect((yield* call(`${base}${route(OTHER, "jsapi-ticket")}`, { headers: auth() })).json.ticket).toBe(
        corpTicket.json.ticket
      )
      const agentTicket = yield* call(`${base}${route(AGENT, "agent-ticket")}`, { headers: auth() })
      expect(agentTicket.headers.get("cache-control")).toBe("no-store")
      expect(yield* emulator.wecom.isValidTicket(agentTicket.json.ticket, "agent", owner(AGENT))).toBe(true)

      const page = "https://work.example.com/app?from=menu"
      const signed = yield* call(`${base}${route(AGENT, "jssdk-config")}`, json({ url: `${page}#top` }))
      expect(signed.status).toBe(200)
      const { agentConfig, config } = signed.json
      expect(config.appId).toBe(CORP)
      expect(config.signature).toBe(sha1Signature(corpTicket.json.ticket, config.nonceStr, config.timestamp, page))
      expect(agentConfig.corpid).toBe(CORP)
      expect(agentConfig.agentid).toBe(AGENT)
      expect(agentConfig.signature).toBe(
        sha1Signature(agentTicket.json.ticket, agentConfig.nonceStr, agentConfig.timestamp, page)
      )
      const contacts = yield* call(`${base}${route("contacts", "jssdk-config")}`, json({ url: page }))
      expect(contacts.status).toBe(200)
      expect(contacts.json.agentConfig).toBeUndefined()
      const badUrl = yield* call(`${base}${route(AGENT, "jssdk-config")}`, json({ url: "not a url" }))
      expect(badUrl.status).toBe(400)
      expect(badUrl.json.error.code).toBe("invalid_page_url")
      expect((yield* emulator.wecom.stats(CORP)).corpTicketCalls).toBe(1)
      expect((yield* emulator.wecom.stats(owner(AGENT))).agentTicketCalls).toBe(1)
    }).pipe(Effect.scoped))

  it.live("client keys: a key scoped to corpid/agent gets its app and a 404 for the others; no key, 401; unknown apps, 404; a wrong method, 405", () =>
    Effect.gen(function*() {
      const { base } = yield* start(all)
      expect((yield* call(`${base}${route(AGENT, "access-token")}`, { headers: auth(SCOPED_KEY) })).status).toBe(200)
      expect((yield* call(`${base}${route(AGENT, "agent-ticket")}`, { headers: auth(SCOPED_KEY) })).status).toBe(200)
      const refused = yield* call(`${base}${route(OTHER, "access-token")}`, { headers: auth(SCOPED_KEY) })
      expect(refused.status).toBe(404)
      expect(refused.json.error.code).toBe("unknown_app")
      expect((yield* call(`${base}${route(AGENT, "access-token")}`)).status).toBe(401)
      const unknown = yield* call(`${base}${route("1000009", "access-token")}`, { headers: auth() })
      expect(unknown.status).toBe(404)
      expect(
        (yield* call(`${base}/v1/wecom/wwffffffffffffffff/agents/${AGENT}/access-token`, { headers: auth() })).status
      )
        .toBe(404)
      // Malformed ids are refused by shape.
      expect((yield* call(`${base}/v1/wecom/not-a-corp/agents/${AGENT}/access-token`, { headers: auth() })).status)
        .toBe(400)
      expect((yield* call(`${base}${route("contacts", "agent-ticket")}`, { headers: auth() })).status).toBe(404)
      const wrongMethod = yield* call(`${base}${route(AGENT, "access-token")}`, { method: "DELETE", headers: auth() })
      expect(wrongMethod.status).toBe(405)
      expect(wrongMethod.headers.get("allow")).toBe("GET, HEAD")
      const metrics = (yield* call(`${base}/metrics`, { headers: opsAuth() })).text
      expect(metrics).toContain(`route="/v1/wecom/{corpId}/agents/{agent}/access-token"`)
      expect(metrics).toContain(`app="${owner(AGENT)}"`)
      expect(metrics).not.toContain(SECRET)
    }).pipe(Effect.scoped))

  it.live("a wrong secret: 503 naming the cause, /readyz not ready naming the app, the secret nowhere", () =>
    Effect.gen(function*() {
      const { base } = yield* start([
        WeComConfig.app(CORP, AGENT, SECRET),
        WeComConfig.app(CORP, OTHER, "reset-in-the-console")
      ])
      const good = yield* call(`${base}${route(AGENT, "access-token")}`, { headers: auth() })
      expect(good.status).toBe(200)
      const bad = yield* call(`${base}${route(OTHER, "access-token")}`, { headers: auth() })
      expect(bad.status).toBe(503)
      expect(bad.json.error.code).toBe("40001")
      expect(bad.json.error.message).toContain(owner(OTHER))
      expect(bad.text).not.toContain("reset-in-the-console")
      const ready = yield* call(`${base}/readyz`, { headers: opsAuth() })
      expect(ready.status).toBe(503)
      const credential = ready.json.credentials.find((entry: { app_id: string }) => entry.app_id === owner(OTHER))
      expect(credential).toMatchObject({ kind: "wecom_access_token", valid: false, last_error: { code: "40001" } })
      expect(ready.text).not.toContain("reset-in-the-console")
    }).pipe(Effect.scoped))

  it.live("RemoteTokenLayer.layerWeCom: a business server gets WeCom tokens, tickets and signatures from the server", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* start(all)
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        const tokens = yield* Effect.forEach(Array.from({ length: 50 }), () => wecom.get(CORP, AGENT), {
          concurrency: "unbounded"
        })
        expect(new Set(tokens.map((token) => token.value)).size).toBe(1)
        expect(yield* emulator.wecom.isValidToken(tokens[0]!.value, owner(AGENT))).toBe(true)
        yield* emulator.wecom.endToken(tokens[0]!.value)
        const fresh = yield* wecom.refresh(CORP, AGENT, tokens[0]!.value)
        expect(fresh.value).not.toBe(tokens[0]!.value)
        expect(yield* emulator.wecom.isValidToken(fresh.value, owner(AGENT))).toBe(true)
        const corpTicket = yield* wecom.jsapiTicket(CORP, AGENT)
        const agentTicket = yield* wecom.agentTicket(CORP, AGENT)
        expect(yield* emulator.wecom.isValidTicket(agentTicket.value, "agent", owner(AGENT))).toBe(true)
        const page = "https://work.example.com/app"
        const signed = yield* wecom.jsSdkConfig(CORP, AGENT, page)
        expect(signed.config.signature).toBe(
          sha1Signature(corpTicket.value, signed.config.nonceStr, signed.config.timestamp, page)
        )
        expect(signed.agentConfig!.signature).toBe(
          sha1Signature(agentTicket.value, signed.agentConfig!.nonceStr, signed.agentConfig!.timestamp, page)
        )
        expect((yield* Effect.flip(wecom.jsSdkConfig(CORP, AGENT, "nope")))._tag).toBe("InvalidPageUrl")
        expect((yield* Effect.flip(wecom.get(CORP, "1000009")))._tag).toBe("UnknownApp")
      }).pipe(
        Effect.provide(
          RemoteTokenLayer.layerWeCom({ baseUrl: base, clientKey: Redacted.make(KEY) }).pipe(
            Layer.provide(FetchHttpClient.layer)
          )
        )
      )
    }).pipe(Effect.scoped))

  it.live("secrets sweep: through a wrong secret, a busy WeCom, an untrusted IP and an ended token, no secret, client key or whole token reaches logs, answers or metrics", () =>
    Effect.gen(function*() {
      const logs: Array<string> = []
      const wrongSecret = "wrong-secret-never-logged-9f8e7d"
      const { base, emulator } = yield* start([
        WeComConfig.app(CORP, AGENT, SECRET),
        WeComConfig.app(CORP, OTHER, wrongSecret)
      ])
        .pipe(
          Effect.provide(
            Logger.replace(Logger.defaultLogger, Logger.map(Logger.jsonLogger, (line) => void logs.push(line)))
          ),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
      const answers: Array<string> = []
      const tokens = new Set<string>()
      const ask = (path: string, init: RequestInit = { headers: auth() }) =>
        Effect.map(call(`${base}${path}`, init), (answer) => {
          answers.push(answer.text)
          if (answer.status === 200 && answer.json?.access_token !== undefined) tokens.add(answer.json.access_token)
          if (answer.status === 200 && answer.json?.ticket !== undefined) tokens.add(answer.json.ticket)
          return answer
        })
      const first = yield* ask(route(AGENT, "access-token"))
      yield* ask(route(OTHER, "access-token"))
      yield* emulator.wecom.endToken(first.json.access_token)
      yield* emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["gettoken"], times: 1 })
      yield* ask(route(AGENT, "access-token/refresh"), json({ stale_token: first.json.access_token }))
      // Past the 1 s during which callers fail fast after a transient failure.
      yield* Effect.sleep("1200 millis")
      yield* ask(route(AGENT, "access-token/refresh"), json({ stale_token: first.json.access_token }))
      yield* emulator.injectFault({
        fault: Emulator.Fault.Errcode(60020, "not allow to access from your ip, hint: [1], from ip: 203.0.113.9"),
        endpoints: ["ticket_get"],
        times: 1
      })
      yield* ask(route(AGENT, "agent-ticket"))
      yield* ask(route(AGENT, "jsapi-ticket"))
      yield* ask(route(AGENT, "jssdk-config"), json({ url: "https://work.example.com/" }))
      yield* ask(route(AGENT, "access-token"), { headers: auth(`${KEY}x`) })
      for (const path of ["/readyz", "/metrics"]) yield* ask(path, {})
      // The run met the faults and handed out tokens and tickets.
      expect(answers.some((text) => text.includes("\"code\":\"40001\""))).toBe(true)
      expect(answers.some((text) => text.includes("upstream_busy") || text.includes("60020"))).toBe(true)
      expect(tokens.size).toBeGreaterThanOrEqual(3)
      expect(logs.length).toBeGreaterThan(0)
      for (const text of [...logs, ...answers]) {
        for (const secret of [SECRET, wrongSecret, KEY, SCOPED_KEY]) expect(text).not.toContain(secret)
      }
      // Tokens reach only the caller that asked for them: never a log line, never /metrics or /readyz.
      for (const text of [...logs, ...answers.slice(-2)]) {
        for (const token of tokens) expect(text).not.toContain(token)
      }
    }).pipe(Effect.scoped))
})
