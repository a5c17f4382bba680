/**
 * The fast path against the full server: one engine, two servers on
 * loopback (one with the fast path, one without), the same request sent to
 * each, the answers compared byte for byte except `Date`. A third listener
 * (the fast path in front of a stub) shows which inputs the fast path
 * answered itself, so the comparisons are known to cover both paths.
 *
 * TestClock: both servers read the same frozen time, so `expires_in` agrees
 * to the second, and expiry is reached by adjusting the clock.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted, TestClock } from "effect"
import { Agent, createServer, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"
import * as AppId from "../../src/AppId.js"
import * as ClientAuth from "../../src/server/ClientAuth.js"
import * as FastPath from "../../src/server/FastPath.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import type { ClientKey } from "../../src/server/ServerConfig.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { APP, KEY, OTHER, SECRET, serveUpstream, THIRD } from "../support/serverStack.js"

const SCOPED = "scoped-key-0123456789abcdef"
const CLIENT_KEYS: ReadonlyArray<ClientKey> = [
  { key: Redacted.make(KEY) },
  { key: Redacted.make(SCOPED), apps: [AppId.make(OTHER)] }
]
const LIFETIME = Duration.hours(2)

interface Answer {
  readonly status: number
  readonly headers: ReadonlyArray<string>
  readonly body: string
}

interface Input {
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string
}

// Raw headers in the order sent, names as written, so order and spelling count.
const send = (base: string, agent: Agent, input: Input) =>
  Effect.async<Answer, Error>((resume) => {
    const url = new URL(base)
    const outgoing = httpRequest({
      host: url.hostname,
      port: url.port,
      agent,
      method: input.method ?? "GET",
      path: input.path,
      headers: input.headers ?? {}
    }, (incoming) => {
      const chunks: Array<Buffer> = []
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
      incoming.on("end", () => {
        const headers: Array<string> = []
        for (let i = 0; i < incoming.rawHeaders.length; i += 2) {
          if (incoming.rawHeaders[i]!.toLowerCase() !== "date") {
            headers.push(`${incoming.rawHeaders[i]}: ${incoming.rawHeaders[i + 1]}`)
          }
        }
        resume(Effect.succeed({ status: incoming.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString() }))
      })
    })
    outgoing.on("error", (error) => resume(Effect.fail(error)))
    outgoing.end(input.body)
  })

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const TOKEN = `/v1/apps/${APP}/access-token`

// Every spelling the brief names; `hot` marks those the fast path answers
// itself while the token is held.
const INPUTS: ReadonlyArray<Input & { readonly hot: boolean }> = [
  { path: TOKEN, headers: bearer(KEY), hot: true },
  { method: "HEAD", path: TOKEN, headers: bearer(KEY), hot: true },
  { path: `${TOKEN}?a=1`, headers: bearer(KEY), hot: true },
  { path: `${TOKEN}?`, headers: bearer(KEY), hot: true },
  { path: `${TOKEN}?%zz&x`, headers: bearer(KEY), hot: true },
  { path: TOKEN, headers: { authorization: `bearer ${KEY}` }, hot: true },
  { path: `/v1/apps/${OTHER}/access-token`, headers: bearer(SCOPED), hot: true },
  { path: TOKEN, headers: bearer(SCOPED), hot: false },
  { path: TOKEN, headers: bearer("wrong-key-0123456789abcdef"), hot: false },
  { path: TOKEN, headers: { authorization: `Bearer  ${KEY}` }, hot: false },
  { path: TOKEN, headers: { authorization: `Basic ${KEY}` }, hot: false },
  { path: TOKEN, headers: { authorization: "" }, hot: false },
  { path: TOKEN, hot: false },
  { path: `/v1/apps/${THIRD}/access-token`, headers: bearer(KEY), hot: false },
  { path: `/v1/apps/${APP.toUpperCase()}/access-token`, headers: bearer(KEY), hot: false },
  { path: `${TOKEN}/`, headers: bearer(KEY), hot: false },
  { path: `/v1/apps/${APP}//access-token`, headers: bearer(KEY), hot: false },
  { path: `//v1/apps/${APP}/access-token`, headers: bearer(KEY), hot: false },
  { path: `/v1/apps/${APP.slice(0, -1)}%66/access-token`, headers: bearer(KEY), hot: false },
  { path: `/v1/apps/${APP}/access%2Dtoken`, headers: bearer(KEY), hot: false },
  { path: `/v1/apps/${APP}/access-token#x`, headers: bearer(KEY), hot: false },
  { method: "POST", path: TOKEN, headers: bearer(KEY), hot: false },
  { method: "PUT", path: TOKEN, headers: bearer(KEY), hot: false },
  { method: "DELETE", path: TOKEN, headers: bearer(KEY), hot: false },
  { method: "OPTIONS", path: TOKEN, headers: bearer(KEY), hot: false },
  { method: "PATCH", path: TOKEN, hot: false },
  {
    path: TOKEN,
    headers: { ...bearer(KEY), "content-type": "application/json", "content-length": "2" },
    body: "{}",
    hot: false
  },
  { path: TOKEN, headers: { ...bearer(KEY), "transfer-encoding": "chunked" }, body: "", hot: false },
  {
    method: "POST",
    path: `${TOKEN}/refresh`,
    headers: { ...bearer(KEY), "content-type": "application/json" },
    body: "{}",
    hot: false
  },
  { path: "/healthz", hot: false }
]

const STUB_STATUS = 599

const addressOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  return address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
}

// One engine; the full server, the server with its fast path, and the fast
// path alone in front of a stub that answers 599 for whatever it passes on.
const start = (upstream: { readonly url: string }) =>
  Effect.gen(function*() {
    const store = TokenStore.layerMemory
    const engine = yield* Layer.build(
      TokenLayer.layer({
        config: TokenConfig.layer({
          apps: [APP, OTHER].map((appId) => TokenConfig.app(appId, SECRET)),
          mode: "classic",
          apiBaseUrl: upstream.url
        }),
        store,
        httpClient: FetchHttpClient.layer
      }).pipe(Layer.provideMerge(store))
    )
    const serve = (fastPath: boolean) =>
      Layer.build(
        NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: CLIENT_KEYS, fastPath }).pipe(
          Layer.provide(Layer.succeedContext(engine))
        )
      )
    const full = addressOf(yield* serve(false))
    const fast = addressOf(yield* serve(true))
    const stub = createServer((_request, response) => {
      response.writeHead(STUB_STATUS).end()
    })
    FastPath.install(
      stub,
      FastPath.make({
        engine: Context.get(engine, TokenEngine),
        clock: yield* Effect.clock,
        auth: ClientAuth.check(CLIENT_KEYS)
      })
    )
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        stub.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () => Effect.sync(() => stub.close())
    )
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent({ keepAlive: true })),
      (agent) => Effect.sync(() => agent.destroy())
    )
    return {
      engine: Context.get(engine, TokenEngine),
      full: (input: Input) => send(full, agent, input),
      fast: (input: Input) => send(fast, agent, input),
      stub: (input: Input) => send(`http://127.0.0.1:${(stub.address() as AddressInfo).port}`, agent, input)
    }
  })

type Servers = Effect.Effect.Success<ReturnType<typeof start>>

// Each input to the full server, then to the fast one: an answer the full
// server's request caused (a fetch it waited for) is there for both.
const compareAll = (servers: Servers, inputs: ReadonlyArray<Input>) =>
  Effect.forEach(inputs, (input) =>
    Effect.gen(function*() {
      const full = yield* servers.full(input)
      const fast = yield* servers.fast(input)
      expect(fast, `${input.method ?? "GET"} ${input.path} ${JSON.stringify(input.headers ?? {})}`).toEqual(full)
      return full
    }))

const answeredByFastPath = (servers: Servers, inputs: ReadonlyArray<Input>) =>
  Effect.forEach(inputs, (input) => Effect.map(servers.stub(input), (answer) => answer.status !== STUB_STATUS))

const METRIC_LINE =
  /^wechat_token_server_requests_total\{route="\/v1\/apps\/\{appId\}\/access-token",method="GET",status="200"\} (\d+)/m

const servedTokens = (servers: Servers) =>
  Effect.map(servers.full({ path: "/metrics" }), (answer) => Number(METRIC_LINE.exec(answer.body)?.[1] ?? NaN))

describe("FastPath", () => {
  it.scoped("answers every input as the full server does while the token is held", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({ tokenLifetime: LIFETIME })
      const servers = yield* start(upstream)
      yield* servers.engine.get(APP)
      yield* servers.engine.get(OTHER)
      const answers = yield* compareAll(servers, INPUTS)
      expect(answers[0]!.status).toBe(200)
      expect(answers[0]!.body).toContain("access_token")
      expect(yield* answeredByFastPath(servers, INPUTS)).toEqual(INPUTS.map((input) => input.hot))
    }))

  it.scoped("counts its answers in the same series as the full server", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({ tokenLifetime: LIFETIME })
      const servers = yield* start(upstream)
      yield* servers.engine.get(APP)
      const before = yield* servedTokens(servers)
      yield* servers.fast({ path: TOKEN, headers: bearer(KEY) })
      const afterFast = yield* servedTokens(servers)
      yield* servers.full({ path: TOKEN, headers: bearer(KEY) })
      const afterFull = yield* servedTokens(servers)
      expect([afterFast - before, afterFull - afterFast]).toEqual([1, 1])
    }))

  it.scoped("hands a cold start and a failed fetch to the full server", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({
        tokenLifetime: LIFETIME,
        faults: [{ fault: Emulator.Fault.Busy() }]
      })
      const servers = yield* start(upstream)
      const cold = yield* compareAll(servers, INPUTS)
      expect(cold[0]!.status).toBe(503)
      expect(yield* answeredByFastPath(servers, INPUTS)).toEqual(INPUTS.map(() => false))
    }))

  it.scoped("serves the held token while its refresh is failing, and hands over once it has expired", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({ tokenLifetime: LIFETIME })
      const servers = yield* start(upstream)
      yield* servers.engine.get(APP)
      const held = yield* servers.full({ path: TOKEN, headers: bearer(KEY) })
      yield* upstream.setFaulted(true)
      // Past the refresh time, before expiry: the refresh loop is retrying.
      yield* TestClock.adjust(Duration.subtract(LIFETIME, Duration.minutes(3)))
      const refreshing = yield* compareAll(servers, INPUTS)
      expect(refreshing[0]!.status).toBe(200)
      expect(JSON.parse(refreshing[0]!.body).access_token).toBe(JSON.parse(held.body).access_token)
      expect((yield* answeredByFastPath(servers, INPUTS))[0]).toBe(true)
      // Expired, with WeChat still failing: 503 from the full server for both.
      yield* TestClock.adjust(Duration.minutes(4))
      const expired = yield* compareAll(servers, INPUTS)
      expect(expired[0]!.status).toBe(503)
      expect((yield* answeredByFastPath(servers, INPUTS))[0]).toBe(false)
    }))

  it.scoped("counts down expires_in as the clock moves, answering from the fast path each time", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({ tokenLifetime: LIFETIME })
      const servers = yield* start(upstream)
      yield* servers.engine.get(APP)
      const input = { path: TOKEN, headers: bearer(KEY) }
      const first = yield* servers.stub(input)
      yield* TestClock.adjust(Duration.seconds(90))
      const later = yield* servers.stub(input)
      expect([first.status, later.status]).toEqual([200, 200])
      const [before, after] = [JSON.parse(first.body), JSON.parse(later.body)]
      expect(after.access_token).toBe(before.access_token)
      expect(before.expires_in - after.expires_in).toBe(90)
      expect(Date.parse(after.expires_at)).toBe(Date.parse(before.expires_at))
    }))

  it.scoped("after expiry, the token the full server fetched is the one both answer", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream({ tokenLifetime: LIFETIME })
      const servers = yield* start(upstream)
      yield* servers.engine.get(APP)
      const first = yield* servers.full({ path: TOKEN, headers: bearer(KEY) })
      yield* TestClock.adjust(Duration.sum(LIFETIME, Duration.minutes(1)))
      const [renewed] = yield* compareAll(servers, [{ path: TOKEN, headers: bearer(KEY) }])
      expect(renewed!.status).toBe(200)
      expect(JSON.parse(renewed!.body).access_token).not.toBe(JSON.parse(first.body).access_token)
    }))
})
