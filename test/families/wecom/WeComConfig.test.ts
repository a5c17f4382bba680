import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import * as WeComConfig from "../../../src/families/wecom/WeComConfig.js"
import * as ServerConfig from "../../../src/server/ServerConfig.js"

const readWith = (env: Record<string, string>) =>
  Effect.withConfigProvider(WeComConfig.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("WeComConfig", () => {
  it.effect("WECOM_APPS: corpid/agent:secret entries, AgentIds and labels, secrets redacted; the default base URL", () =>
    Effect.gen(function*() {
      const config = yield* readWith({
        WECOM_APPS: "ww0123456789abcdef/1000002:s3cret:with:colons, wx5823bf96d3bd56c7/contacts:other"
      })
      expect(config.apiBaseUrl).toBe("https://qyapi.weixin.qq.com")
      expect(config.apps.map((app) => app.owner)).toEqual(["ww0123456789abcdef/1000002", "wx5823bf96d3bd56c7/contacts"])
      expect(Redacted.value(config.apps[0]!.secret)).toBe("s3cret:with:colons")
      expect(String(config.apps[0]!.secret)).not.toContain("s3cret")
      expect(yield* readWith({})).toEqual({ apps: [], apiBaseUrl: "https://qyapi.weixin.qq.com" })
      expect((yield* readWith({ WECOM_API_BASE_URL: "http://127.0.0.1:9000/" })).apiBaseUrl).toBe(
        "http://127.0.0.1:9000"
      )
    }))

  it.effect("a bad entry stops start-up naming WECOM_APPS and the entry's position, never the secret", () =>
    Effect.gen(function*() {
      for (
        const [raw, position] of [
          ["ww0123456789abcdef/1000002:TopSecret,garbage", "entry 2"],
          ["wwNOTHEX/1000002:TopSecret", "entry 1"],
          ["ww0123456789abcdef/Agent One:TopSecret", "entry 1"],
          ["ww0123456789abcdef:TopSecret", "entry 1"],
          ["ww0123456789abcdef/1000002:", "entry 1"],
          ["ww0123456789abcdef/1:TopSecret,ww0123456789abcdef/1:TopSecret", "entry 2"]
        ] as const
      ) {
        const line = ServerConfig.describe(yield* Effect.flip(readWith({ WECOM_APPS: raw })))
        expect(line).toMatch(/^configuration error: WECOM_APPS: /)
        expect(line).toContain(position)
        expect(line).not.toContain("TopSecret")
      }
      expect(Either.isLeft(WeComConfig.parseApps("WECOM_APPS", ""))).toBe(true)
      const line = ServerConfig.describe(yield* Effect.flip(readWith({ WECOM_API_BASE_URL: "ftp://x" })))
      expect(line).toContain("WECOM_API_BASE_URL")
    }))
})
