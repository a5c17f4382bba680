/**
 * `PROXY_ALLOW` and `PROXY_MAX_BODY_BYTES` as `serve` reads them.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import * as ServerConfig from "../../src/server/ServerConfig.js"

const read = (env: Record<string, string>) =>
  Effect.either(
    Effect.withConfigProvider(ServerConfig.proxySettings, ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

describe("ServerConfig.proxySettings", () => {
  it.effect("defaults: every path but the refused ones, bodies up to 20 MiB", () =>
    Effect.gen(function*() {
      expect(yield* read({})).toEqual(Either.right({ allow: undefined, maxBodyBytes: 20 * 1024 * 1024 }))
    }))

  it.effect("PROXY_ALLOW: prefixes trimmed, without leading or trailing slashes", () =>
    Effect.gen(function*() {
      const settings = yield* read({
        PROXY_ALLOW: " cgi-bin/message , /cgi-bin/media/,wxa",
        PROXY_MAX_BODY_BYTES: "1048576"
      })
      expect(settings).toEqual(
        Either.right({ allow: ["cgi-bin/message", "cgi-bin/media", "wxa"], maxBodyBytes: 1048576 })
      )
    }))

  it.effect("a bad value stops start-up with a line naming the variable", () =>
    Effect.gen(function*() {
      for (
        const [env, variable] of [
          [{ PROXY_ALLOW: "cgi-bin/message,,wxa" }, "PROXY_ALLOW"],
          [{ PROXY_ALLOW: "cgi-bin/../token" }, "PROXY_ALLOW"],
          [{ PROXY_ALLOW: "cgi-bin/message?x=1" }, "PROXY_ALLOW"],
          [{ PROXY_MAX_BODY_BYTES: "0" }, "PROXY_MAX_BODY_BYTES"],
          [{ PROXY_MAX_BODY_BYTES: "20MB" }, "PROXY_MAX_BODY_BYTES"]
        ] as const
      ) {
        const result = yield* read(env)
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(ServerConfig.describe(result.left)).toContain(variable)
      }
    }))
})
