import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, FastCheck as fc, Layer, Option, Schema } from "effect"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import * as WeChatApi from "../../src/families/officialAccount/WeChatApi.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { APP, auth, awaitReady, errorCode, KEY, SECRET, send, startStack } from "../support/serverStack.js"

const WECHAT_ERRORS = [
  "UpstreamUnavailable",
  "InvalidCredential",
  "InvalidAppId",
  "InvalidAppSecret",
  "IpNotWhitelisted",
  "QuotaExceeded",
  "AdminConfirmationRequired",
  "WeChatApiError"
]

// A decode either succeeds or fails with a typed WeChat error: never a defect.
const expectTyped = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>, input: unknown) => {
  if (Exit.isSuccess(exit)) return
  const failure = Cause.failureOption(exit.cause)
  expect(Option.isSome(failure), `a defect for ${JSON.stringify(input)?.slice(0, 200)}`).toBe(true)
  if (Option.isSome(failure)) expect(WECHAT_ERRORS).toContain(failure.value._tag)
}

// Bodies shaped like WeChat's, broken in every way, plus anything at all.
const upstreamBody = fc.oneof(
  fc.anything(),
  fc.record({ access_token: fc.anything(), expires_in: fc.anything() }, { requiredKeys: [] }),
  fc.record({ errcode: fc.anything(), errmsg: fc.anything() }, { requiredKeys: [] }),
  fc.record({ errcode: fc.integer(), errmsg: fc.string(), ticket: fc.anything(), expires_in: fc.anything() }, {
    requiredKeys: []
  })
)

// What a path segment may carry on the wire: printable ASCII as is, the rest percent-encoded.
const onWire = (text: string) => text.replace(/[^\x21-\x7e]/gu, (char) => encodeURIComponent(char))

const appIdTricks = fc.oneof(
  fc.constantFrom(
    "wx../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e",
    "wx0123456789abcdef%00",
    "wx0123456789abcdef%2f..%2fwxfedcba9876543210",
    "WX0123456789ABCDEF",
    "wx0123456789abcdef%20",
    "wx0123456789abcde",
    "wx0123456789abcdef0",
    "__proto__",
    "constructor",
    "%",
    "%zz",
    "a".repeat(8_000)
  ),
  fc.string({ maxLength: 40 }).map(onWire),
  fc.constant(APP)
)

const route = fc.constantFrom(
  (id: string) => `/v1/apps/${id}/access-token`,
  (id: string) => `/v1/apps/${id}/access-token/refresh`,
  (id: string) => `/v1/apps/${id}/jsapi-ticket`,
  (id: string) => `/v1/apps/${id}/jssdk-config`,
  () => "/healthz",
  () => "/readyz",
  () => "/metrics",
  () => "/openapi.json",
  (id: string) => `/${id}`,
  (id: string) => `/v1/${id}`
)

const request = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
  path: fc.tuple(route, appIdTricks, fc.constantFrom("", "?x=1", "?stale_token=a&url=b", "#frag", "/", "//", "?%zz"))
    .map(
      ([make, id, suffix]) => make(id) + suffix
    ),
  authorization: fc.oneof(
    fc.constant(`Bearer ${KEY}`),
    fc.constant(undefined),
    fc.string({ maxLength: 60 }).map(onWire)
  ),
  contentType: fc.oneof(
    fc.constantFrom(
      "application/json",
      "application/json; charset=latin1",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream"
    ),
    fc.constant(undefined),
    fc.string({ maxLength: 40 }).map(onWire)
  ),
  body: fc.oneof(
    fc.constant(undefined),
    fc.jsonValue().map((value) => JSON.stringify(value)),
    fc.record({ stale_token: fc.anything(), url: fc.anything() }, { requiredKeys: [] }).map((value) =>
      JSON.stringify(value) ?? ""
    ),
    fc.string({ maxLength: 200 }),
    fc.constantFrom(
      "{\"stale_token\":",
      "\u0000\u0001",
      "stale_token=x&url=y",
      "--xyz\r\n\r\n--xyz--",
      "{\"url\":\"javascript:alert(1)\"}"
    )
  )
})

// `send` declares the length; a streaming client does not.
const sendChunked = (port: number, path: string, body: string) =>
  Effect.async<{ readonly status: number; readonly text: string }>((resume) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path,
      agent: false,
      headers: { ...auth(), "content-type": "application/json", "transfer-encoding": "chunked" }
    }, (res) => {
      let text = ""
      res.on("data", (chunk: Buffer) => (text += chunk.toString()))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, text })))
    })
    // Once the answer is in, the server stops reading and the rest cannot be written: that is expected.
    req.on("error", () => undefined)
    for (let offset = 0; offset < body.length; offset += 64 * 1024) req.write(body.slice(offset, offset + 64 * 1024))
    req.end()
    return Effect.sync(() => req.destroy())
  })

