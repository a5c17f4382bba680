/**
 * Classic replicas as real processes when Redis loses its data: two replicas
 * hold T1, Redis is flushed, a third replica starts and finds nothing. The
 * group must end up serving one token, the one WeChat issued last, within a
 * re-validation period: far inside the 5 minutes WeChat keeps a replaced
 * classic token alive.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { Redis } from "ioredis"
import * as RefreshPolicy from "../../src/RefreshPolicy.js"
import * as RedisServer from "../support/redisServer.js"
import {
  eventually,
  getToken,
  type Replica,
  replicaEnv,
  spawnReplica,
  startReplicas,
  type TokenAnswer,
  upstreams
} from "../support/replicas.js"

/** Every replica's answer now. */
const answersOf = (replicas: ReadonlyArray<Replica>) => Effect.forEach(replicas, getToken, { concurrency: "unbounded" })

const agree = (answers: ReadonlyArray<TokenAnswer>) =>
  answers.every((answer) => answer.status === 200 && answer.token !== undefined && answer.token === answers[0]!.token)

describe("replicas on one Redis that loses its data (classic)", () => {
  it.live(
    "FLUSHALL, then a third replica starts: within a re-validation period every replica serves the token WeChat issued last",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const upstream = yield* upstreams(3)
        const env = (index: number) =>
          replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "classic" })
        const first = yield* startReplicas(2, env)
        yield* eventually(Effect.map(answersOf(first), agree), "the first two replicas serve one token")
        const t1 = (yield* getToken(first[0]!)).token!

        const client = yield* Effect.acquireRelease(
          Effect.sync(() => new Redis(redis.url)),
          (client) => Effect.sync(() => client.disconnect())
        )
        expect(yield* Effect.promise(() => client.flushall())).toBe("OK")

        // Callers keep asking every replica from now on.
        const seen: Array<TokenAnswer> = []
        const third = yield* spawnReplica(2, env(2))
        const replicas = [...first, third]
        const callers = yield* Effect.fork(
          answersOf(replicas).pipe(
            Effect.tap((answers) => Effect.sync(() => seen.push(...answers))),
            Effect.zipRight(Effect.sleep(Duration.millis(100))),
            Effect.forever
          )
        )

        const period = Duration.millis(RefreshPolicy.revalidationMillis(1))
        yield* eventually(
          Effect.map(answersOf(replicas), agree),
          "every replica serves one token",
          Duration.sum(period, Duration.seconds(10))
        )
        // A replica that re-validated against the empty store before the third
        // one wrote may still settle the group with one more fetch: that lands
        // within the next period, so the token the group keeps is read after it.
        yield* Effect.sleep(period)
        yield* eventually(Effect.map(answersOf(replicas), agree), "the replicas still serve one token")
        yield* Fiber.interrupt(callers)
        const agreed = (yield* getToken(third)).token!
        const calls = (yield* upstream.tokenCalls).length
        // The third replica either found T1 written back (no fetch) or fetched
        // T2, which replaced T1 everywhere (or was settled by one more fetch).
        expect(calls === 1 ? agreed === t1 : agreed !== t1).toBe(true)
        expect(calls).toBeLessThanOrEqual(3)
        expect(yield* upstream.emulator.isValidToken(agreed)).toBe(true)
        // Every answer was a token WeChat accepted (T1 lives 5 minutes after T2).
        for (const token of new Set(seen.map((answer) => answer.token))) {
          expect(token !== undefined && (yield* upstream.emulator.isValidToken(token))).toBe(true)
        }
        // And the agreement lasts.
        expect(agree(yield* answersOf(replicas))).toBe(true)
        expect((yield* answersOf(replicas))[0]!.token).toBe(agreed)
      }).pipe(Effect.scoped),
    240_000
  )
})
