import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, FastCheck, Fiber, Layer, Schema, TestClock } from "effect"
import * as WeChatApi from "../../../src/families/officialAccount/WeChatApi.js"
import { decodeBody } from "../../../src/families/officialAccount/WeChatApi.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../../src/TokenConfig.js"

const Success = Schema.Struct({ access_token: Schema.String, expires_in: Schema.Number })
const decode = decodeBody(Success)
const context = { appId: "wx0123456789abcdef", site: "api-call" } as const

describe("WeChatApi.decodeBody", () => {
  it.effect("decodes a success body", () =>
    Effect.gen(function*() {
      const body = yield* decode({ access_token: "T", expires_in: 7200 }, context)
      expect(body).toEqual({ access_token: "T", expires_in: 7200 })
    }))

  it.effect("an errcode wins over anything else in the body", () =>
    Effect.gen(function*() {
      const result = yield* decode(
        { errcode: 40014, errmsg: "invalid access_token", access_token: "T", expires_in: 1 },
        context
      ).pipe(Effect.flip)
      expect(result._tag).toBe("InvalidCredential")
    }))

  it.effect("a body that matches neither shape is a typed malformed-body error", () =>
    Effect.gen(function*() {
      const result = yield* decode({ access_token: 123 }, context).pipe(Effect.flip)
      expect(result).toMatchObject({
        _tag: "UpstreamUnavailable",
        reason: "malformed-body"
      })
    }))

  it.effect("arbitrary JSON never crashes decoding: success or a typed error", () =>
    Effect.gen(function*() {
      const samples = FastCheck.sample(FastCheck.jsonValue(), 500)
      for (const body of samples) {
        const exit = yield* decode(body, context).pipe(Effect.exit)
        const ok = exit._tag === "Success" ||
          (exit.cause._tag === "Fail" && typeof exit.cause.error._tag === "string")
        expect(ok).toBe(true)
      }
    }))
})

describe("WeChatApi layers: only a base URL and a timeout, no app configuration", () => {
  const APP = "wx0123456789abcdef"
  const SECRET = "emulated-secret"
  const app = TokenConfig.app(APP, SECRET)
  const withEmulator = <A, E, E2>(
    api: Layer.Layer<WeChatApi.WeChatApi, E2, HttpClient.HttpClient>,
    body: Effect.Effect<A, E, WeChatApi.WeChatApi | Emulator.WeChatEmulator>
  ) =>
    body.pipe(
      Effect.provide(api.pipe(Layer.provide(Emulator.layerClient))),
      Effect.provide(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] }))
    )

  it.scoped("layer({ baseUrl }) fetches from that base URL; a trailing slash is ignored", () =>
    withEmulator(
      WeChatApi.layer({ baseUrl: "http://wechat.test/" }),
      Effect.gen(function*() {
        const api = yield* WeChatApi.WeChatApi
        const issued = yield* api.fetchAccessToken(app, "classic", { forceRefresh: false })
        const emulator = yield* Emulator.WeChatEmulator
        expect(yield* emulator.isValidToken(issued.value)).toBe(true)
        expect(issued.expiresInSeconds).toBe(7200)
      })
    ))

  it.scoped("layer({ timeout }) gives up on a slow answer with a typed timeout", () =>
    withEmulator(
      WeChatApi.layer({ baseUrl: "http://wechat.test", timeout: Duration.seconds(1) }),
      Effect.gen(function*() {
        const emulator = yield* Emulator.WeChatEmulator
        yield* emulator.injectFault({ fault: Emulator.Fault.Slow(Duration.seconds(2)) })
        const api = yield* WeChatApi.WeChatApi
        const pending = yield* Effect.fork(Effect.flip(api.fetchAccessToken(app, "classic", { forceRefresh: false })))
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* Fiber.join(pending)).toMatchObject({ _tag: "UpstreamUnavailable", reason: "timeout" })
      })
    ))

  it.scoped("layerConfig reads its options from Config", () =>
    withEmulator(
      WeChatApi.layerConfig(Config.all({ baseUrl: Config.string("WECHAT_API_BASE_URL") })).pipe(
        Layer.provide(
          Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["WECHAT_API_BASE_URL", "http://wechat.test"]])))
        )
      ),
      Effect.gen(function*() {
        const api = yield* WeChatApi.WeChatApi
        const issued = yield* api.fetchAccessToken(app, "stable", { forceRefresh: false })
        expect(issued.value.length).toBeGreaterThan(0)
      })
    ))
})
