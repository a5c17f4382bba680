import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Logger, LogLevel, Option } from "effect"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { APP, auth, KEY, SECRET, send, startStack } from "../support/serverStack.js"

const { Fault } = Emulator

describe("Secrets", () => {
  it.live(
    "a whole faulty run: logs, errors, metrics and HTTP answers hold no app secret, no client key, no whole token",
    () =>
      Effect.gen(function*() {
        const logs: Array<string> = []
        const stack = yield* startStack({
          // Short tokens and timeout, so refreshes, retries and timeouts all happen within seconds.
          tokenLifetime: Duration.seconds(12),
          upstreamTimeout: Duration.seconds(3),
          logger: Logger.map(Logger.jsonLogger, (line) => void logs.push(line))
        }).pipe(Logger.withMinimumLogLevel(LogLevel.All))
        const tokens = new Set<string>()
        const answers: Array<string> = []
        let latest = "x"
        const ask = Effect.gen(function*() {
          for (const path of [`/v1/apps/${APP}/access-token`, `/v1/apps/${APP}/jsapi-ticket`]) {
            const answer = yield* send(stack.port, { path, headers: auth() })
            if (answer.status === 200) {
              const body = JSON.parse(answer.text)
              tokens.add(body.access_token ?? body.ticket)
              latest = body.access_token ?? latest
            } else answers.push(answer.text)
          }
          const refresh = yield* send(stack.port, {
            method: "POST",
            path: `/v1/apps/${APP}/access-token/refresh`,
            headers: { ...auth(), "content-type": "application/json" },
            // The token WeChat just killed: the refresh replaces it once faults clear.
            body: JSON.stringify({ stale_token: latest })
          })
          if (refresh.status === 200) tokens.add(latest = JSON.parse(refresh.text).access_token)
          else answers.push(refresh.text)
          // Wrong keys that contain the real one must not be echoed.
          answers.push(
            (yield* send(stack.port, { path: `/v1/apps/${APP}/access-token`, headers: auth(`${KEY}x`) })).text
          )
          for (const path of ["/readyz", "/metrics", "/healthz"]) answers.push((yield* send(stack.port, { path })).text)
          const statuses = yield* stack.engine.status
          for (const status of statuses) {
            Option.map(status.lastError, (error) => answers.push(error.message, JSON.stringify(error), String(error)))
          }
          yield* Effect.sleep(Duration.millis(200))
        })
        yield* ask
        const faults = [
          Fault.Busy(),
          Fault.HttpStatus(500),
          Fault.Malformed(),
          Fault.Slow(Duration.seconds(4)),
          Fault.ConnectionRefused(),
          Fault.Errcode(40125, "invalid appsecret"),
          Fault.Errcode(40164, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist"),
          Fault.Errcode(45009, "reach max api daily quota limit")
        ]
        for (const fault of faults) {
          yield* stack.emulator.injectFault({ fault })
          yield* stack.emulator.killTokens(APP)
          for (let i = 0; i < 3; i++) yield* ask
          yield* stack.emulator.clearFaults
          yield* ask
        }
        // The run did meet faults and did hand out several tokens.
        expect(answers.some((text) => text.includes("\"code\":\"upstream_"))).toBe(true)
        expect(tokens.size).toBeGreaterThanOrEqual(2)
        expect(logs.length).toBeGreaterThan(0)
        const everything = [...logs, ...answers]
        for (const text of everything) {
          expect(text).not.toContain(SECRET)
          expect(text).not.toContain(KEY)
          for (const token of tokens) expect(text).not.toContain(token)
        }
      }).pipe(Effect.scoped),
    120_000
  )
})
