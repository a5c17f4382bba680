import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option, Redacted } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as WeComSuiteConfig from "../../../src/families/wecomSuite/WeComSuiteConfig.js"

const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const SECRET = "suiteSecret0123456789abcdefSECRET"
const PROVIDER_SECRET = "providerSecret0123456789PROVIDER"

const read = (env: Record<string, string>) =>
  Effect.withConfigProvider(WeComSuiteConfig.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("WeComSuiteConfig", () => {
  it.effect("WECOM_SUITES and WECOM_PROVIDER: every secret Redacted, the base URL shared with WeCom apps", () =>
    Effect.gen(function*() {
      const config = yield* read({
        WECOM_SUITES: `ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY}, dk0b0b0b0b0b0b0b0b:${SECRET}:other2:${KEY}`,
        WECOM_PROVIDER: `ww00000000000000aa:${PROVIDER_SECRET}`,
        WECOM_API_BASE_URL: "http://127.0.0.1:9999/"
      })
      expect(config.apiBaseUrl).toBe("http://127.0.0.1:9999")
      expect(config.suites.map((suite) => suite.suiteId)).toEqual(["ww0a0a0a0a0a0a0a0a", "dk0b0b0b0b0b0b0b0b"])
      const [first] = config.suites
      expect(Redacted.value(first!.secret)).toBe(SECRET)
      expect(Redacted.value(first!.messageToken)).toBe("pushToken")
      expect(Redacted.value(first!.encodingAesKey)).toBe(KEY)
      const provider = Option.getOrThrow(config.provider)
      expect(provider.corpId).toBe("ww00000000000000aa")
      expect(Redacted.value(provider.secret)).toBe(PROVIDER_SECRET)
      // Printed or logged, nothing secret shows.
      const printed = JSON.stringify(config)
      expect(printed).not.toContain(SECRET)
      expect(printed).not.toContain(PROVIDER_SECRET)
      expect(printed).not.toContain(KEY)
      const empty = yield* read({})
      expect(empty.suites).toEqual([])
      expect(Option.isNone(empty.provider)).toBe(true)
    }))

  it.effect("the _FILE forms are read like the variables", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "wecom-suites-"))
      writeFileSync(join(dir, "suites"), `ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY}\n`)
      writeFileSync(join(dir, "provider"), `ww00000000000000aa:${PROVIDER_SECRET}\n`)
      const config = yield* read({
        WECOM_SUITES_FILE: join(dir, "suites"),
        WECOM_PROVIDER_FILE: join(dir, "provider")
      })
      expect(Redacted.value(config.suites[0]!.encodingAesKey)).toBe(KEY)
      expect(Redacted.value(Option.getOrThrow(config.provider).secret)).toBe(PROVIDER_SECRET)
      const both = yield* Effect.flip(read({ WECOM_PROVIDER: "x", WECOM_PROVIDER_FILE: join(dir, "provider") }))
      expect(String(both)).toContain("set WECOM_PROVIDER or WECOM_PROVIDER_FILE, not both")
    }))

  it("a bad entry names its position and rule, never what it holds", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      [`ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken`, "entry 1 is not"],
      [`zz0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY}`, "entry 1: a suite id"],
      [`ww0a0a0a0a0a0a0a0a:${SECRET}:a!:${KEY}`, "entry 1: the token"],
      [`ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY.slice(1)}`, "entry 1: the EncodingAESKey"],
      [`ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY},ww0a0a0a0a0a0a0a0a:${SECRET}:pushToken:${KEY}`, "entry 2:"]
    ]
    for (const [raw, message] of cases) {
      const parsed = WeComSuiteConfig.parseSuites("WECOM_SUITES", raw)
      expect(Either.isLeft(parsed)).toBe(true)
      const text = Either.isLeft(parsed) ? String(parsed.left) : ""
      expect(text).toContain("WECOM_SUITES")
      expect(text).toContain(message)
      expect(text).not.toContain(SECRET)
    }
    for (const [raw, message] of [[`ww00000000000000aa`, "is not"], [`corp:${PROVIDER_SECRET}`, "the corp id"]]) {
      const parsed = WeComSuiteConfig.parseProvider("WECOM_PROVIDER", raw!)
      const text = Either.isLeft(parsed) ? String(parsed.left) : "parsed"
      expect(text).toContain(`WECOM_PROVIDER: ${message}`)
      expect(text).not.toContain(PROVIDER_SECRET)
    }
  })
})
