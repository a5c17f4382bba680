import {
  FetchHttpClient,
  HttpClient,
  HttpClientError,
  type HttpClientRequest,
  HttpClientResponse
} from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { AccessToken } from "../../src/AccessToken.js"
import * as RemoteTokenLayer from "../../src/client/RemoteTokenLayer.js"
import { APP, awaitReady, KEY, OTHER, startServer, startUpstream } from "../server/harness.js"

// The real fetch client, counting the requests that reach the token server.
const countingClient = () => {
  const seen = { requests: 0 }
  const layer = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, HttpClient.tapRequest(() => Effect.sync(() => seen.requests++)))
  ).pipe(Layer.provide(FetchHttpClient.layer))
  return { seen, layer }
}

// A token server in-process: each request answered 200 with the token `answer` gives for it.
const tokenServer = (answer: (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<object>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.map(
        answer(request),
        (token) => HttpClientResponse.fromWeb(request, new Response(JSON.stringify(token), { status: 200 }))
      )
    )
  )

// A running token server over the emulator, and a counting client to reach it.
const servedAndCounted = Effect.gen(function*() {
  const upstream = yield* startUpstream
  const base = yield* startServer({ upstream })
  yield* awaitReady(base)
  return { base, client: countingClient(), upstream }
})

const remote = (base: string, client: Layer.Layer<HttpClient.HttpClient>, key: string = KEY) =>
  RemoteTokenLayer.layer({ baseUrl: base, clientKey: Redacted.make(key) }).pipe(Layer.provide(client))

