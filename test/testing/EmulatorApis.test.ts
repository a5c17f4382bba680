/**
 * The emulator's business APIs behind the token (`src/testing/internal/apis.ts`),
 * in-process under `TestClock`: token checks as WeChat and WeCom make them,
 * what each call records, and media bytes in and out.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { createHash } from "node:crypto"
import * as Emulator from "../../src/testing/WeChatEmulator.js"

const APP = "wx0123456789abcdef"
const SECRET = "emulated-secret"
const CORP = "ww0123456789abcdef"
const AGENT = "1000002"
const WECOM_SECRET = "wecom-secret"
const BASE = "http://wechat.test"

const emulated = Emulator.layerClient.pipe(
  Layer.provideMerge(Emulator.layer({
    apps: [{ appId: APP, secret: SECRET }],
    corps: [{ corpId: CORP, apps: [{ agent: AGENT, secret: WECOM_SECRET }] }]
  }))
)

const json = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.flatMap(
    HttpClient.HttpClient,
    (client) => Effect.flatMap(client.execute(request), (response) => response.json)
  ).pipe(Effect.orDie)

const weChatToken = Effect.map(
  json(
    HttpClientRequest.get(`${BASE}/cgi-bin/token`).pipe(
      HttpClientRequest.setUrlParams({ grant_type: "client_credential", appid: APP, secret: SECRET })
    )
  ),
  (body) => (body as { readonly access_token: string }).access_token
)
const weComToken = Effect.map(
  json(
    HttpClientRequest.get(`${BASE}/cgi-bin/gettoken`).pipe(
      HttpClientRequest.setUrlParams({ corpid: CORP, corpsecret: WECOM_SECRET })
    )
  ),
  (body) => (body as { readonly access_token: string }).access_token
)

const customSend = (token: string | undefined, body: unknown = { touser: "o", msgtype: "text" }) =>
  json(
    HttpClientRequest.post(`${BASE}/cgi-bin/message/custom/send`).pipe(
      HttpClientRequest.setUrlParams(token === undefined ? { lang: "en" } : { lang: "en", access_token: token }),
      HttpClientRequest.bodyUnsafeJson(body)
    )
  )

const errcodeOf = (body: unknown) => (body as { readonly errcode?: number }).errcode

describe("Emulator business APIs", () => {
  it.effect("the JSON API checks the token as WeChat does and records what it saw", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const token = yield* weChatToken
      expect(yield* customSend(token)).toEqual({ errcode: 0, errmsg: "ok" })
      expect(errcodeOf(yield* customSend(undefined))).toBe(41001)
      expect(errcodeOf(yield* customSend("not-a-token"))).toBe(40001)
      expect(errcodeOf(yield* customSend(token, [1]))).toBe(47001)
      // A WeCom token is not a WeChat one.
      expect(errcodeOf(yield* customSend(yield* weComToken))).toBe(40001)
      yield* TestClock.adjust("7201 seconds")
      expect(errcodeOf(yield* customSend(token))).toBe(42001)
      const calls = yield* emulator.apis.calls
      const body = JSON.stringify({ touser: "o", msgtype: "text" })
      expect(calls[0]).toEqual({
        method: "POST",
        path: "/cgi-bin/message/custom/send",
        token,
        owner: APP,
        query: { lang: "en" },
        contentType: "application/json",
        bodyBytes: Buffer.byteLength(body),
        bodySha256: createHash("sha256").update(body).digest("hex"),
        errcode: 0
      })
      expect(calls.map((call) => [call.owner, call.errcode])).toEqual([
        [APP, 0],
        [undefined, 41001],
        [undefined, 40001],
        [APP, 47001],
        [undefined, 40001],
        [undefined, 42001]
      ])
      yield* emulator.apis.resetCalls
      expect(yield* emulator.apis.calls).toEqual([])
    }).pipe(Effect.provide(emulated)))

  it.effect("media: a multipart upload with either host's token is hashed and answered; a seeded file downloads byte for byte", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const client = yield* HttpClient.HttpClient
      const file = new Uint8Array(100_000).map((_, index) => index % 251)
      const form = new FormData()
      form.append("media", new Blob([file], { type: "image/jpeg" }), "a.jpg")
      for (const [token, owner] of [[yield* weChatToken, APP], [yield* weComToken, `${CORP}/${AGENT}`]] as const) {
        const uploaded = yield* Effect.flatMap(
          client.execute(
            HttpClientRequest.post(`${BASE}/cgi-bin/media/upload`).pipe(
              HttpClientRequest.setUrlParams({ type: "image", access_token: token }),
              HttpClientRequest.bodyFormData(form)
            )
          ),
          (response) => response.json
        )
        expect(uploaded).toMatchObject({ type: "image", media_id: expect.any(String) })
        expect((yield* emulator.apis.calls).at(-1)).toMatchObject({ owner, errcode: 0 })
      }
      const wrongType = yield* json(
        HttpClientRequest.post(`${BASE}/cgi-bin/media/upload`).pipe(
          HttpClientRequest.setUrlParams({ type: "pdf", access_token: yield* weChatToken }),
          HttpClientRequest.bodyFormData(form)
        )
      )
      expect(errcodeOf(wrongType)).toBe(40004)
      const mediaId = yield* emulator.apis.seedMedia(200_000)
      const downloaded = yield* Effect.flatMap(
        client.execute(
          HttpClientRequest.get(`${BASE}/cgi-bin/media/get`).pipe(
            HttpClientRequest.setUrlParams({ media_id: mediaId, access_token: yield* weChatToken })
          )
        ),
        (response) =>
          Effect.map(response.arrayBuffer, (bytes) => ({
            type: response.headers["content-type"],
            disposition: response.headers["content-disposition"],
            bytes: new Uint8Array(bytes)
          }))
      )
      expect(downloaded.type).toBe("image/jpeg")
      expect(downloaded.disposition).toBe(`attachment; filename="${mediaId}.jpg"`)
      expect(downloaded.bytes).toEqual(new Uint8Array(200_000).map((_, index) => Emulator.mediaByte(index)))
      const unknown = yield* json(
        HttpClientRequest.get(`${BASE}/cgi-bin/media/get`).pipe(
          HttpClientRequest.setUrlParams({ media_id: "nope", access_token: yield* weChatToken })
        )
      )
      expect(errcodeOf(unknown)).toBe(40007)
    }).pipe(Effect.provide(emulated)))
})
