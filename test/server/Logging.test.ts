import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberRef, HashSet, Logger, LogLevel } from "effect"
import * as Logging from "../../src/server/Logging.js"
import { APP, auth, awaitReady, call, SECRET, startServer, startUpstream } from "./harness.js"

describe("server logs", () => {
  it.live("never contain the app secret or a whole token", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.map(Logger.jsonLogger, (line) => {
          lines.push(line)
        })
      )
      const served = yield* Effect.gen(function*() {
        const upstream = yield* startUpstream
        const base = yield* startServer({ upstream })
        yield* awaitReady(base)
        const token = (yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })).json
          .access_token as string
        const refreshed = yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
          method: "POST",
          headers: { ...auth(), "content-type": "application/json" },
          body: JSON.stringify({ stale_token: token })
        })
        const ticket = (yield* call(`${base}/v1/apps/${APP}/jsapi-ticket`, { headers: auth() })).json.ticket as string
        // A failing upstream logs too.
        yield* upstream.setFaulted(true)
        yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
          method: "POST",
          headers: { ...auth(), "content-type": "application/json" },
          body: JSON.stringify({ stale_token: refreshed.json.access_token })
        })
        return [token, refreshed.json.access_token as string, ticket]
      }).pipe(Effect.scoped, Effect.provide(capture), Logger.withMinimumLogLevel(LogLevel.All))
      const text = lines.join("\n")
      expect(text).toContain("token refreshed")
      expect(text).toContain("token fetch failed")
      expect(text).not.toContain(SECRET)
      for (const value of served) {
        expect(value.length).toBeGreaterThan(12)
        expect(text).not.toContain(value)
      }
    }))
})

describe("JSON log lines", () => {
  it.effect("carry `message` as one string, also when logged in parts", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.map(Logging.jsonLogger, (line) => void lines.push(line))
      )
      yield* Effect.logWarning("token fetch failed", "WeChat is unavailable", 42).pipe(Effect.provide(capture))
      yield* Effect.logInfo("token refreshed").pipe(Effect.provide(capture))
      expect(lines.map((line) => JSON.parse(line).message)).toEqual([
        "token fetch failed: WeChat is unavailable: 42",
        "token refreshed"
      ])
    }))
})

describe("the logging layer", () => {
  it.effect("provided twice in one fiber installs one logger each time and leaves the fiber's own after", () =>
    Effect.gen(function*() {
      const settings = { level: LogLevel.Warning, format: "json" as const }
      const loggers = FiberRef.get(FiberRef.currentLoggers)
      const level = FiberRef.get(FiberRef.currentMinimumLogLevel)
      const [ownLoggers, ownLevel] = [yield* loggers, yield* level]
      const first = yield* Effect.provide(Effect.all([loggers, level]), Logging.layer(settings))
      const second = yield* Effect.provide(Effect.all([loggers, level]), Logging.layer(settings))
      expect(first[1]).toBe(LogLevel.Warning)
      expect(HashSet.size(second[0])).toBe(HashSet.size(first[0]))
      expect([yield* loggers, yield* level]).toEqual([ownLoggers, ownLevel])
    }))
})