describe("RemoteTokenLayer", () => {
  it.scoped("a cached token is used only until the expiry margin (30 s) before the expires_in served", () =>
    Effect.gen(function*() {
      let calls = 0
      const server = tokenServer(() =>
        Effect.sync(() => {
          calls++
          return { access_token: `token-${calls}`, expires_in: 60, expires_at: "2030-01-01T00:01:00.000Z" }
        })
      )
      yield* Effect.gen(function*() {
        const tokens = yield* AccessToken
        expect((yield* tokens.get(APP)).value).toBe("token-1")
        yield* TestClock.adjust(Duration.seconds(29))
        expect((yield* tokens.get(APP)).value).toBe("token-1")
        yield* TestClock.adjust(Duration.seconds(1))
        expect((yield* tokens.get(APP)).value).toBe("token-2")
        expect(calls).toBe(2)
      }).pipe(Effect.provide(remote("http://tokens.test", server)))
    }))

  it.scoped("reports of two different stale tokens are two calls: a refresh in flight is not the answer to another", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      // A token server whose refresh answers, once the gate opens, with the token replacing the reported one.
      const server = tokenServer((request) =>
        Effect.gen(function*() {
          yield* Deferred.await(gate)
          const reported = request.body._tag === "Uint8Array"
            ? JSON.parse(new TextDecoder().decode(request.body.body)).stale_token
            : "none"
          return { access_token: `replaces-${reported}`, expires_in: 7200, expires_at: "2030-01-01T02:00:00.000Z" }
        })
      )
      yield* Effect.gen(function*() {
        const tokens = yield* AccessToken
        const first = yield* Effect.fork(tokens.refresh(APP, "token-a"))
        yield* Effect.yieldNow()
        const second = yield* Effect.fork(tokens.refresh(APP, "token-b"))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Fiber.join(first)).value).toBe("replaces-token-a")
        expect((yield* Fiber.join(second)).value).toBe("replaces-token-b")
      }).pipe(Effect.provide(remote("http://tokens.test", server)))
    }))

  it.live("gets through a running server, caches, and shares one call among concurrent callers", () =>
    Effect.gen(function*() {
      const { base, client } = yield* servedAndCounted
      yield* Effect.gen(function*() {
        const tokens = yield* AccessToken
        const all = yield* Effect.forEach(Array.from({ length: 20 }), () => tokens.get(APP), {
          concurrency: "unbounded"
        })
        expect(new Set(all.map((token) => token.value)).size).toBe(1)
        expect(client.seen.requests).toBe(1)
        const again = yield* tokens.get(APP)
        expect(again.value).toBe(all[0]!.value)
        expect(client.seen.requests).toBe(1)
        expect(again.expiresAt).toBeGreaterThan(Date.now() + 3600_000)
      }).pipe(Effect.provide(remote(base, client.layer)))
    }).pipe(Effect.scoped))

  it.live("refreshes a stale token once, through the server's compare-and-refresh", () =>
    Effect.gen(function*() {
      const { base, client, upstream } = yield* servedAndCounted
      yield* Effect.gen(function*() {
        const tokens = yield* AccessToken
        const stale = yield* tokens.get(APP)
        const before = yield* upstream.tokenFetches
        const fresh = yield* Effect.forEach(Array.from({ length: 10 }), () => tokens.refresh(APP, stale.value), {
          concurrency: "unbounded"
        })
        expect(new Set(fresh.map((token) => token.value)).size).toBe(1)
        expect(fresh[0]!.value).not.toBe(stale.value)
        expect((yield* upstream.tokenFetches) - before).toBe(1)
        // The replaced token reported again: answered from the cache, no call.
        const requests = client.seen.requests
        expect((yield* tokens.refresh(APP, stale.value)).value).toBe(fresh[0]!.value)
        expect(client.seen.requests).toBe(requests)
        expect((yield* tokens.get(APP)).value).toBe(fresh[0]!.value)
      }).pipe(Effect.provide(remote(base, client.layer)))
    }).pipe(Effect.scoped))

  it.live("maps 404 to UnknownApp, and a refused key or a dead server to UpstreamUnavailable", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      const unknown = yield* Effect.flip(Effect.flatMap(AccessToken, (tokens) => tokens.get(OTHER))).pipe(
        Effect.provide(remote(base, FetchHttpClient.layer))
      )
      expect(unknown._tag).toBe("UnknownApp")
      const refused = yield* Effect.flip(Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))).pipe(
        Effect.provide(remote(base, FetchHttpClient.layer, "not-the-client-key-at-all"))
      )
      expect(refused._tag).toBe("UpstreamUnavailable")
      expect(refused.message).toContain("401")
      const dead = yield* Effect.flip(Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))).pipe(
        Effect.provide(remote("http://127.0.0.1:9", FetchHttpClient.layer))
      )
      expect(dead._tag).toBe("UpstreamUnavailable")
    }).pipe(Effect.scoped))

  it.live("a dropped connection is retried: the caller gets the token", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      yield* awaitReady(base)
      const attempts = { count: 0 }
      // The first request fails as a connection reset would; later ones go through.
      const resetOnce = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, (client) =>
          HttpClient.make((request) =>
            ++attempts.count === 1
              ? Effect.fail(
                new HttpClientError.RequestError({ request, reason: "Transport", description: "ECONNRESET" })
              )
              : client.execute(request)
          ))
      ).pipe(Layer.provide(FetchHttpClient.layer))
      const token = yield* Effect.flatMap(AccessToken, (tokens) => tokens.get(APP)).pipe(
        Effect.provide(remote(base, resetOnce))
      )
      expect(token.value.length).toBeGreaterThan(12)
      expect(attempts.count).toBe(2)
    }).pipe(Effect.scoped))

  it.scoped("answers are decoded through the API's schemas: a body off the schema, a 503 cause, an id off the shape", () =>
    Effect.gen(function*() {
      let calls = 0
      // A server answering each call with the next of these.
      const answers = [
        new Response(JSON.stringify({ access_token: "", expires_in: -1 }), { status: 200 }),
        new Response(JSON.stringify({ error: { code: "40164", message: "caller IP not whitelisted" } }), {
          status: 503,
          headers: { "content-type": "application/json" }
        })
      ]
      const server = Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request) => Effect.sync(() => HttpClientResponse.fromWeb(request, answers[calls++]!)))
      )
      yield* Effect.gen(function*() {
        const tokens = yield* AccessToken
        expect(yield* Effect.flip(tokens.get(APP))).toMatchObject({
          _tag: "UpstreamUnavailable",
          reason: "malformed-body"
        })
        const cause = yield* Effect.flip(tokens.get(APP))
        expect(cause).toMatchObject({ _tag: "UpstreamUnavailable", reason: "http-status" })
        expect(cause.message).toContain("HTTP 503 40164: caller IP not whitelisted")
        expect(yield* Effect.flip(tokens.get("not-an-app-id"))).toMatchObject({ _tag: "UnknownApp" })
        expect(calls).toBe(2)
      }).pipe(Effect.provide(remote("http://tokens.test", server)))
    }))
})
