/**
 * Refresh cycles of three replica processes on one Redis, on the real clock:
 * one upstream fetch per cycle for the whole group, and callers of every
 * replica always hold a token WeChat accepts.
 *
 * Child processes cannot share a `TestClock`, so the emulator issues 30 s
 * tokens. With REFRESH_MARGIN_SECONDS=10 the engine refreshes 10 s before
 * expiry, moved later by a jitter of up to half the margin (`newRecord` in
 * src/TokenEngine.ts; the margin is also capped at half the lifetime, 15 s
 * here): one cycle lasts 20–25 s, so three cycles fit in about 70 s.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import * as RedisServer from "../support/redisServer.js"
import { APP, eventually, getToken, replicaEnv, startReplicas, upstreams } from "../support/replicas.js"

const REPLICAS = 3
const LIFETIME_SECONDS = 30
const MARGIN_SECONDS = 10
const CYCLES = 3

describe("replicas on one Redis, refresh cycles", () => {
  it.live(
    `${CYCLES} refresh cycles of ${LIFETIME_SECONDS} s tokens: one fetch per cycle for the group`,
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const upstream = yield* upstreams(REPLICAS, { tokenLifetime: Duration.seconds(LIFETIME_SECONDS) })
        const replicas = yield* startReplicas(REPLICAS, (index) =>
          replicaEnv({
            upstream: upstream.urlOf(index),
            redisUrl: redis.url,
            mode: "classic",
            refreshMarginSeconds: MARGIN_SECONDS
          }))

        // Every replica is asked all the time; each answer is checked against
        // WeChat the moment it arrives.
        const invalid: Array<string> = []
        let served = 0
        const poll = yield* Effect.fork(
          Effect.forEach(replicas, (replica) =>
            getToken(replica).pipe(
              Effect.flatMap((answer) =>
                answer.token === undefined
                  ? Effect.sync(() => invalid.push(`replica ${replica.index}: status ${answer.status}`))
                  : Effect.map(upstream.emulator.isValidToken(answer.token), (valid) => {
                    served++
                    if (!valid) {
                      invalid.push(`replica ${replica.index}: a dead token at ${new Date(answer.at).toISOString()}`)
                    }
                  })
              ),
              Effect.zipRight(Effect.sleep(Duration.millis(100))),
              Effect.forever
            ), { concurrency: "unbounded", discard: true })
        )

        // The cold fetch, then one per cycle.
        yield* eventually(
          Effect.map(upstream.tokenCalls, (calls) => calls.length >= CYCLES + 1),
          `${CYCLES} refreshes`,
          Duration.seconds(CYCLES * 30 + 30)
        )
        const last = (yield* upstream.tokenCalls).at(-1)!
        // Well inside the next cycle: any second fetch for this cycle would have happened.
        yield* eventually(
          Effect.sync(() => Date.now() > last.at + 10_000),
          "10 s into the last cycle",
          Duration.seconds(15)
        )
        yield* Fiber.interrupt(poll)

        const calls = (yield* upstream.tokenCalls).slice(0, CYCLES + 1)
        expect(yield* upstream.tokenCalls).toHaveLength(CYCLES + 1)
        const gaps = calls.slice(1).map((call, i) => (call.at - calls[i]!.at) / 1000)
        // One cycle is lifetime − margin, plus up to margin / 2 of jitter (1 s of slack for process scheduling).
        for (const gap of gaps) {
          expect(gap).toBeGreaterThanOrEqual(LIFETIME_SECONDS - MARGIN_SECONDS - 1)
          expect(gap).toBeLessThanOrEqual(LIFETIME_SECONDS - MARGIN_SECONDS / 2 + 1)
        }
        const stats = (yield* upstream.emulator.stats).apps[APP]!
        expect(stats.classicCalls).toBe(CYCLES + 1)
        expect(stats.tokensIssued).toBe(CYCLES + 1)
        expect(invalid).toEqual([])
        expect(served).toBeGreaterThan(100)
        yield* Effect.logInfo("refresh cycles measured").pipe(
          Effect.annotateLogs({
            fetches: calls.length,
            gapsSeconds: gaps.map((gap) => gap.toFixed(1)).join(","),
            fetchedBy: calls.map((call) => call.replica).join(","),
            answersChecked: served
          })
        )
      }).pipe(Effect.scoped),
    360_000
  )
})
