/**
 * `TokenServer.layer` is runtime-agnostic: served through
 * `HttpApp.toWebHandler` with web `Request`s, it answers as on Node, its
 * request limits included.
 *
 * Only on the Node edge (`NodeServer.layer`, covered by RequestLimits.test.ts,
 * HostileClients and Shutdown), because they need the socket a web handler
 * never sees: the 408 for headers that do not arrive in time (Node's parser
 * owns them), JSON refusals of malformed HTTP and oversized headers, the
 * linger that lets a client still sending its body read the 413 before the
 * connection is cut, the end of an answer whose client has gone, the drain
 * at shutdown, the fast path and the proxy routes.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Redacted } from "effect"
import * as TokenServer from "../../src/server/TokenServer.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { APP, emulatorLayer, engineLayer } from "../support/engine.js"

const KEY = "web-client-key-0123456789"
const MAX_BODY_BYTES = 256
const BASE = "http://token.test"

type Handler = (request: Request) => Promise<Response>

// The app as a web handler: an `HttpServer` that hands what it is asked to
// serve to `HttpApp.toWebHandler` (with the runtime it was served in).
const webHandler = Effect.gen(function*() {
  const served = yield* Deferred.make<Handler>()
  const server = HttpServer.make({
    address: { _tag: "TcpAddress", hostname: "token.test", port: 80 },
    serve: (app, middleware) =>
      Effect.flatMap(
        Effect.runtime<never>(),
        (runtime) => Deferred.succeed(served, HttpApp.toWebHandlerRuntime(runtime)(app, middleware))
      )
  })
  yield* Layer.build(
    TokenServer.layer({
      clientKeys: [Redacted.make(KEY)],
      maxBodyBytes: MAX_BODY_BYTES,
      requestTimeout: "300 millis"
    }).pipe(
      Layer.provide(Layer.merge(Layer.succeed(HttpServer.HttpServer, server), HttpServer.layerContext)),
      Layer.provide(TokenLayer.layerUnconfiguredFamilies.pipe(
        Layer.provideMerge(engineLayer({ store: TokenStore.layerMemory }))
      )),
      Layer.provide(TokenStore.layerMemory),
      Layer.provide(emulatorLayer())
    )
  )
  return yield* Deferred.await(served)
})

const send = (handler: Handler, path: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await handler(new Request(`${BASE}${path}`, init))
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const authorized = { authorization: `Bearer ${KEY}` }
const TOKEN = `/v1/apps/${APP}/access-token`

// A body that sends its first bytes and then nothing, never ending.
const stalled = () =>
  new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(new TextEncoder().encode("{\"stale_token\":"))
  })

describe("TokenServer through HttpApp.toWebHandler", () => {
  it.scopedLive("serves the token route, with the Effect app's headers", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const answer = yield* send(handler, TOKEN, { headers: authorized })
      expect(answer.status).toBe(200)
      expect(answer.headers.get("cache-control")).toBe("no-store")
      const body = JSON.parse(answer.body)
      expect(typeof body.access_token).toBe("string")
      expect(body.expires_in).toBeGreaterThan(0)
    }))

  it.scopedLive("a body within the limit is read and decoded: a refresh answers with a token", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const answer = yield* send(handler, `${TOKEN}/refresh`, {
        method: "POST",
        headers: { ...authorized, "content-type": "application/json" },
        body: JSON.stringify({ stale_token: "not-the-current-token" })
      })
      expect(answer.status).toBe(200)
      expect(typeof JSON.parse(answer.body).access_token).toBe("string")
    }))

  it.scopedLive("multipart with no body gets a JSON 400 at once, never the platform's wait for a first part", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      for (const contentType of ["multipart/form-data; boundary=xyz", "multipart/form-data"]) {
        const answer = yield* send(handler, `${TOKEN}/refresh`, {
          method: "POST",
          headers: { ...authorized, "content-type": contentType }
        }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => `no answer with ${contentType}` }))
        expect({ contentType, status: answer.status, body: JSON.parse(answer.body) }).toEqual({
          contentType,
          status: 400,
          body: { error: { code: "unsupported_content_type", message: "send the body as application/json" } }
        })
      }
    }))

  it.scopedLive("the wrong method gets 405 with Allow", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const answer = yield* send(handler, TOKEN, { method: "DELETE", headers: authorized })
      expect(answer.status).toBe(405)
      expect(answer.headers.get("allow")).toBe("GET, HEAD")
      expect(JSON.parse(answer.body).error.code).toBe("method_not_allowed")
    }))

  it.scopedLive("no client key gets 401 with WWW-Authenticate", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const answer = yield* send(handler, TOKEN)
      expect(answer.status).toBe(401)
      expect(answer.headers.get("www-authenticate")).toBe("Bearer")
      expect(JSON.parse(answer.body).error.code).toBe("unauthorized")
    }))

  it.scopedLive("an oversized body gets 413, with or without a declared length", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const oversized = JSON.stringify({ stale_token: "x".repeat(MAX_BODY_BYTES) })
      const declared = yield* send(handler, `${TOKEN}/refresh`, {
        method: "POST",
        headers: { ...authorized, "content-type": "application/json" },
        body: oversized
      })
      // A streamed body declares no length (as an HTTP/2 request need not): counted as it arrives.
      const streamed = yield* send(handler, `${TOKEN}/refresh`, {
        method: "POST",
        headers: { ...authorized, "content-type": "application/json" },
        body: new Blob([oversized]).stream(),
        duplex: "half"
      } as RequestInit)
      for (const answer of [declared, streamed]) {
        expect(answer.status).toBe(413)
        expect(JSON.parse(answer.body).error.code).toBe("payload_too_large")
      }
    }))

  it.scopedLive("a body that stops arriving gets 408 once the request timeout has passed", () =>
    Effect.gen(function*() {
      const handler = yield* webHandler
      const answer = yield* send(handler, `${TOKEN}/refresh`, {
        method: "POST",
        headers: { ...authorized, "content-type": "application/json" },
        body: stalled(),
        duplex: "half"
      } as RequestInit)
      expect(answer.status).toBe(408)
      expect(JSON.parse(answer.body).error.code).toBe("request_timeout")
    }))
})
