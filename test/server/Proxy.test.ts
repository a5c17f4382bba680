/**
 * The proxy over loopback: callers → token server → emulator, as deployed.
 * What the emulator saw is the evidence: the token, query and body that
 * arrived, and which calls never arrived at all.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Schedule } from "effect"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { createServer } from "node:http"
import { connect } from "node:net"
import type { AddressInfo } from "node:net"
import { call, opsAuth, send } from "../support/serverStack.js"
import {
  AGENT,
  APP,
  appUrl,
  auth,
  CORP,
  OTHER,
  rawUpstream,
  SCOPED_KEY,
  startProxyStack,
  weComUrl
} from "./ProxyStack.js"

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")

const scrape = (base: string) => Effect.map(call(`${base}/metrics`, { headers: opsAuth() }), (answer) => answer.text)

/** The value of the series of `name` whose labels contain every one of `having`, summed. */
const sample = (text: string, name: string, ...having: ReadonlyArray<string>): number =>
  text.split("\n")
    .filter((line) => line.startsWith(`${name}{`) && having.every((label) => line.includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)

/** A port nothing listens on. */
const closedPort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const postJson = (url: string, body: unknown, key?: string) =>
  call(url, {
    method: "POST",
    headers: { ...auth(key), "content-type": "application/json" },
    body: JSON.stringify(body)
  })

const MESSAGE = { touser: "oOPENID", msgtype: "text", text: { content: "你好, proxy" } }

describe("Proxy", () => {
  it.live("a JSON API through the proxy: WeChat saw the current token, the caller's body and query intact", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack()
      const body = JSON.stringify(MESSAGE)
      const answer = yield* call(appUrl(base, "cgi-bin/message/custom/send?lang=zh_CN&tag=a%20b%26c"), {
        method: "POST",
        headers: {
          ...auth(),
          "content-type": "application/json",
          cookie: "session=secret",
          "x-forwarded-for": "1.2.3.4"
        },
        body
      })
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ errcode: 0, errmsg: "ok" })
      expect(answer.headers.get("content-type")).toBe("application/json; encoding=utf-8")
      expect(answer.headers.get("cache-control")).toBe("no-store")
      const current = yield* engine.get(APP)
      const calls = yield* emulator.apis.calls
      expect(calls).toEqual([{
        method: "POST",
        path: "/cgi-bin/message/custom/send",
        token: current.value,
        owner: APP,
        query: { lang: "zh_CN", tag: "a b&c" },
        contentType: "application/json",
        bodyBytes: Buffer.byteLength(body),
        bodySha256: sha256(body),
        errcode: 0
      }])
    }).pipe(Effect.scoped))

  it.live("the WeCom route forwards with the app's own WeCom token", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack()
      const answer = yield* postJson(weComUrl(base, "cgi-bin/message/send"), { touser: "@all", msgtype: "text" })
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ errcode: 0, errmsg: "ok" })
      const [seen] = yield* emulator.apis.calls
      expect(seen?.owner).toBe(`${CORP}/${AGENT}`)
      expect(yield* emulator.wecom.isValidToken(seen!.token!, `${CORP}/${AGENT}`)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a token killed upstream: the caller gets success; WeChat saw one refresh and one replay with the new token", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack()
      const old = yield* engine.get(APP)
      const fetchesBefore = (yield* emulator.appStats(APP)).classicCalls
      const metricsBefore = yield* scrape(base)
      yield* emulator.killTokens(APP)
      const answer = yield* postJson(appUrl(base, "cgi-bin/message/custom/send"), MESSAGE)
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ errcode: 0, errmsg: "ok" })
      const calls = yield* emulator.apis.calls
      const fresh = yield* engine.get(APP)
      expect(fresh.value).not.toBe(old.value)
      expect(calls.map((seen) => [seen.token, seen.errcode, seen.bodySha256])).toEqual([
        [old.value, 40001, sha256(JSON.stringify(MESSAGE))],
        [fresh.value, 0, sha256(JSON.stringify(MESSAGE))]
      ])
      expect((yield* emulator.appStats(APP)).classicCalls - fetchesBefore).toBe(1)
      const metricsAfter = yield* scrape(base)
      const replays = (text: string) =>
        sample(text, "wechat_proxy_replays_total", `app="${APP}"`, `prefix="cgi-bin/message"`)
      expect(replays(metricsAfter) - replays(metricsBefore)).toBe(1)
    }).pipe(Effect.scoped))

  it.live(
    "200 concurrent calls on the same dead token: every caller gets success, after one refresh",
    () =>
      Effect.gen(function*() {
        const { base, emulator, engine } = yield* startProxyStack()
        const old = yield* engine.get(APP)
        const fetchesBefore = (yield* emulator.appStats(APP)).classicCalls
        yield* emulator.killTokens(APP)
        const answers = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, index) => index),
          (index) => postJson(appUrl(base, `cgi-bin/message/custom/send?n=${index}`), MESSAGE),
          { concurrency: "unbounded" }
        )
        expect(answers.filter((answer) => answer.status !== 200 || answer.json?.errcode !== 0)).toEqual([])
        expect((yield* emulator.appStats(APP)).classicCalls - fetchesBefore).toBe(1)
        const fresh = yield* engine.get(APP)
        const calls = yield* emulator.apis.calls
        // Each call arrived with the dead token at most once and succeeded once, with the new token.
        expect(calls.filter((seen) => seen.errcode === 0).map((seen) => seen.token)).toEqual(
          Array.from({ length: 200 }, () => fresh.value)
        )
        expect(calls.filter((seen) => seen.errcode !== 0).every((seen) => seen.token === old.value)).toBe(true)
        expect(new Set(calls.filter((seen) => seen.errcode === 0).map((seen) => seen.query["n"])).size).toBe(200)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("paths that mint or reset credentials are refused in every spelling, and nothing is forwarded", () =>
    Effect.gen(function*() {
      // Every request that reaches the upstream is counted: a refusal must leave it at zero.
      const seen: Array<string> = []
      const upstream = yield* rawUpstream((request, response) => {
        seen.push(request.url ?? "")
        response.setHeader("content-type", "application/json")
        response.end(`{"errcode":0,"errmsg":"ok"}`)
      })
      const { emulator, engine, port } = yield* startProxyStack({ upstreamUrl: upstream.url })
      yield* engine.get(APP)
      const statsBefore = yield* emulator.appStats(APP)
      // 403: a spelling of a refused path, however a server in front of WeChat might fold it.
      const notAllowed = [
        "cgi-bin/token?grant_type=client_credential",
        "CGI-BIN/Token",
        "cgi-bin/%74oken",
        "cgi-bin/%2e/token",
        "cgi-bin/./token",
        "cgi-bin/message/../token",
        "cgi-bin/message/%2e%2e/token",
        "cgi-bin//token",
        "cgi-bin/token/",
        "cgi-bin/token.",
        "cgi-bin/token..",
        "cgi-bin/token%2e",
        "cgi-bin/Token.",
        "cgi-bin/token~",
        "cgi-bin/token%7e",
        "cgi-bin/token~1",
        "cgi-bin/token;jsessionid=x",
        "cgi-bin/token.json",
        "cgi-bin/token%20",
        "cgi-bin/token%00",
        "cgi-bin/token%09",
        "cgi-bin./token",
        "cgi-bin~/token",
        "cgi-bin/stable_token",
        "cgi-bin/stable_token.",
        "cgi-bin/STABLE_TOKEN~",
        "cgi-bin/gettoken",
        "cgi-bin/gettoken.",
        "cgi-bin/gettoken~",
        "cgi-bin/ticket/getticket?type=jsapi",
        "cgi-bin/ticket./getticket?type=jsapi",
        "cgi-bin/ticket~/getticket",
        "cgi-bin/Ticket./GetTicket",
        "cgi-bin/ticket/get",
        "cgi-bin/get_jsapi_ticket",
        "cgi-bin/get_jsapi_ticket.",
        "cgi-bin/component/api_component_token",
        "cgi-bin/component./api_component_token",
        "cgi-bin/component~/api_authorizer_token",
        "cgi-bin/component",
        "cgi-bin/component.",
        "cgi-bin/clear_quota",
        "cgi-bin/clear_quota.",
        "cgi-bin/clear_quota/v2",
        "cgi-bin/clear_quota_by_app_secret"
      ]
      // 400: an escape some servers read as a separator or as a second layer, or no plain reading at all.
      const invalid = [
        "cgi-bin%2ftoken",
        "cgi-bin%2Ftoken",
        "cgi-bin%2fstable_token.",
        "cgi-bin/%2574oken",
        "cgi-bin/token%252e",
        "cgi-bin%252ftoken",
        "cgi-bin%5ctoken",
        "..%2f..%2fcgi-bin/token",
        "../cgi-bin/token",
        "cgi-bin/%252e%252e/token",
        "cgi-bin\\token",
        "cgi-bin/%ZZ",
        "cgi-bin/token%",
        "cgi-bin/t%00oken",
        "cgi-bin/STABLE~1",
        "cgi-bin/%E4%BD%A0"
      ]
      for (
        const [rest, status, code] of [
          ...notAllowed.map((rest) => [rest, 403, "path_not_allowed"] as const),
          ...invalid.map((rest) => [rest, 400, "invalid_path"] as const)
        ]
      ) {
        for (const method of ["GET", "POST"]) {
          const answer = yield* send(port, {
            method,
            path: `/v1/apps/${APP}/wechat/${rest}`,
            headers: auth(),
            ...(method === "POST" ? { body: "{}" } : {})
          })
          expect({ rest, method, status: answer.status, code: JSON.parse(answer.text).error?.code }).toEqual({
            rest,
            method,
            status,
            code
          })
        }
      }
      expect(seen).toEqual([])
      expect(yield* emulator.appStats(APP)).toEqual(statsBefore)
      // The counter counts: a plain path reaches the upstream, spelled as checked.
      const plain = yield* send(port, { path: `/v1/apps/${APP}/wechat/cgi-bin//user/./info?openid=x`, headers: auth() })
      expect(plain.status).toBe(200)
      expect(seen.map((url) => url.split("?")[0])).toEqual(["/cgi-bin/user/info"])
    }).pipe(Effect.scoped))

  it.live("a caller-supplied access_token is refused with 400, nothing forwarded", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack()
      const token = (yield* engine.get(APP)).value
      for (
        const query of [
          `access_token=${token}`,
          "access_token=",
          "x=1&access_token=mine",
          "access%5Ftoken=mine",
          "ACCESS_TOKEN=mine",
          "Access_Token=mine",
          "x=1&aCcEsS_tOkEn=mine",
          "ACCESS%5FTOKEN=mine",
          "access%255Ftoken=mine",
          "access_token%5B%5D=mine",
          "access_token%00=mine",
          "access_token",
          "access_token.=mine"
        ]
      ) {
        const answer = yield* postJson(appUrl(base, `cgi-bin/message/custom/send?${query}`), MESSAGE)
        expect({ query, status: answer.status, code: answer.json?.error?.code }).toEqual({
          query,
          status: 400,
          code: "access_token_not_allowed"
        })
      }
      expect(yield* emulator.apis.calls).toEqual([])
    }).pipe(Effect.scoped))

  it.live("PROXY_ALLOW narrows the paths forwarded, segment by segment", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ allow: ["cgi-bin/media"] })
      const outside = yield* postJson(appUrl(base, "cgi-bin/message/custom/send"), MESSAGE)
      expect([outside.status, outside.json?.error?.code]).toEqual([403, "path_not_allowed"])
      const neighbour = yield* call(appUrl(base, "cgi-bin/media_other/get"), { headers: auth() })
      expect(neighbour.status).toBe(403)
      expect(yield* emulator.apis.calls).toEqual([])
      const mediaId = yield* emulator.apis.seedMedia(10)
      const inside = yield* call(appUrl(base, `cgi-bin/media/get?media_id=${mediaId}`), { headers: auth() })
      expect(inside.status).toBe(200)
      expect((yield* emulator.apis.calls).length).toBe(1)
    }).pipe(Effect.scoped))

  it.live("client keys: none or a wrong one is 401, a key scoped to another app and an unknown app are 404", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack()
      const url = appUrl(base, "cgi-bin/message/custom/send")
      const none = yield* call(url, { method: "POST", body: "{}" })
      expect([none.status, none.json?.error?.code, none.headers.get("www-authenticate")]).toEqual([
        401,
        "unauthorized",
        "Bearer"
      ])
      const wrong = yield* postJson(url, MESSAGE, "not-a-key-0123456789")
      expect(wrong.status).toBe(401)
      const scoped = yield* postJson(url, MESSAGE, SCOPED_KEY)
      expect([scoped.status, scoped.json?.error?.code]).toEqual([404, "unknown_app"])
      const allowed = yield* postJson(appUrl(base, "cgi-bin/message/custom/send", OTHER), MESSAGE, SCOPED_KEY)
      expect(allowed.status).toBe(200)
      const unknown = yield* postJson(appUrl(base, "cgi-bin/message/custom/send", "wx00112233445566ff"), MESSAGE)
      expect([unknown.status, unknown.json?.error?.code]).toEqual([404, "unknown_app"])
      const wecom = yield* postJson(`${base}/v1/wecom/${CORP}/agents/9999/wechat/cgi-bin/message/send`, MESSAGE)
      expect(wecom.status).toBe(404)
      expect((yield* emulator.apis.calls).map((seen) => seen.owner)).toEqual([OTHER])
    }).pipe(Effect.scoped))

  it.live("the token never reaches the answer, the logs or the metrics, even when WeChat echoes it", () =>
    Effect.gen(function*() {
      // WeChat sometimes repeats request details in errmsg: this upstream repeats the whole URL.
      const echo = yield* rawUpstream((request, response) => {
        response.setHeader("content-type", "application/json; encoding=utf-8")
        response.end(JSON.stringify({ errcode: 40003, errmsg: `invalid openid, request ${request.url} rid: 1-2-3` }))
      })
      const lines: Array<string> = []
      const logger = Logger.make(({ annotations, message }) => {
        lines.push(JSON.stringify({ message, annotations: Object.fromEntries(annotations) }))
      })
      const { base, engine } = yield* startProxyStack({ upstreamUrl: echo.url, logger })
      const token = (yield* engine.get(APP)).value
      const answer = yield* postJson(appUrl(base, "cgi-bin/user/info?openid=x"), {})
      expect(answer.status).toBe(200)
      expect(answer.json.errcode).toBe(40003)
      expect(answer.json.errmsg).toContain("access_token=***")
      expect(answer.text).not.toContain(token)
      // An upstream failure is logged: with the app and path prefix, never the URL.
      const down = yield* startProxyStack({ upstreamUrl: `http://127.0.0.1:${yield* closedPort}`, logger })
      const downToken = (yield* down.engine.get(APP)).value
      const failed = yield* postJson(appUrl(down.base, "cgi-bin/user/info?openid=x"), {})
      expect(failed.status).toBe(502)
      expect(failed.text).not.toContain(downToken)
      expect(lines.some((line) => line.includes("no answer from WeChat"))).toBe(true)
      for (const secret of [token, downToken]) {
        expect(lines.filter((line) => line.includes(secret))).toEqual([])
        expect(yield* scrape(base)).not.toContain(secret)
      }
    }).pipe(Effect.scoped))

  it.live("answers without a length: a small one is read whole (scrubbed), a large one streams through intact", () =>
    Effect.gen(function*() {
      const large = JSON.stringify({ errcode: 0, data: "x".repeat(200 * 1024) })
      const chunked = yield* rawUpstream((request, response) => {
        response.setHeader("content-type", "application/json")
        if (request.url?.startsWith("/cgi-bin/large") === true) {
          response.write(large.slice(0, 1000))
          response.end(large.slice(1000))
          return
        }
        // Two writes: Node sends them chunked, with no Content-Length.
        response.write(`{"errcode":40003,"errmsg":"invalid openid, `)
        response.end(`request ${request.url} rid: 1-2-3"}`)
      })
      const { base, engine } = yield* startProxyStack({ upstreamUrl: chunked.url })
      const token = (yield* engine.get(APP)).value
      const small = yield* call(appUrl(base, "cgi-bin/user/info?openid=x"), { headers: auth() })
      expect(small.json.errcode).toBe(40003)
      expect(small.text).not.toContain(token)
      expect(small.json.errmsg).toContain("access_token=***")
      const big = yield* call(appUrl(base, "cgi-bin/large/list"), { headers: auth() })
      expect(big.status).toBe(200)
      expect(big.text).toBe(large)
    }).pipe(Effect.scoped))

  it.live("upstream connections are kept alive and reused, whatever the answer: inspected, streamed, or HEAD", () =>
    Effect.gen(function*() {
      let connections = 0
      const upstream = yield* rawUpstream((request, response) => {
        if (request.url?.startsWith("/cgi-bin/media/get") === true) {
          response.setHeader("content-type", "image/jpeg")
          response.end(Buffer.alloc(128 * 1024, 1))
          return
        }
        // With its length, as WeChat sends it: Node closes a HEAD answer's connection without one.
        const json = `{"errcode":0,"errmsg":"ok"}`
        response.setHeader("content-type", "application/json")
        response.setHeader("content-length", json.length)
        response.end(json)
      })
      upstream.server.on("connection", () => connections++)
      const { base } = yield* startProxyStack({ upstreamUrl: upstream.url })
      // One at a time: each call may reuse the connection the one before left in the pool.
      for (let i = 0; i < 20; i++) {
        expect((yield* postJson(appUrl(base, "cgi-bin/message/custom/send"), MESSAGE)).status).toBe(200)
        const media = yield* call(appUrl(base, "cgi-bin/media/get?media_id=m"), { headers: auth() })
        expect([media.status, media.text.length]).toEqual([200, 128 * 1024])
        const head = yield* call(appUrl(base, "cgi-bin/message/custom/send"), { method: "HEAD", headers: auth() })
        expect(head.status).toBe(200)
      }
      // A HEAD answer never read would hold its connection, and each call after it would open another.
      expect(connections).toBeLessThanOrEqual(2)
    }).pipe(Effect.scoped))

  it.live("WeChat unreachable is 502, WeChat too slow is 504, both in the JSON error shape", () =>
    Effect.gen(function*() {
      const down = yield* startProxyStack({ upstreamUrl: `http://127.0.0.1:${yield* closedPort}` })
      const unreachable = yield* postJson(appUrl(down.base, "cgi-bin/message/custom/send"), MESSAGE)
      expect([unreachable.status, unreachable.json?.error?.code]).toEqual([502, "upstream_unreachable"])
      // Accepts the call and never answers.
      const silent = yield* rawUpstream(() => undefined)
      const slow = yield* startProxyStack({ upstreamUrl: silent.url, upstreamTimeout: "300 millis" })
      const started = performance.now()
      const timedOut = yield* postJson(appUrl(slow.base, "cgi-bin/message/custom/send"), MESSAGE)
      expect([timedOut.status, timedOut.json?.error?.code]).toEqual([504, "upstream_timeout"])
      expect(performance.now() - started).toBeLessThan(5_000)
    }).pipe(Effect.scoped))

  it.live("bodies over PROXY_MAX_BODY_BYTES get 413, declared or streamed, and the request does not stay", () =>
    Effect.gen(function*() {
      const { base, emulator, port } = yield* startProxyStack({ maxBodyBytes: 64 * 1024, replayBodyBytes: 1024 })
      const declared = yield* send(port, {
        method: "POST",
        path: `/v1/apps/${APP}/wechat/cgi-bin/message/custom/send`,
        headers: { ...auth(), "content-type": "application/json" },
        body: "x".repeat(64 * 1024 + 1)
      })
      expect([declared.status, JSON.parse(declared.text).error.code]).toEqual([413, "payload_too_large"])
      expect(yield* emulator.apis.calls).toEqual([])
      // No length: streamed, and cut once it crosses the limit.
      const streamed = yield* call(appUrl(base, "cgi-bin/media/upload?type=image"), {
        method: "POST",
        headers: { ...auth(), "content-type": "multipart/form-data; boundary=x" },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < 32; i++) controller.enqueue(new Uint8Array(8 * 1024))
            controller.close()
          }
        }),
        duplex: "half"
      } as RequestInit)
      expect(streamed.status).toBe(413)
      const metrics = yield* scrape(base)
      expect(sample(metrics, "wechat_proxy_refusals_total", `app="${APP}"`, `reason="payload_too_large"`)).toBe(2)
    }).pipe(Effect.scoped))

  it.live("upstream calls per app are bounded; the others wait their turn and all get answered", () =>
    Effect.gen(function*() {
      let inFlight = 0
      let peak = 0
      const slow = yield* rawUpstream((_request, response) => {
        inFlight++
        peak = Math.max(peak, inFlight)
        setTimeout(() => {
          inFlight--
          response.setHeader("content-type", "application/json")
          response.end(`{"errcode":0,"errmsg":"ok"}`)
        }, 50)
      })
      const { base } = yield* startProxyStack({ upstreamUrl: slow.url, maxConcurrentPerOwner: 3 })
      const answers = yield* Effect.forEach(
        Array.from({ length: 12 }),
        () => postJson(appUrl(base, "cgi-bin/message/custom/send"), MESSAGE),
        { concurrency: "unbounded" }
      )
      expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 12 }, () => 200))
      expect(peak).toBe(3)
    }).pipe(Effect.scoped))

  it.live(
    "a caller hanging up mid-upload or trickling its body leaves no request behind",
    () =>
      Effect.gen(function*() {
        const { base, port } = yield* startProxyStack({ requestTimeout: "1 second" })
        const inFlight = Effect.map(
          scrape(base),
          (text) => Number(/^wechat_token_server_requests_in_flight (\d+)/m.exec(text)?.[1] ?? "NaN")
        )
        const resting = yield* inFlight
        // Declares 4 MB, sends 256 KB, hangs up.
        yield* Effect.async<void>((resume) => {
          const socket = connect(port, "127.0.0.1", () => {
            socket.write(
              `POST /v1/apps/${APP}/wechat/cgi-bin/media/upload?type=image HTTP/1.1\r\nHost: x\r\n` +
                `Authorization: Bearer ${auth().authorization.slice(7)}\r\n` +
                `Content-Type: multipart/form-data; boundary=x\r\nContent-Length: ${4 * 1024 * 1024}\r\n\r\n`
            )
            socket.write(Buffer.alloc(256 * 1024))
            setTimeout(() => {
              socket.destroy()
              resume(Effect.void)
            }, 200)
          })
        })
        // Sends its headers and then one byte a quarter second: cut at the request timeout.
        const trickled = yield* Effect.async<string>((resume) => {
          let text = ""
          const socket = connect(port, "127.0.0.1", () => {
            socket.write(
              `POST /v1/apps/${APP}/wechat/cgi-bin/media/upload?type=image HTTP/1.1\r\nHost: x\r\n` +
                `Authorization: Bearer ${auth().authorization.slice(7)}\r\n` +
                `Content-Type: multipart/form-data; boundary=x\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`
            )
          })
          const timer = setInterval(() => socket.writable && socket.write("x"), 250)
          socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")))
          socket.on("error", () => undefined)
          socket.on("close", () => {
            clearInterval(timer)
            resume(Effect.succeed(text.split("\r\n")[0] ?? ""))
          })
        })
        expect(trickled).toBe("HTTP/1.1 408 Request Timeout")
        // A request that stayed would hold the count up forever; the server may take a moment to see a hang-up.
        const settled = yield* inFlight.pipe(
          Effect.filterOrFail((count) => count <= resting),
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }),
          Effect.orElse(() => inFlight)
        )
        expect(settled).toBe(resting)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("metrics: requests, latency and refusals per app and path prefix, the route counted, promtool clean", () =>
    Effect.gen(function*() {
      const { base } = yield* startProxyStack()
      yield* postJson(appUrl(base, "cgi-bin/message/custom/send"), MESSAGE)
      yield* call(appUrl(base, "cgi-bin/token"), { headers: auth() })
      const text = yield* scrape(base)
      const labels = [`app="${APP}"`, `prefix="cgi-bin/message"`]
      expect(sample(text, "wechat_proxy_requests_total", ...labels, `status="200"`)).toBeGreaterThanOrEqual(1)
      expect(sample(text, "wechat_proxy_upstream_latency_seconds_count", ...labels)).toBeGreaterThanOrEqual(1)
      expect(sample(text, "wechat_proxy_refusals_total", `app="${APP}"`, `reason="path_not_allowed"`))
        .toBeGreaterThanOrEqual(1)
      expect(
        sample(text, "wechat_token_server_requests_total", `route="/v1/apps/{appId}/wechat/{path}"`, `status="200"`)
      ).toBeGreaterThanOrEqual(1)
      expect(text).not.toMatch(/prefix="cgi-bin\/message\/custom/)
      const check = yield* Effect.async<{ readonly code: number | null; readonly output: string }>((resume) => {
        const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] })
        let output = ""
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
        child.on("error", (error) => resume(Effect.die(error)))
        child.on("close", (code) => resume(Effect.succeed({ code, output })))
        child.stdin.end(text)
      })
      expect(check).toEqual({ code: 0, output: "" })
    }).pipe(Effect.scoped))
})
