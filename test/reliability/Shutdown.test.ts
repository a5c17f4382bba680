/**
 * SIGTERM against the real process while clients misbehave: a connection
 * that sends nothing (a load balancer's TCP probe), half a request head, half
 * a body, next to requests the server has accepted (a slow upstream call, a
 * slow upload through the proxy). The process must exit 0 within the drain
 * bound whatever the clients do, having answered in full what it accepted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { createHash } from "node:crypto"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { Fault } from "../../src/testing/WeChatEmulator.js"
import {
  APP,
  CLIENT_KEY,
  eventually,
  type Replica,
  ReplicaError,
  SECRET,
  type Signal,
  spawnReplica,
  upstreams
} from "../support/replicas.js"

const env = (upstream: string, drainSeconds: number): Record<string, string> => ({
  WECHAT_APPS: `${APP}:${SECRET}`,
  WECHAT_API_BASE_URL: upstream,
  CLIENT_KEYS: CLIENT_KEY,
  UPSTREAM_TIMEOUT_SECONDS: "600",
  SHUTDOWN_DRAIN_SECONDS: String(drainSeconds),
  LOG_LEVEL: "info"
})

const portOf = (replica: Replica) => Number(new URL(replica.url).port)

// Far below the 120 s drain these tests set where the drain must not be what ends the process.
const EXIT_WITHIN = Duration.seconds(60)

/** Sends `signal` and waits at most `within` for the process to end; fails naming what it printed if it does not. */
const stop = (replica: Replica, signal: Signal, within: Duration.Duration = EXIT_WITHIN) =>
  replica.kill(signal).pipe(
    Effect.timeoutFail({
      duration: within,
      onTimeout: () =>
        new ReplicaError({
          message: `still alive ${Duration.format(within)} after ${signal}:\n${replica.output().slice(-3_000)}`
        })
    }),
    Effect.zipRight(Effect.sync(() => replica.exitStatus()))
  )

/** A raw connection that writes `bytes` and then nothing; `closed` completes when the server closes it. */
const halfSent = (replica: Replica, bytes: string) =>
  Effect.gen(function*() {
    const closed = yield* Deferred.make<void>()
    const socket = connect(portOf(replica), "127.0.0.1", () => socket.write(bytes))
    socket.on("error", () => undefined)
    socket.on("close", () => Deferred.unsafeDone(closed, Exit.void))
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    return closed
  })

const authorization = { authorization: `Bearer ${CLIENT_KEY}` }

/** A proxied GET of `getcallbackip`; a cut connection is status 0. */
const callbackIp = (replica: Replica) =>
  Effect.promise(() =>
    fetch(`${replica.url}/v1/apps/${APP}/wechat/cgi-bin/getcallbackip`, { headers: authorization }).then(
      async (response) => ({ status: response.status, body: await response.text() }),
      () => ({ status: 0, body: "" })
    )
  )

const inFlight = (replica: Replica) =>
  Effect.promise(() =>
    fetch(`${replica.url}/metrics`).then((response) => response.text()).then(
      (text) => Number(/^wechat_token_server_requests_in_flight (\d+)/m.exec(text)?.[1] ?? "0"),
      () => 0
    )
  )

const CHUNK = 16 * 1024
const CHUNKS = 24

/**
 * A multipart upload through the proxy that trickles in over about five
 * seconds (a chunk every 200 ms): an upload in progress, not a stalled one.
 */
const slowUpload = (replica: Replica) =>
  Effect.async<{ readonly status: number; readonly text: string; readonly sha256: string; readonly bytes: number }>(
    (resume) => {
      const hash = createHash("sha256")
      const head = Buffer.from(
        "--B\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
      )
      const tail = Buffer.from("\r\n--B--\r\n")
      const bytes = head.length + CHUNK * CHUNKS + tail.length
      const req = httpRequest({
        host: "127.0.0.1",
        port: portOf(replica),
        method: "POST",
        path: `/v1/apps/${APP}/wechat/cgi-bin/media/upload?type=image`,
        agent: false,
        headers: { ...authorization, "content-type": "multipart/form-data; boundary=B", "content-length": bytes }
      }, (res) => {
        let text = ""
        res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")))
        res.on(
          "end",
          () => resume(Effect.succeed({ status: res.statusCode ?? 0, text, sha256: hash.digest("hex"), bytes }))
        )
      })
      req.on("error", () => resume(Effect.succeed({ status: 0, text: "", sha256: "", bytes })))
      const write = (chunk: Buffer) => {
        hash.update(chunk)
        req.write(chunk)
      }
      write(head)
      let sent = 0
      const timer = setInterval(() => {
        write(Buffer.alloc(CHUNK, sent))
        sent += 1
        if (sent < CHUNKS) return
        clearInterval(timer)
        write(tail)
        req.end()
      }, 200)
      return Effect.sync(() => {
        clearInterval(timer)
        req.destroy()
      })
    }
  )

