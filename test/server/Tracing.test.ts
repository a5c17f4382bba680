/**
 * Spans as exported: the platform's request and WeChat-call spans and the
 * store's, with no app secret, token or query string in any attribute.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Tracer } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as Tracing from "../../src/server/Tracing.js"
import * as TokenStore from "../../src/TokenStore.js"
import { spawnServer } from "../support/serverProcess.js"
import { APP, auth, awaitReady, call, SECRET, serveTokenServer, serveUpstream } from "../support/serverStack.js"
import * as ProxyStack from "./ProxyStack.js"

interface Recorded {
  readonly id: string
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly parent: string | undefined
  readonly attributes: ReadonlyMap<string, unknown>
}

// Effect's own tracer, each span kept, behind the scrubbing every export goes through.
const recording = Effect.map(Effect.tracer, (native) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracing.scrub(Tracer.make({
    span: (...args) => {
      const span = native.span(...args)
      spans.push(span)
      return span
    },
    context: (f, fiber) => native.context(f, fiber)
  }))
  const recorded = (): ReadonlyArray<Recorded> =>
    spans.map((span) => ({
      id: span.spanId,
      name: span.name,
      kind: span.kind,
      parent: Option.match(span.parent, { onNone: () => undefined, onSome: (parent) => parent.spanId }),
      attributes: span.attributes
    }))
  return { tracer, spans, recorded }
})

const ancestors = (spans: ReadonlyArray<Recorded>, span: Recorded): ReadonlyArray<string> => {
  const byId = new Map(spans.map((each) => [each.id, each]))
  const found: Array<string> = []
  for (let parent = span.parent; parent !== undefined; parent = byId.get(parent)?.parent) found.push(parent)
  return found
}

describe("Tracing", () => {
  it.effect("scrubAttribute drops queries and credential-bearing headers, keeps the rest", () =>
    Effect.sync(() => {
      const cases: ReadonlyArray<readonly [string, unknown, unknown]> = [
        ["url.query", "grant_type=client_credential&appid=wx1&secret=s", undefined],
        ["url.full", "https://api.weixin.qq.com/cgi-bin/token?secret=s", "https://api.weixin.qq.com/cgi-bin/token"],
        ["url.full", "http://127.0.0.1/v1/apps/wx1/access-token", "http://127.0.0.1/v1/apps/wx1/access-token"],
        ["url.path", "/cgi-bin/token", "/cgi-bin/token"],
        ["http.request.header.authorization", "Bearer key", undefined],
        ["http.request.header.cookie", "console=abc", undefined],
        ["http.response.header.set-cookie", "console=abc", undefined],
        ["http.request.header.content-type", "application/json", "application/json"],
        ["http.response.status_code", 200, 200]
      ]
      for (const [key, value, expected] of cases) {
        expect([key, Tracing.scrubAttribute(key, value)]).toEqual([key, expected])
      }
    }))

  it.live("a request the app answers: a server span over the WeChat call, and no secret or token in any attribute", () =>
    Effect.gen(function*() {
      const { recorded, tracer } = yield* recording
      const upstream = yield* serveUpstream()
      const server = yield* serveTokenServer({ upstream }).pipe(Effect.withTracer(tracer))
      const held = (yield* call(`${server.base}/v1/apps/${APP}/access-token`, { headers: auth() })).json
      // The refresh route is always the Effect app's (the fast path answers only reads);
      // reporting the held token stale makes it fetch a new one.
      const answer = yield* call(`${server.base}/v1/apps/${APP}/access-token/refresh`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ stale_token: held.access_token })
      })
      expect(answer.status).toBe(200)
      const token = answer.json.access_token as string
      expect(token).not.toBe(held.access_token)
      const spans = recorded()
      const serverSpan = spans.find((span) =>
        span.kind === "server" && span.attributes.get("url.path") ===
          `/v1/apps/${APP}/access-token/refresh`
      )
      expect(serverSpan).toBeDefined()
      const clientSpans = spans.filter((span) => span.kind === "client")
      expect(clientSpans.length).toBeGreaterThan(0)
      expect(clientSpans.map((span) => span.attributes.get("url.path"))).toContain("/cgi-bin/token")
      // Under the request that caused it.
      const fetchSpan = [...clientSpans].reverse().find((span) => span.attributes.get("url.path") === "/cgi-bin/token")!
      expect(ancestors(spans, fetchSpan)).toContain(serverSpan!.id)
      const everything = JSON.stringify(spans.map((span) => [span.name, Array.from(span.attributes)]))
      expect(everything).not.toContain(SECRET)
      expect(everything).not.toContain(token)
      expect(everything).not.toContain(held.access_token)
      expect(everything).not.toContain("secret=")
      expect(everything).not.toContain("access_token=")
      expect(everything.toLowerCase()).not.toContain("bearer")
    }).pipe(Effect.scoped))

  it.live("a server span for the server's own routes, none for the proxy's and the gateway's forwarded calls", () =>
    Effect.gen(function*() {
      const { recorded, tracer } = yield* recording
      const { base } = yield* ProxyStack.startProxyStack({ gateway: true }).pipe(Effect.withTracer(tracer))
      yield* awaitReady(base)
      const message = {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "hello" } })
      }
      const bearer = { authorization: `Bearer ${ProxyStack.KEY}` }
      const proxied = yield* call(`${base}/v1/apps/${ProxyStack.APP}/wechat/cgi-bin/message/custom/send`, {
        ...message,
        headers: { ...message.headers, ...bearer }
      })
      const issued = yield* call(
        `${base}/cgi-bin/token?grant_type=client_credential&appid=${ProxyStack.APP}&secret=${ProxyStack.KEY}`
      )
      const gatewayed = yield* call(
        `${base}/cgi-bin/message/custom/send?access_token=${issued.json.access_token as string}`,
        message
      )
      const ticket = yield* call(`${base}/v1/apps/${ProxyStack.APP}/jsapi-ticket`, { headers: bearer })
      expect([proxied.status, issued.status, gatewayed.status, ticket.status]).toEqual([200, 200, 200, 200])
      // The emulator (WeChat) answers under the same tracer: only the token server's spans count.
      const paths = recorded()
        .filter((span) => span.kind === "server" && String(span.attributes.get("url.full")).startsWith(base))
        .map((span) => span.attributes.get("url.path"))
      expect(paths).toContain(`/v1/apps/${ProxyStack.APP}/jsapi-ticket`)
      expect(paths.filter((path) => String(path).includes("/cgi-bin/"))).toEqual([])
    }).pipe(Effect.scoped))

  it.effect("store calls: a span each, naming owner and kind, never the value", () =>
    Effect.gen(function*() {
      const { recorded, tracer } = yield* recording
      const store = Tracing.storeSpans(yield* TokenStore.TokenStore)
      yield* store.get({ appId: APP as never, kind: "access_token" }).pipe(Effect.withTracer(tracer))
      const [span] = recorded()
      expect(span?.name).toBe("token_store.get")
      expect(Object.fromEntries(span!.attributes)).toEqual({ "wechat.owner": APP, "wechat.kind": "access_token" })
    }).pipe(Effect.provide(TokenStore.layerMemory)))

  it.live(
    "OTEL_EXPORTER_OTLP_ENDPOINT: the server exports its spans over OTLP/HTTP, scrubbed",
    () =>
      Effect.gen(function*() {
        const bodies: Array<string> = []
        const collector = createServer((request, response) => {
          let body = ""
          request.on("data", (chunk: Buffer) => (body += chunk.toString()))
          request.on("end", () => {
            if (request.url === "/v1/traces") bodies.push(body)
            response.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void collector.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.sync(() => collector.close())
        )
        const { base, child } = yield* spawnServer({
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`
        })
        for (let attempt = 0; attempt < 200 && bodies.length === 0; attempt++) {
          if (child.exitCode !== null) return yield* Effect.die(new Error(`server exited ${child.exitCode}`))
          yield* Effect.promise(() => fetch(`${base}/readyz`).then(() => undefined, () => undefined))
          yield* Effect.sleep("250 millis")
        }
        const exported = bodies.join("\n")
        expect(exported).toContain("effect-wechat-token")
        expect(exported).toContain("/readyz")
        expect(exported).toContain("wechat.")
        expect(exported).not.toContain("secret=")
        expect(exported).not.toContain("access_token=")
      }).pipe(Effect.scoped),
    90_000
  )
})
