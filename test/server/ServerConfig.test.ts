import { describe, expect, it } from "@effect/vitest"
import { type Config, ConfigProvider, Duration, Effect, Either } from "effect"
import * as ServerConfig from "../../src/server/ServerConfig.js"

const provided = <A>(config: Config.Config<A>, env: Record<string, string>) =>
  Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map(Object.entries(env))))

const readWith = (env: Record<string, string>) => provided(ServerConfig.requestTimeout, env)

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

  it("CLIENT_KEYS scopes accept WeCom apps as corpid/agent beside app ids", () => {
    const parsed = ServerConfig.parseClientKeys(
      "client-key-0123456789@wx0123456789abcdef+ww0123456789abcdef/1000002+ww0123456789abcdef/contacts"
    )
    expect(Either.isRight(parsed) && parsed.right[0]!.apps).toEqual([
      "wx0123456789abcdef",
      "ww0123456789abcdef/1000002",
      "ww0123456789abcdef/contacts"
    ])
    // A bare `ww…` id is a WeCom suite: it opens that suite's routes, never a corp's WeCom apps.
    const suite = ServerConfig.parseClientKeys("client-key-0123456789@ww0123456789abcdef")
    expect(Either.isRight(suite) && suite.right[0]!.apps).toEqual(["ww0123456789abcdef"])
    for (const scope of ["ww0123456789abcdef/", "ww0123456789abcdef/Bad", "wwXYZ/1000002", "ww-bad"]) {
      const refused = ServerConfig.parseClientKeys(`client-key-0123456789@${scope}`)
      expect(Either.isLeft(refused)).toBe(true)
    }
  })
  it.effect("COMPACT_HEAP: on by default, false for V8's defaults, anything else refused by name", () =>
    Effect.gen(function*() {
      const compactHeap = (env: Record<string, string>) =>
        Effect.map(provided(ServerConfig.settings, env), (settings) => settings.compactHeap)
      expect(yield* compactHeap({})).toBe(true)
      expect(yield* compactHeap({ COMPACT_HEAP: "false" })).toBe(false)
      const error = yield* Effect.flip(compactHeap({ COMPACT_HEAP: "small" }))
      expect(ServerConfig.describe(error)).toMatch(/^configuration error: COMPACT_HEAP/)
    }))
})
