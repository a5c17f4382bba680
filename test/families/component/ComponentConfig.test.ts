import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import * as ComponentConfig from "../../../src/families/component/ComponentConfig.js"

const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const SECRET = "0123456789abcdef0123456789abcdef"

const read = (env: Record<string, string>) =>
  Effect.withConfigProvider(ComponentConfig.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("ComponentConfig", () => {
  it.effect("WECHAT_COMPONENTS: every secret Redacted, the base URL shared with apps", () =>
    Effect.gen(function*() {
      const config = yield* read({
        WECHAT_COMPONENTS: `wx00c0c0c0c0c0c0c0:${SECRET}:pushToken:${KEY}, wx00d0d0d0d0d0d0d0:${SECRET}:other2:${KEY}`,
        WECHAT_API_BASE_URL: "http://127.0.0.1:9999/"
      })
      expect(config.apiBaseUrl).toBe("http://127.0.0.1:9999")
      expect(config.components.map((component) => component.componentAppId)).toEqual([
        "wx00c0c0c0c0c0c0c0",
        "wx00d0d0d0d0d0d0d0"
      ])
      const [first] = config.components
      expect(Redacted.value(first!.secret)).toBe(SECRET)
      expect(Redacted.value(first!.messageToken)).toBe("pushToken")
      expect(Redacted.value(first!.encodingAesKey)).toBe(KEY)
      // Printed or logged, nothing secret shows.
      expect(JSON.stringify(config)).not.toContain(SECRET)
      expect(String(first!.encodingAesKey)).toBe("<redacted>")
      expect((yield* read({})).components).toEqual([])
    }))

  it("a bad entry names its position and rule, never what it holds", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      [`wx00c0c0c0c0c0c0c0:${SECRET}:pushToken`, "entry 1 is not"],
      [`wxBAD:${SECRET}:pushToken:${KEY}`, "entry 1: a component app id"],
      [`wx00c0c0c0c0c0c0c0:${SECRET}:a!:${KEY}`, "entry 1: the message token"],
      [`wx00c0c0c0c0c0c0c0:${SECRET}:pushToken:${KEY.slice(1)}`, "entry 1: the EncodingAESKey"],
      [`wx00c0c0c0c0c0c0c0:${SECRET}:pushToken:${KEY},wx00c0c0c0c0c0c0c0:${SECRET}:pushToken:${KEY}`, "entry 2:"]
    ]
    for (const [raw, message] of cases) {
      const parsed = ComponentConfig.parseComponents("WECHAT_COMPONENTS", raw)
      expect(Either.isLeft(parsed)).toBe(true)
      const text = Either.isLeft(parsed) ? String(parsed.left) : ""
      expect(text).toContain("WECHAT_COMPONENTS")
      expect(text).toContain(message)
      expect(text).not.toContain(SECRET)
    }
  })
})