describe("BadInput", () => {
  it.effect("arbitrary upstream JSON values never crash decoding: success or a typed WeChat error", () =>
    Effect.sync(() => {
      const decode = WeChatApi.decodeBody(Schema.Struct({ access_token: Schema.String, expires_in: Schema.Number }))
      fc.assert(
        fc.property(upstreamBody, (body) => {
          expectTyped(Effect.runSyncExit(decode(body, { appId: APP, site: "token-endpoint" })), body)
        }),
        { numRuns: 2_000 }
      )
    }))

  it.scoped("arbitrary upstream response texts through the HTTP client: success or a typed WeChat error", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const api = yield* WeChatApi.WeChatApi
      const app = TokenConfig.app(APP, SECRET)
      const texts = fc.sample(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((value) => JSON.stringify(value)),
          upstreamBody.map((value) => JSON.stringify(value) ?? "")
        ),
        300
      )
      for (const text of texts) {
        yield* emulator.clearFaults
        yield* emulator.injectFault({ fault: Emulator.Fault.Malformed(text) })
        for (const mode of ["classic", "stable"] as const) {
          expectTyped(yield* Effect.exit(api.fetchAccessToken(app, mode, { forceRefresh: false })), text)
        }
        expectTyped(yield* Effect.exit(api.fetchTicket(app.appId, "token", "jsapi")), text)
      }
    }).pipe(
      Effect.provide(
        WeChatApi.layer({ baseUrl: "http://wechat.test" }).pipe(
          Layer.provide(Emulator.layerClient),
          Layer.provideMerge(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] }))
        )
      )
    ))

  it.live(
    "arbitrary methods, paths, headers and bodies on every route: never a 5xx, every refusal a JSON error",
    () =>
      Effect.gen(function*() {
        const stack = yield* startStack()
        yield* awaitReady(stack.base)
        for (const sample of fc.sample(request, 600)) {
          const headers: Record<string, string> = {}
          if (sample.authorization !== undefined) headers["authorization"] = sample.authorization
          if (sample.contentType !== undefined) headers["content-type"] = sample.contentType
          const shown = { ...sample, body: sample.body?.slice(0, 100), path: sample.path.slice(0, 100) }
          // An input the server never answers fails here, naming it, instead of hanging the test.
          const answer = yield* send(stack.port, {
            method: sample.method,
            path: sample.path,
            headers,
            ...(sample.body === undefined ? {} : { body: sample.body })
          }).pipe(
            Effect.timeoutFail({
              duration: "15 seconds",
              onTimeout: () => new Error(`no answer within 15 s to ${JSON.stringify(shown)}`)
            })
          )
          const seen = { ...shown, status: answer.status }
          expect(answer.status, JSON.stringify(seen)).toBeLessThan(500)
          if (answer.status >= 400) expect(errorCode(answer.text), JSON.stringify(seen)).toBeDefined()
          // Whatever was sent, nothing echoes the client key back.
          expect(answer.text).not.toContain(KEY)
        }
        expect((yield* send(stack.port, { path: "/healthz" })).status).toBe(200)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("huge bodies are refused with 413 before they are read, declared or chunked", () =>
    Effect.gen(function*() {
      const stack = yield* startStack()
      yield* awaitReady(stack.base)
      const huge = JSON.stringify({ url: `https://example.com/${"a".repeat(8 * 2 ** 20)}` })
      for (const path of [`/v1/apps/${APP}/jssdk-config`, `/v1/apps/${APP}/access-token/refresh`]) {
        const declared = yield* send(stack.port, {
          method: "POST",
          path,
          headers: { ...auth(), "content-type": "application/json" },
          body: huge
        })
        expect(declared.status).toBe(413)
        expect(errorCode(declared.text)).toBe("payload_too_large")
        const chunked = yield* sendChunked(stack.port, path, huge)
        expect(chunked.status).toBe(413)
        expect(errorCode(chunked.text)).toBe("payload_too_large")
      }
      expect((yield* send(stack.port, { path: `/v1/apps/${APP}/access-token`, headers: auth() })).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("bytes that are not HTTP get a JSON 400 too, and the server carries on", () =>
    Effect.gen(function*() {
      const stack = yield* startStack()
      for (
        const garbage of [
          "GARBAGE\r\n\r\n",
          "GET / HTTP/1.1\r\nHost x\r\n\r\n",
          `GET /healthz HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`,
          "\u0000\u0001\u0002\r\n\r\n"
        ]
      ) {
        const reply = yield* Effect.async<string>((resume) => {
          let text = ""
          const socket = connect(stack.port, "127.0.0.1", () => socket.end(garbage))
          socket.on("data", (chunk: Buffer) => (text += chunk.toString()))
          socket.on("close", () => resume(Effect.succeed(text)))
          socket.on("error", () => undefined)
        })
        expect(reply).toMatch(/^HTTP\/1\.1 4(00|31) /)
        expect(errorCode(reply.slice(reply.indexOf("\r\n\r\n") + 4))).toBeDefined()
      }
      expect((yield* send(stack.port, { path: "/healthz" })).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("slow clients (headers or body dribbled, then abandoned) do not stop others being served", () =>
    Effect.gen(function*() {
      const stack = yield* startStack()
      yield* awaitReady(stack.base)
      const sockets = Array.from({ length: 50 }, (_, index) => {
        const socket = connect(stack.port, "127.0.0.1")
        socket.on("error", () => undefined)
        // Half stall in the headers, half in a declared body.
        socket.write(
          index % 2 === 0
            ? `GET /v1/apps/${APP}/access-token HTTP/1.1\r\nHost: x\r\nAuthori`
            : `POST /v1/apps/${APP}/jssdk-config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"url":`
        )
        return socket
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((socket) => socket.destroy())))
      for (let round = 0; round < 5; round++) {
        for (const socket of sockets) socket.write("a")
        const answers = yield* Effect.all(
          Array.from(
            { length: 20 },
            () => send(stack.port, { path: `/v1/apps/${APP}/access-token`, headers: auth() })
          ),
          { concurrency: "unbounded" }
        )
        expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200))
        yield* Effect.sleep(Duration.millis(100))
      }
      // Abandoned mid-request: the server shrugs and carries on.
      for (const socket of sockets) socket.destroy()
      yield* Effect.sleep(Duration.millis(100))
      expect((yield* send(stack.port, { path: "/healthz" })).status).toBe(200)
      expect((yield* send(stack.port, { path: `/v1/apps/${APP}/access-token`, headers: auth() })).status).toBe(200)
    }).pipe(Effect.scoped))
})
