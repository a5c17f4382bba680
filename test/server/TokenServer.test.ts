import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type IncomingHttpHeaders, request as httpRequest } from "node:http"
import { brotliDecompressSync, gunzipSync } from "node:zlib"
import * as JsSdk from "../../src/JsSdk.js"
import { wrongMethods } from "../support/fixtures.js"
import { send } from "../support/serverStack.js"
import { APP, auth, awaitReady, call, KEY, opsAuth, OTHER, startServer, startUpstream } from "./harness.js"

describe("TokenServer", () => {
  it.live("1,000 concurrent cold GET access-token cause exactly one upstream fetch and one token", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const answers = yield* Effect.forEach(
        Array.from({ length: 1000 }),
        () => call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() }),
        { concurrency: "unbounded" }
      )
      expect(answers.every((answer) => answer.status === 200)).toBe(true)
      expect(new Set(answers.map((answer) => answer.json.access_token)).size).toBe(1)
      expect(yield* upstream.tokenFetches).toBe(1)
      const first = answers[0]!.json
      expect(first.expires_in).toBeGreaterThan(0)
      expect(first.expires_in).toBeLessThanOrEqual(7200)
      expect(Number.isNaN(Date.parse(first.expires_at))).toBe(false)
    }).pipe(Effect.scoped))

  it.live("50 concurrent refreshes with the same stale token cause one upstream fetch", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const first = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      const stale = first.json.access_token as string
      const fetchesBefore = yield* upstream.tokenFetches
      const answers = yield* Effect.forEach(
        Array.from({ length: 50 }),
        () =>
          call(`${base}/v1/apps/${APP}/access-token/refresh`, {
            method: "POST",
            headers: { ...auth(), "content-type": "application/json" },
            body: JSON.stringify({ stale_token: stale })
          }),
        { concurrency: "unbounded" }
      )
      expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200))
      expect((yield* upstream.tokenFetches) - fetchesBefore).toBe(1)
      const fresh = new Set(answers.map((answer) => answer.json.access_token))
      expect(fresh.size).toBe(1)
      expect(fresh.has(stale)).toBe(false)
    }).pipe(Effect.scoped))

  it.live("unknown app → 404, bad input → 400, oversized body → 413, all in the error shape", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      yield* awaitReady(base)
      const json = { ...auth(), "content-type": "application/json" }
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of every route, asserted field by field
      const shape = (answer: { json: any }) => {
        expect(Object.keys(answer.json)).toEqual(["error"])
        expect(Object.keys(answer.json.error).sort()).toEqual(["code", "message"])
      }
      const unknown = yield* call(`${base}/v1/apps/${OTHER}/access-token`, { headers: auth() })
      expect(unknown.status).toBe(404)
      expect(unknown.json.error.code).toBe("unknown_app")
      shape(unknown)
      const badId = yield* call(`${base}/v1/apps/not-an-app/access-token`, { headers: auth() })
      expect(badId.status).toBe(400)
      shape(badId)
      const malformed = yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
        method: "POST",
        headers: json,
        body: "{\"stale_token\":"
      })
      expect(malformed.status).toBe(400)
      expect(malformed.json.error.code).toBe("malformed_json")
      shape(malformed)
      const wrongType = yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ stale_token: 42 })
      })
      expect(wrongType.status).toBe(400)
      expect(wrongType.json.error.code).toBe("invalid_request")
      shape(wrongType)
      const missing = yield* call(`${base}/v1/apps/${APP}/jssdk-config`, { method: "POST", headers: json, body: "{}" })
      expect(missing.status).toBe(400)
      shape(missing)
      const big = yield* call(`${base}/v1/apps/${APP}/jssdk-config`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ url: `https://example.com/${"a".repeat(20_000)}` })
      })
      expect(big.status).toBe(413)
      expect(big.json.error.code).toBe("payload_too_large")
      shape(big)
      const noRoute = yield* call(`${base}/v1/nothing-here`, { headers: auth() })
      expect(noRoute.status).toBe(404)
      shape(noRoute)
      expect(yield* upstream.tokenFetches).toBe(1)
    }).pipe(Effect.scoped))

  // Without a declared length the limit is crossed while reading: the answer
  // goes out then, and the connection closes once the client stops sending.
  it.live("an oversized chunked body (no content-length) is refused with 413 while reading", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const payload = new TextEncoder().encode(JSON.stringify({ url: `https://example.com/${"a".repeat(40_000)}` }))
      const answer = yield* Effect.promise(() =>
        fetch(`${base}/v1/apps/${APP}/jssdk-config`, {
          method: "POST",
          headers: { ...auth(), "content-type": "application/json" },
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(payload)
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit)
      )
      expect(answer.status).toBe(413)
      expect(yield* Effect.promise(() => answer.json())).toMatchObject({ error: { code: "payload_too_large" } })
      expect(yield* upstream.tokenFetches).toBeLessThanOrEqual(1)
      expect((yield* call(`${base}/healthz`)).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("readiness is 503 while no token can be had (naming the cause) and 200 once one is held", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      yield* upstream.setFaulted(true)
      const base = yield* startServer({ upstream })
      const failed = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      expect(failed.status).toBe(503)
      expect(failed.json.error.code).toBe("upstream_busy")
      expect(failed.json.error.message).toContain("unavailable")
      const notReady = yield* call(`${base}/readyz`, { headers: opsAuth() })
      expect(notReady.status).toBe(503)
      expect(notReady.json.ready).toBe(false)
      expect(notReady.json.store).toEqual({ healthy: true })
      expect(notReady.json.credentials).toContainEqual(
        expect.objectContaining({ app_id: APP, kind: "access_token", valid: false })
      )
      yield* upstream.setFaulted(false)
      // The engine's cooldown after a transient failure is 1 s.
      yield* Effect.sleep("1100 millis")
      expect((yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })).status).toBe(200)
      const ready = yield* call(`${base}/readyz`)
      expect(ready.status).toBe(200)
      expect(ready.json.ready).toBe(true)
      expect((yield* call(`${base}/healthz`)).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("/metrics exposes refreshes, failures, latency, token age and served requests", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: {} })
      const metrics = yield* call(`${base}/metrics`, { headers: opsAuth() })
      expect(metrics.status).toBe(200)
      expect(metrics.headers.get("content-type")).toContain("text/plain")
      const text = metrics.text
      expect(text).toMatch(/# TYPE wechat_token_refreshes_total counter/)
      expect(text).toMatch(new RegExp(`wechat_token_refreshes_total\\{[^}]*app="${APP}"[^}]*\\} [1-9]`))
      expect(text).toMatch(/# TYPE wechat_upstream_latency_seconds histogram/)
      expect(text).toMatch(/wechat_upstream_latency_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} [1-9]/)
      expect(text).toMatch(/wechat_upstream_latency_seconds_count\{[^}]*\} [1-9]/)
      expect(text).not.toContain("time_unit")
      expect(text).toMatch(new RegExp(`wechat_token_age_seconds\\{app="${APP}",kind="access_token"\\} `))
      expect(text).toMatch(new RegExp(`wechat_token_expires_in_seconds\\{app="${APP}",kind="access_token"\\} \\d`))
      expect(text).toMatch(
        /wechat_token_server_requests_total\{route="\/v1\/apps\/\{appId\}\/access-token",method="GET",status="200"\} [1-9]/
      )
      expect(text).toMatch(
        /wechat_token_server_requests_total\{route="\/v1\/apps\/\{appId\}\/access-token",method="GET",status="401"\} [1-9]/
      )
      expect(text).not.toContain(APP.repeat(2))
    }).pipe(Effect.scoped))

  it.live("serves /openapi.json and /docs", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      const spec = yield* call(`${base}/openapi.json`)
      expect(spec.status).toBe(200)
      expect(Object.keys(spec.json.paths)).toEqual(expect.arrayContaining([
        "/v1/apps/{appId}/access-token",
        "/v1/apps/{appId}/access-token/refresh",
        "/v1/apps/{appId}/jsapi-ticket",
        "/v1/apps/{appId}/jssdk-config",
        "/readyz",
        "/metrics"
      ]))
      // Every 400 is documented as the body the server really sends.
      expect(spec.text).not.toContain("HttpApiDecodeError")
      expect(spec.json.paths["/v1/apps/{appId}/access-token"].get.responses["400"].content["application/json"].schema)
        .toEqual({ $ref: "#/components/schemas/BadRequest" })
      expect(spec.json.components.schemas.AccessTokenResponse.required).toEqual([
        "access_token",
        "expires_in",
        "expires_at"
      ])
      const docs = yield* call(`${base}/docs`)
      expect(docs.status).toBe(200)
      expect(docs.text).toContain("<html")
    }).pipe(Effect.scoped))

  it.live("jsapi-ticket and jssdk-config answer through the engine", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const ticket = yield* call(`${base}/v1/apps/${APP}/jsapi-ticket`, { headers: auth() })
      expect(ticket.status).toBe(200)
      expect(yield* upstream.emulator.isValidTicket(ticket.json.ticket, "jsapi")).toBe(true)
      expect(ticket.json.expires_in).toBeGreaterThan(0)
      const config = yield* call(`${base}/v1/apps/${APP}/jssdk-config`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ url: "https://example.com/page?x=1#frag" })
      })
      expect(config.status).toBe(200)
      expect(config.json.appId).toBe(APP)
      expect(config.json.signature).toBe(JsSdk.signature({
        jsapiTicket: ticket.json.ticket,
        nonceStr: config.json.nonceStr,
        timestamp: config.json.timestamp,
        url: "https://example.com/page?x=1"
      }))
      const badUrl = yield* call(`${base}/v1/apps/${APP}/jssdk-config`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ url: "not a url" })
      })
      expect(badUrl.status).toBe(400)
      expect(badUrl.json.error.code).toBe("invalid_page_url")
    }).pipe(Effect.scoped))
})

