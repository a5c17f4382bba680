import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import * as TokenConfig from "../src/TokenConfig.js"

const load = (env: Record<string, string>) =>
  TokenConfig.config.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.either
  )

const A = "wx0123456789abcdef"
const B = "wxfedcba9876543210"

describe("TokenConfig", () => {
  it.effect("reads WECHAT_APPS with redacted secrets and the documented defaults", () =>
    Effect.gen(function*() {
      const config = yield* load({ WECHAT_APPS: `${A}:s1, ${B}:s2:with-colon` }).pipe(Effect.flatten)
      expect(config.apps.map((app) => app.appId)).toEqual([A, B])
      expect(config.apps.map((app) => Redacted.value(app.secret))).toEqual(["s1", "s2:with-colon"])
      expect(String(config.apps[0]!.secret)).not.toContain("s1")
      expect(config.mode).toBe("stable")
      expect(config.apiBaseUrl).toBe("https://api.weixin.qq.com")
      expect(config.refreshMargin).toEqual(TokenConfig.defaults.refreshMargin)
    }))

  it.effect("reads a single app from WECHAT_APP_ID / WECHAT_APP_SECRET", () =>
    Effect.gen(function*() {
      const config = yield* load({ WECHAT_APP_ID: A, WECHAT_APP_SECRET: "s", WECHAT_TOKEN_MODE: "classic" }).pipe(
        Effect.flatten
      )
      expect(config.apps.map((app) => app.appId)).toEqual([A])
      expect(config.mode).toBe("classic")
    }))

  it.effect("no apps configured means demo mode: an empty list", () =>
    Effect.gen(function*() {
      const config = yield* load({}).pipe(Effect.flatten)
      expect(config.apps).toEqual([])
    }))

  const rejects = (env: Record<string, string>, variable: string, secret?: string) =>
    Effect.gen(function*() {
      const result = yield* load(env)
      expect(Either.isLeft(result)).toBe(true)
      const message = String(Either.isLeft(result) ? result.left : "")
      expect(message).toContain(variable)
      if (secret !== undefined) expect(message).not.toContain(secret)
    })

  it.effect("a malformed app id names WECHAT_APPS and never echoes the secret", () =>
    rejects({ WECHAT_APPS: "wx123:topsecret" }, "WECHAT_APPS", "topsecret"))
  it.effect("an entry without a secret names WECHAT_APPS", () => rejects({ WECHAT_APPS: `${A}` }, "WECHAT_APPS"))
  it.effect("a duplicated app names WECHAT_APPS", () => rejects({ WECHAT_APPS: `${A}:x,${A}:y` }, "WECHAT_APPS"))
  it.effect("both forms at once are refused", () =>
    rejects({ WECHAT_APPS: `${A}:x`, WECHAT_APP_ID: B, WECHAT_APP_SECRET: "y" }, "WECHAT_APPS"))
  it.effect("WECHAT_APP_ID without a secret names WECHAT_APP_SECRET", () =>
    rejects({ WECHAT_APP_ID: A }, "WECHAT_APP_SECRET"))
  it.effect("an unknown mode names WECHAT_TOKEN_MODE", () =>
    rejects({ WECHAT_TOKEN_MODE: "fast" }, "WECHAT_TOKEN_MODE"))
  it.effect("a negative margin names REFRESH_MARGIN_SECONDS", () =>
    rejects({ REFRESH_MARGIN_SECONDS: "-5" }, "REFRESH_MARGIN_SECONDS"))
  it.effect("a non-http base URL names WECHAT_API_BASE_URL", () =>
    rejects({ WECHAT_API_BASE_URL: "ftp://example.com" }, "WECHAT_API_BASE_URL"))
})
