/**
 * The token never reaches the caller through WeChat's answer, whatever the
 * answer is: an upstream on loopback echoes the token of the call it got in
 * text, HTML, binary and large JSON answers, in pieces across many writes,
 * in headers, after a replay, and in a compressed answer; the caller, over
 * real HTTP through the proxy, must never see it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { request as httpRequest } from "node:http"
import { gzipSync } from "node:zlib"
import { APP, auth, rawUpstream, startProxyStack } from "./ProxyStack.js"

const KB = 1024

/** The raw bytes and headers of one answer through the proxy. */
const fetchBytes = (port: number, rest: string) =>
  Effect.async<{ readonly status: number; readonly headers: Record<string, unknown>; readonly body: Buffer }>(
    (resume) => {
      const req = httpRequest({
        host: "127.0.0.1",
        port,
        path: `/v1/apps/${APP}/wechat/${rest}`,
        headers: auth(),
        agent: false
      }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on(
          "end",
          () =>
            resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        )
      })
      req.on("error", (error) => resume(Effect.die(error)))
      req.end()
      return Effect.sync(() => req.destroy())
    }
  )

const tokenOf = (url: string | undefined): string => new URL(url ?? "/", "http://x").searchParams.get("access_token")!

/** Bytes that are not text: every byte value, over and over. */
const binary = (size: number) => Buffer.from(Array.from({ length: size }, (_, index) => (index * 7 + 3) & 0xff))

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

