import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import * as ServerConfig from "../../src/server/ServerConfig.js"

const readWith = (env: Record<string, string>) =>
  Effect.withConfigProvider(ServerConfig.requestTimeout, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("ServerConfig", () => {
  it.effect("REQUEST_TIMEOUT_SECONDS: 30 s by default, any positive number of seconds up to an hour", () =>
    Effect.gen(function*() {
      expect(Duration.toMillis(yield* readWith({}))).toBe(30_000)
      expect(Duration.toMillis(yield* readWith({ REQUEST_TIMEOUT_SECONDS: "1.5" }))).toBe(1_500)
      expect(Duration.toMillis(yield* readWith({ REQUEST_TIMEOUT_SECONDS: "3600" }))).toBe(3_600_000)
    }))

  it.effect("a bad REQUEST_TIMEOUT_SECONDS stops start-up with one line naming it", () =>
    Effect.gen(function*() {
      for (const value of ["0", "-1", "3601", "soon"]) {
        const error = yield* Effect.flip(readWith({ REQUEST_TIMEOUT_SECONDS: value }))
        expect(ServerConfig.describe(error)).toMatch(/^configuration error: REQUEST_TIMEOUT_SECONDS: /)
      }
    }))
})
