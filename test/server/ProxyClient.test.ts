/**
 * `WeChatClient` in proxy mode against the real server and emulator: a
 * business server with only a client key calls WeChat, and never sees a token.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as RemoteTokenLayer from "../../src/client/RemoteTokenLayer.js"
import * as WeChatClient from "../../src/WeChatClient.js"
import { AGENT, APP, CORP, KEY, startProxyStack } from "./ProxyStack.js"

const Sent = Schema.Struct({ errcode: Schema.Literal(0), errmsg: Schema.String })
const send = (body: unknown): WeChatClient.ApiRequest => ({
  method: "POST",
  path: "/cgi-bin/message/custom/send",
  query: { lang: "zh_CN" },
  body
})
const MESSAGE = { touser: "oOPENID", msgtype: "text", text: { content: "hi" } }

const clientOf = (url: string, key: string = KEY) =>
  Effect.provide(
    WeChatClient.WeChatClient,
    WeChatClient.layerProxy({ baseUrl: url, clientKey: Redacted.make(key) }).pipe(Layer.provide(FetchHttpClient.layer))
  )

describe("WeChatClient in proxy mode", () => {
  it.live("calls WeChat through the server with only a client key; a token killed meanwhile is recovered server-side", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack()
      const client = yield* clientOf(base)
      expect(yield* client.call(APP, send(MESSAGE), Sent)).toEqual({ errcode: 0, errmsg: "ok" })
      yield* emulator.killTokens(APP)
      expect(yield* client.call(APP, send(MESSAGE), Sent)).toEqual({ errcode: 0, errmsg: "ok" })
      const calls = yield* emulator.apis.calls
      const current = (yield* engine.get(APP)).value
      expect(calls.map((seen) => [seen.errcode, seen.query])).toEqual([
        [0, { lang: "zh_CN" }],
        [40001, { lang: "zh_CN" }],
        [0, { lang: "zh_CN" }]
      ])
      expect(calls[2]?.token).toBe(current)
    }).pipe(Effect.scoped))

  it.live("a WeChat errcode fails with its typed error; a refusal of the server names its code", () =>
    Effect.gen(function*() {
      const { base } = yield* startProxyStack()
      const client = yield* clientOf(base)
      const rejected = yield* Effect.flip(client.call(APP, send([1, 2]), Sent))
      expect(rejected).toMatchObject({ _tag: "WeChatApiError", errcode: 47001 })
      const refused = yield* Effect.flip(
        client.call(APP, { method: "GET", path: "/cgi-bin/token", query: { grant_type: "client_credential" } }, Sent)
      )
      expect(refused._tag).toBe("UpstreamUnavailable")
      expect(refused.message).toContain("HTTP 403 path_not_allowed")
      const wrongKey = yield* clientOf(base, "not-the-key-0123456789")
      const unauthorized = yield* Effect.flip(wrongKey.call(APP, send(MESSAGE), Sent))
      expect(unauthorized.message).toContain("HTTP 401 unauthorized")
    }).pipe(Effect.scoped))

  it.live("RemoteTokenLayer.proxyClient: plain requests for api.weixin.qq.com go through the proxy, token added there", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack()
      const http = yield* Effect.provide(
        HttpClient.HttpClient,
        RemoteTokenLayer.layerProxyClient({ baseUrl: base, clientKey: Redacted.make(KEY), owner: APP }).pipe(
          Layer.provide(FetchHttpClient.layer)
        )
      )
      const response = yield* http.execute(
        HttpClientRequest.post("https://api.weixin.qq.com/cgi-bin/message/custom/send?lang=zh_CN").pipe(
          HttpClientRequest.setUrlParam("tag", "x"),
          HttpClientRequest.bodyUnsafeJson(MESSAGE)
        )
      )
      expect(response.status).toBe(200)
      expect(yield* response.json).toEqual({ errcode: 0, errmsg: "ok" })
      const [seen] = yield* emulator.apis.calls
      expect(seen).toMatchObject({
        path: "/cgi-bin/message/custom/send",
        token: (yield* engine.get(APP)).value,
        query: { lang: "zh_CN", tag: "x" }
      })
      const weCom = yield* Effect.provide(
        HttpClient.HttpClient,
        RemoteTokenLayer.layerProxyClient({ baseUrl: base, clientKey: Redacted.make(KEY), owner: `${CORP}/${AGENT}` })
          .pipe(Layer.provide(FetchHttpClient.layer))
      )
      const sent = yield* weCom.execute(
        HttpClientRequest.post("https://qyapi.weixin.qq.com/cgi-bin/message/send").pipe(
          HttpClientRequest.bodyUnsafeJson({ touser: "@all" })
        )
      )
      expect(yield* sent.json).toEqual({ errcode: 0, errmsg: "ok" })
      expect((yield* emulator.apis.calls)[1]?.owner).toBe(`${CORP}/${AGENT}`)
    }).pipe(Effect.scoped))
})