describe("shutdown", () => {
  it.live(
    "SIGTERM closes silent and half-sent connections at once, answers the requests in flight in full, and exits 0",
    () =>
      Effect.gen(function*() {
        const wechat = yield* upstreams(1)
        const replica = yield* spawnReplica(0, env(wechat.urlOf(0), 120))
        yield* wechat.emulator.injectFault({ fault: Fault.Slow(Duration.seconds(6)), endpoints: ["getcallbackip"] })
        const slow = yield* Effect.fork(callbackIp(replica))
        const upload = yield* Effect.fork(slowUpload(replica))
        // Both accepted by the server before the signal: the two, and the scrape asking.
        yield* eventually(Effect.map(inFlight(replica), (count) => count >= 3), "both requests in flight")
        const silent = yield* halfSent(replica, "")
        const halfHead = yield* halfSent(replica, `GET /healthz HTTP/1.1\r\nHost: x\r\n`)
        const halfBody = yield* halfSent(
          replica,
          `POST /v1/apps/${APP}/wechat/cgi-bin/message/custom/send HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: Bearer ${CLIENT_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"to`
        )

        const status = yield* stop(replica, "SIGTERM")

        expect(status, replica.output().slice(-3_000)).toEqual({ code: 0, signal: null })
        // Each was closed by the server, not left for the process's end to take away.
        for (const closed of [silent, halfHead, halfBody]) expect(yield* Deferred.isDone(closed)).toBe(true)
        const answered = yield* Fiber.join(slow)
        expect(answered.status).toBe(200)
        expect(JSON.parse(answered.body)).toMatchObject({ ip_list: expect.any(Array) })
        const uploaded = yield* Fiber.join(upload)
        expect(uploaded.status).toBe(200)
        expect(JSON.parse(uploaded.text)).toMatchObject({ type: "image", media_id: expect.any(String) })
        const seen = (yield* wechat.emulator.apis.calls).find((call) => call.path === "/cgi-bin/media/upload")
        expect(seen).toMatchObject({ bodyBytes: uploaded.bytes, bodySha256: uploaded.sha256 })
        expect(replica.output()).toContain("shutting down: no longer accepting connections")
      }).pipe(Effect.scoped),
    300_000
  )

  it.live(
    "a request still running when the drain time is over is cut, and the process exits 0 anyway",
    () =>
      Effect.gen(function*() {
        const wechat = yield* upstreams(1)
        const replica = yield* spawnReplica(0, env(wechat.urlOf(0), 1))
        yield* wechat.emulator.injectFault({ fault: Fault.Slow(Duration.minutes(10)), endpoints: ["getcallbackip"] })
        const slow = yield* Effect.fork(callbackIp(replica))
        yield* eventually(
          Effect.map(wechat.emulator.appStats(APP), (stats) => stats.callbackIpCalls >= 1),
          "the call reached WeChat"
        )

        const status = yield* stop(replica, "SIGTERM")

        expect(status, replica.output().slice(-3_000)).toEqual({ code: 0, signal: null })
        expect((yield* Fiber.join(slow)).status).toBe(0)
        expect(replica.output()).toContain("drain time over")
      }).pipe(Effect.scoped),
    300_000
  )

  for (const second of ["SIGTERM", "SIGINT"] as const) {
    it.live(`a ${second} during the drain ends the process at once`, () =>
      Effect.gen(function*() {
        const wechat = yield* upstreams(1)
        const replica = yield* spawnReplica(0, env(wechat.urlOf(0), 120))
        yield* wechat.emulator.injectFault({ fault: Fault.Slow(Duration.minutes(10)), endpoints: ["getcallbackip"] })
        yield* Effect.fork(callbackIp(replica))
        yield* eventually(
          Effect.map(wechat.emulator.appStats(APP), (stats) => stats.callbackIpCalls >= 1),
          "the call reached WeChat"
        )
        yield* Effect.fork(replica.kill("SIGTERM"))
        yield* eventually(
          Effect.sync(() => replica.output().includes("shutting down: no longer accepting connections")),
          "the drain began",
          EXIT_WITHIN
        )

        const status = yield* stop(replica, second)

        expect(status).toEqual({ code: null, signal: second })
      }).pipe(Effect.scoped), 300_000)
  }
})