describe("Proxy: the token is masked in every answer", () => {
  it.live("text, HTML, binary, JSON over 64 KiB, a token written in pieces, and headers: the caller never sees it", () =>
    Effect.gen(function*() {
      const bodies = new Map<string, Buffer>()
      const upstream = yield* rawUpstream((request, response) => {
        const token = tokenOf(request.url)
        const path = request.url?.split("?")[0] ?? ""
        const send = (type: string, body: Buffer) => {
          bodies.set(path, body)
          response.setHeader("content-type", type)
          response.setHeader("content-length", body.length)
          response.end(body)
        }
        switch (path) {
          case "/text":
            return send("text/plain", Buffer.from(`you called ${request.url}`))
          case "/html":
            return send(
              "text/html; charset=utf-8",
              Buffer.from(
                `<html><body>${"<p>x</p>".repeat(20 * KB)}<a href="${request.url}">${token}</a></body></html>`
              )
            )
          case "/binary":
            return send(
              "application/octet-stream",
              Buffer.concat([Buffer.from(token), binary(100 * KB), Buffer.from(token), binary(3), Buffer.from(token)])
            )
          case "/json":
            return send(
              "application/json",
              Buffer.from(JSON.stringify({ errcode: 0, list: "x".repeat(80 * KB), rid: `request ${request.url}` }))
            )
          case "/pieces": {
            // Chunked, the token one byte a write with pauses between: it crosses every chunk boundary there is.
            response.setHeader("content-type", "image/jpeg")
            const whole = Buffer.concat([binary(70 * KB), Buffer.from(token), binary(KB)])
            bodies.set(path, whole)
            void (async () => {
              response.write(binary(70 * KB))
              for (const byte of Buffer.from(token)) {
                response.write(Buffer.from([byte]))
                await sleep(1)
              }
              response.end(binary(KB))
            })()
            return
          }
          case "/headers":
            response.setHeader("content-disposition", `attachment; filename="${token}.jpg"`)
            response.setHeader("content-type", `image/jpeg; name=${token}`)
            return void response.end(binary(10))
        }
        response.statusCode = 404
        response.end()
      })
      const { engine, port } = yield* startProxyStack({ upstreamUrl: upstream.url })
      const token = (yield* engine.get(APP)).value
      const mask = "*".repeat(Buffer.byteLength(token))
      const rests = ["text?x=1", "html", "binary", "json", "pieces"]
      const answers = yield* Effect.forEach(rests, (rest) => fetchBytes(port, rest))
      expect(
        answers.map((answer, i) => ({ rest: rests[i], status: answer.status, holdsToken: answer.body.includes(token) }))
      )
        .toEqual(rests.map((rest) => ({ rest, status: 200, holdsToken: false })))
      // The token's bytes masked in place, every other byte as WeChat sent it.
      answers.forEach((answer, i) => {
        const sent = bodies.get(`/${rests[i]!.split("?")[0]}`)!
        expect(answer.body.equals(Buffer.from(sent.toString("latin1").split(token).join(mask), "latin1"))).toBe(true)
      })
      const headers = yield* fetchBytes(port, "headers")
      expect(headers.status).toBe(200)
      expect(JSON.stringify(headers.headers)).not.toContain(token)
      expect(headers.headers["content-disposition"]).toBe(`attachment; filename="${mask}.jpg"`)
    }).pipe(Effect.scoped))

  it.live("after a replay, neither the dead token nor the new one reaches the caller", () =>
    Effect.gen(function*() {
      const urls: Array<string> = []
      const upstream = yield* rawUpstream((request, response) => {
        urls.push(request.url ?? "")
        response.setHeader("content-type", "application/json")
        response.end(
          urls.length === 1
            ? JSON.stringify({ errcode: 40001, errmsg: `invalid credential, request ${request.url}` })
            : JSON.stringify({ errcode: 40003, errmsg: `invalid openid, requests ${urls.join(" then ")}` })
        )
      })
      const { engine, port } = yield* startProxyStack({ upstreamUrl: upstream.url })
      const dead = (yield* engine.get(APP)).value
      const answer = yield* fetchBytes(port, "cgi-bin/user/info?openid=x")
      const fresh = (yield* engine.get(APP)).value
      expect(fresh).not.toBe(dead)
      expect(urls.map(tokenOf)).toEqual([dead, fresh])
      const text = answer.body.toString("utf8")
      expect(JSON.parse(text).errcode).toBe(40003)
      expect([text.includes(dead), text.includes(fresh)]).toEqual([false, false])
    }).pipe(Effect.scoped))

  it.live("the token of an earlier call, as openapi/rid/get returns its query, is masked too", () =>
    Effect.gen(function*() {
      // A token replaced since, which WeChat still honours for 5 minutes.
      const earlier = "85_EarlierTokenEarlierTokenEarlierToken-0123456789_abcdefghijklmnop"
      const upstream = yield* rawUpstream((_request, response) => {
        response.setHeader("content-type", "application/json")
        response.end(JSON.stringify({
          errcode: 0,
          request: { request_url: `access_token=${earlier}&openid=x`, response_body: "{}" }
        }))
      })
      const { port } = yield* startProxyStack({ upstreamUrl: upstream.url })
      const answer = yield* fetchBytes(port, "cgi-bin/openapi/rid/get")
      const json = JSON.parse(answer.body.toString())
      expect(json.request.request_url).toBe(`access_token=${"*".repeat(earlier.length)}&openid=x`)
    }).pipe(Effect.scoped))

  it.live("a compressed answer, which the proxy cannot check, is refused with 502; WeChat is asked for identity", () =>
    Effect.gen(function*() {
      const asked: Array<string | undefined> = []
      const upstream = yield* rawUpstream((request, response) => {
        asked.push(request.headers["accept-encoding"])
        response.setHeader("content-type", "application/json")
        response.setHeader("content-encoding", "gzip")
        response.end(gzipSync(JSON.stringify({ errcode: 40003, errmsg: `request ${request.url}` })))
      })
      const { engine, port } = yield* startProxyStack({ upstreamUrl: upstream.url })
      const token = (yield* engine.get(APP)).value
      const answer = yield* fetchBytes(port, "cgi-bin/user/info?openid=x")
      expect([answer.status, JSON.parse(answer.body.toString()).error.code]).toEqual([502, "upstream_encoding"])
      expect(answer.body.toString()).not.toContain(token)
      expect(asked).toEqual(["identity"])
    }).pipe(Effect.scoped))
})