describe("TokenServer: HTTP conventions", () => {
  it.live("a known path with the wrong method gets 405 and Allow; an unknown path 404", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      for (
        const [method, path, allow] of [...wrongMethods, ["POST", "/docs", "GET, HEAD"] as const]
      ) {
        const answer = yield* call(`${base}${path}`, { method, headers: auth() })
        expect({ method, path, status: answer.status, allow: answer.headers.get("allow") }).toEqual({
          method,
          path,
          status: 405,
          allow
        })
        expect(answer.json.error.code).toBe("method_not_allowed")
      }
      const unknown = yield* call(`${base}/v1/apps/${APP}/nothing`, { method: "DELETE", headers: auth() })
      expect(unknown.status).toBe(404)
      expect(unknown.headers.get("allow")).toBeNull()
      // The right method on a path the router refuses (a parameter over its length limit) is no 405.
      const overlong = yield* call(`${base}/v1/apps/${"x".repeat(200)}/access-token`, { headers: auth() })
      expect(overlong.status).toBe(404)
      expect((yield* call(`${base}/healthz`, { method: "HEAD" })).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("401 names the scheme: WWW-Authenticate: Bearer", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      for (
        const headers of [{}, { authorization: "Bearer wrong-key-wrong-key-wrong" }, { authorization: `Basic ${KEY}` }]
      ) {
        const answer = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers })
        expect(answer.status).toBe(401)
        expect(answer.headers.get("www-authenticate")).toBe("Bearer")
      }
    }).pipe(Effect.scoped))

  it.live("every answer carrying a token, ticket or signature (and every error) is Cache-Control: no-store", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const json = { ...auth(), "content-type": "application/json" }
      const token = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      const answers = [
        token,
        yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
          method: "POST",
          headers: json,
          body: JSON.stringify({ stale_token: token.json.access_token })
        }),
        yield* call(`${base}/v1/apps/${APP}/jsapi-ticket`, { headers: auth() }),
        yield* call(`${base}/v1/apps/${APP}/jssdk-config`, {
          method: "POST",
          headers: json,
          body: JSON.stringify({ url: "https://example.com/" })
        }),
        yield* call(`${base}/v1/apps/${APP}/access-token`),
        yield* call(`${base}/v1/apps/${OTHER}/access-token`, { headers: auth() }),
        yield* call(`${base}/v1/apps/${APP}/jssdk-config`, { method: "POST", headers: json, body: "{" }),
        yield* call(`${base}/readyz`),
        yield* call(`${base}/metrics`)
      ]
      expect(answers.slice(0, 4).map((answer) => answer.status)).toEqual([200, 200, 200, 200])
      for (const answer of answers) expect(answer.headers.get("cache-control")).toBe("no-store")
    }).pipe(Effect.scoped))

  it.live("a doubled or trailing slash is not a second name for a route: 404, counted as unmatched", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      yield* awaitReady(base)
      // The registry is the process's: count this test's requests only.
      const unmatched = (text: string) =>
        Number(
          /^wechat_token_server_requests_total\{route="unmatched",method="GET",status="404"\} (\d+)$/m.exec(text)
            ?.[1] ?? 0
        )
      const before = unmatched((yield* call(`${base}/metrics`)).text)
      const odd = [
        `//v1/apps/${APP}/access-token`,
        `/v1/apps/${APP}/access-token/`,
        `/v1//apps/${APP}/access-token`,
        "/healthz/",
        "//metrics"
      ]
      for (const path of odd) {
        // `fetch` would normalise these paths; the raw client sends them as written.
        const answer = yield* send(Number(new URL(base).port), { path, headers: auth() })
        expect({ path, status: answer.status }).toEqual({ path, status: 404 })
      }
      const metrics = (yield* call(`${base}/metrics`)).text
      expect(unmatched(metrics) - before).toBe(odd.length)
      expect(metrics).not.toMatch(/wechat_token_server_requests_total\{route="[^"]*\/",/)
    }).pipe(Effect.scoped))

  it.live("/docs and /openapi.json: compressed when asked, with an ETag, 304 when unchanged", () =>
    Effect.gen(function*() {
      const port = Number(new URL(yield* startServer({ upstream: yield* startUpstream })).port)
      for (const path of ["/docs", "/openapi.json"]) {
        const plain = yield* sendBytes(port, path, {})
        expect(plain.status).toBe(200)
        expect(plain.headers["content-encoding"]).toBeUndefined()
        expect(plain.headers["cache-control"]).toBe("no-cache")
        expect(plain.headers["vary"]).toBe("Accept-Encoding")
        for (
          const [accept, encoding, decode] of [
            ["gzip, deflate, br", "br", brotliDecompressSync],
            ["gzip", "gzip", gunzipSync],
            ["br;q=0.5, gzip;q=1", "gzip", gunzipSync]
          ] as const
        ) {
          const compressed = yield* sendBytes(port, path, { "accept-encoding": accept })
          expect(compressed.headers["content-encoding"]).toBe(encoding)
          expect(compressed.body.length).toBeLessThan(plain.body.length / 2)
          expect(decode(compressed.body).equals(plain.body)).toBe(true)
          const etag = compressed.headers["etag"]
          expect(etag).toMatch(/^"[^"]+"$/)
          expect(etag).not.toBe(plain.headers["etag"])
          const again = yield* sendBytes(port, path, { "accept-encoding": accept, "if-none-match": String(etag) })
          expect(again.status).toBe(304)
          expect(again.body.length).toBe(0)
        }
      }
    }).pipe(Effect.scoped))

  it.live("/docs renders the description's <client key> as text and preselects bearer auth", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      const docs = (yield* call(`${base}/docs`)).text
      // Markdown code spans show angle brackets as they are; bare, the page read them as a tag.
      const spec = (yield* call(`${base}/openapi.json`)).json
      expect(spec.info.description).toContain("`Authorization: Bearer <client key>`")
      expect(docs).toContain("preferredSecurityScheme")
      expect(docs).toMatch(/"preferredSecurityScheme\\?":\\?"bearer\\?"/)
    }).pipe(Effect.scoped))
})

const sendBytes = (port: number, path: string, headers: Record<string, string>) =>
  Effect.async<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resume) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on(
        "end",
        () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      )
    })
    req.on("error", (error) => resume(Effect.die(error)))
    req.end()
  })
