/**
 * Three token engines in one process, each with its own Redis connection
 * (three separate `TokenLayer.layer` builds on one real redis-server), driven
 * by `TestClock` against the in-process emulator: the group's fetch count
 * over a simulated day, and what refreshes do while Redis is down.
 *
 * `TestClock` and Redis do not share a clock. The engines and the emulator
 * live on virtual time; Redis counts a lease's PX expiry, and answers
 * commands, on the wall clock. So:
 * - Nothing here relies on a lease lapsing: no holder dies, and a holder's
 *   whole fetch (lease, read, in-process fetch, write, release) takes a few
 *   wall-clock milliseconds, far below the 15 s lease. Takeover after a lapsed
 *   lease is tested with real processes in Replicas.test.ts.
 * - `TestClock.adjust` does not wait for Redis round trips: a fiber woken at
 *   `refreshAt` could find the clock already moved on when its reply
 *   arrives. The day is therefore walked from one refresh point to the next
 *   (never past one), and after each step the test waits on the wall clock
 *   until all three engines hold the same fresh record before moving time again.
 * - Each wake-up of a sleeping fiber costs `TestClock` a few milliseconds
 *   of wall clock (it polls with `setTimeout(0)` until every fiber is
 *   suspended): a simulated day wakes each engine's heartbeat (every 30 s)
 *   and re-validation (every 30 s) 2,880 times each.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Either, Layer, Option, TestClock } from "effect"
import { Redis } from "ioredis"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine, type TokenEngineShape } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import * as RedisServer from "../support/redisServer.js"

const APP = "wx0123456789abcdef"
const SECRET = "emulated-secret"
const MARGIN_SECONDS = 300
const DAY_MILLIS = 86_400_000

interface Member {
  readonly engine: TokenEngineShape
  readonly store: TokenStore.TokenStoreShape
}

/** One replica: its own Redis connections and its own engine, sharing the emulator. */
const member = (redisUrl: string, emulator: Emulator.WeChatEmulatorShape, mode: TokenMode) =>
  Effect.gen(function*() {
    const store = Context.get(yield* Layer.build(TokenStoreRedis.layer(redisUrl)), TokenStore.TokenStore)
    const built = yield* Layer.build(TokenLayer.layer({
      config: TokenConfig.layer({
        apps: [TokenConfig.app(APP, SECRET)],
        mode,
        refreshMargin: Duration.seconds(MARGIN_SECONDS),
        apiBaseUrl: "http://wechat.test"
      }),
      store: Layer.succeed(TokenStore.TokenStore, store),
      httpClient: Emulator.layerClient.pipe(Layer.provide(Layer.succeed(Emulator.WeChatEmulator, emulator)))
    }))
    return { engine: Context.get(built, TokenEngine), store } satisfies Member
  })

const group = (mode: TokenMode) =>
  Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const emulator = yield* Emulator.make({ apps: [{ appId: APP, secret: SECRET }] })
    const members = yield* Effect.forEach([0, 1, 2], () => member(redis.url, emulator, mode))
    return { redis, emulator, members }
  })

/** Waits on the wall clock, leaving `TestClock` where it is. */
const wallSleep = (millis: number) => Effect.withClock(Effect.sleep(Duration.millis(millis)), Clock.make())

/** Retries `check` (run on virtual time) every few wall-clock milliseconds, for at most 10 s. */
const settled = <E>(check: Effect.Effect<boolean, E>, what: string): Effect.Effect<void, E> =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 2_000; attempt++) {
      if (yield* check) return
      yield* wallSleep(5)
    }
    return yield* Effect.dieMessage(`never settled: ${what}`)
  })

const heldRecord = (engine: TokenEngineShape) =>
  Effect.map(engine.status, (statuses) =>
    Option.flatMap(
      Option.fromNullable(statuses.find((status) => status.appId === APP && status.kind === "access_token")),
      (status) => (status.valid ? status.record : Option.none())
    ))

/** Every engine holds a valid record not yet due, all the same generation. */
const agreed = (members: ReadonlyArray<Member>) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const records = yield* Effect.forEach(members, (member) => heldRecord(member.engine))
    const held = records.flatMap((record) => (Option.isSome(record) ? [record.value] : []))
    return held.length === members.length && new Set(held.map((record) => record.generation)).size === 1 &&
      held.every((record) => record.refreshAt > now)
  })

/**
 * A caller on each engine gets a token and uses it: WeChat counts a use of a
 * dead token in `deadTokenUses`. Answers the tokens served.
 */
const callEveryEngine = (emulator: Emulator.WeChatEmulatorShape, members: ReadonlyArray<Member>) =>
  Effect.forEach(members, (member) =>
    Effect.gen(function*() {
      const token = yield* member.engine.get(APP)
      yield* emulator.handle({
        method: "GET",
        path: "/cgi-bin/getcallbackip",
        query: new URLSearchParams({ access_token: token.value }),
        body: ""
      })
      expect(yield* emulator.isValidToken(token.value)).toBe(true)
      return token.value
    }))

const fetches = (emulator: Emulator.WeChatEmulatorShape) =>
  Effect.map(emulator.stats, (stats) => {
    const app = stats.apps[APP]
    return app === undefined ? 0 : app.classicCalls + app.stableCalls
  })

describe("three engines on one Redis (TestClock)", () => {
  it.scoped(
    `a simulated day costs the group exactly ⌈86400 / (7200 − ${MARGIN_SECONDS})⌉ fetches, and no caller uses a dead token`,
    () =>
      Effect.gen(function*() {
        const { emulator, members } = yield* group("classic")
        for (;;) {
          yield* settled(agreed(members), "every engine holds the same fresh record")
          yield* callEveryEngine(emulator, members)
          const now = yield* Clock.currentTimeMillis
          if (now >= DAY_MILLIS) break
          const records = yield* Effect.forEach(members, (member) => heldRecord(member.engine))
          const nextRefresh = Math.min(...records.map((record) => Option.getOrThrow(record).refreshAt))
          // Callers come at least every 10 minutes; the 24 h mark itself belongs to the next day.
          yield* TestClock.adjust(Math.min(nextRefresh, now + 600_000, DAY_MILLIS) - now)
        }
        expect(yield* fetches(emulator)).toBe(Math.ceil(86_400 / (7_200 - MARGIN_SECONDS)))
        const stats = yield* emulator.stats
        expect(stats.deadTokenUses).toBe(0)
        expect(stats.apps[APP]!.tokensIssued).toBe(Math.ceil(86_400 / (7_200 - MARGIN_SECONDS)))
      })
  )

  // A group that made its cold fetch, then lost Redis: every engine sees the
  // store down and holds the token fetched while it was up.
  const redisDownAfterColdStart = (mode: Parameters<typeof group>[0]) =>
    Effect.gen(function*() {
      const { emulator, members, redis } = yield* group(mode)
      yield* settled(agreed(members), "the cold fetch reached every engine")
      const record = Option.getOrThrow(yield* heldRecord(members[0]!.engine))
      yield* redis.stop
      yield* settled(
        Effect.map(
          Effect.forEach(members, (member) => member.store.healthy),
          (all) => all.every((healthy) => !healthy)
        ),
        "every engine sees Redis down"
      )
      return { emulator, members, record }
    })

  /**
   * While Redis is down there is no lease. Classic mode: two replicas
   * fetching on their own kill each other's tokens 5 minutes later, so a
   * replica keeps serving the token it holds and asks Redis for the lease
   * again every 5 s. Only when its token would stop being usable before the
   * next attempt does it fetch on its own: then every replica fetches once,
   * and WeChat keeps only the newest of those tokens (the others die 5
   * minutes later; callers recover with POST …/refresh, see docs/redis.md).
   */
  it.scoped(
    "Redis down, classic: no fetch while the token is usable, then one local fetch each, never a failed call",
    () =>
      Effect.gen(function*() {
        const { emulator, members, record } = yield* redisDownAfterColdStart("classic")

        // Callers come every second, half a second out of step with the
        // engines' retries (which run every 5 s from `refreshAt`).
        yield* TestClock.adjust(record.refreshAt - 500 - (yield* Clock.currentTimeMillis))
        const failures: Array<string> = []
        let localFetchAt: number | undefined
        while ((yield* Clock.currentTimeMillis) < record.expiresAt + 60_000) {
          yield* TestClock.adjust(Duration.seconds(1))
          const now = yield* Clock.currentTimeMillis
          for (const member of members) {
            const answer = yield* Effect.either(member.engine.get(APP))
            if (Either.isLeft(answer)) failures.push(`${now}: ${answer.left.message}`)
            else if (!(yield* emulator.isValidToken(answer.right.value))) failures.push(`${now}: a dead token`)
          }
          if (localFetchAt === undefined && (yield* fetches(emulator)) > 1) localFetchAt = now
        }

        expect(failures).toEqual([])
        // No fetch without the lease while the token was usable: the first
        // local fetch comes within the last 10 s of its life (two 5 s retries),
        // before callers could find it unusable.
        expect(localFetchAt).toBeGreaterThanOrEqual(record.expiresAt - 11_000)
        // One local fetch per replica, no more.
        expect(yield* fetches(emulator)).toBe(1 + members.length)
      })
  )

  /**
   * Redis answering reads but refusing writes (`maxmemory` reached with
   * `noeviction`): no lease can be taken, so replicas behave as while Redis
   * is down, one local fetch each at the token's end of life. Once Redis
   * accepts writes again, re-validation writes those tokens back; they are
   * contested, and one more fetch under the lease gives every replica the
   * same live token.
   */
  it.scoped(
    "Redis refusing writes (OOM), classic: one local fetch each, then after recovery one settling fetch and one token",
    () =>
      Effect.gen(function*() {
        const { emulator, members, redis } = yield* group("classic")
        yield* settled(agreed(members), "the cold fetch reached every engine")
        const record = Option.getOrThrow(yield* heldRecord(members[0]!.engine))
        const admin = new Redis(redis.url)
        yield* Effect.addFinalizer(() => Effect.sync(() => admin.disconnect()))
        yield* Effect.promise(() => admin.config("SET", "maxmemory-policy", "noeviction"))
        yield* Effect.promise(() => admin.config("SET", "maxmemory", "1"))
        const refused = yield* Effect.promise(() => admin.set("probe", "x").then(() => "written", String))
        expect(refused).toContain("OOM")

        yield* TestClock.adjust(record.refreshAt - 500 - (yield* Clock.currentTimeMillis))
        while ((yield* Clock.currentTimeMillis) < record.expiresAt + 30_000) {
          yield* TestClock.adjust(Duration.seconds(1))
          yield* wallSleep(10)
          for (const member of members) {
            const token = yield* member.engine.get(APP)
            expect(yield* emulator.isValidToken(token.value)).toBe(true)
          }
        }
        // One local fetch per replica while writes are refused, no more.
        expect(yield* fetches(emulator)).toBe(1 + members.length)

        yield* Effect.promise(() => admin.config("SET", "maxmemory", "0"))
        const recovered = yield* Clock.currentTimeMillis
        const oneToken = Effect.map(
          Effect.forEach(members, (member) => member.engine.get(APP)),
          (tokens) => new Set(tokens.map((token) => token.value)).size === 1
        )
        while (!(yield* oneToken) && (yield* Clock.currentTimeMillis) < recovered + 60_000) {
          yield* TestClock.adjust(Duration.seconds(1))
          yield* wallSleep(20)
        }
        yield* settled(oneToken, "every engine serves one token")
        expect(yield* fetches(emulator)).toBe(1 + members.length + 1)
        // That token is the live one: five minutes on, WeChat still accepts it and no caller used a dead token.
        yield* TestClock.adjust(Duration.minutes(6))
        yield* callEveryEngine(emulator, members)
        expect((yield* emulator.stats).deadTokenUses).toBe(0)
        expect(yield* fetches(emulator)).toBe(1 + members.length + 1)
      })
  )

  it.scoped(
    "Redis down, stable: each replica refreshes on its own and WeChat hands all of them the same token",
    () =>
      Effect.gen(function*() {
        const { emulator, members, record } = yield* redisDownAfterColdStart("stable")

        yield* TestClock.adjust(record.refreshAt - 1_000 - (yield* Clock.currentTimeMillis))
        const served = new Set<string>(yield* callEveryEngine(emulator, members))
        while ((yield* Clock.currentTimeMillis) < record.expiresAt + 60_000) {
          yield* TestClock.adjust(Duration.seconds(1))
          for (const token of yield* callEveryEngine(emulator, members)) served.add(token)
        }
        const last = yield* callEveryEngine(emulator, members)

        // Stable mode needs no lease: the refresh point passed with Redis down,
        // every replica fetched once, and WeChat renewed the token only once.
        expect(new Set(last).size).toBe(1)
        expect(last[0]).not.toBe(record.value)
        expect(served).toEqual(new Set([record.value, last[0]]))
        const stats = (yield* emulator.stats).apps[APP]!
        expect(stats.stableCalls).toBe(1 + members.length)
        expect(stats.tokensIssued).toBe(2)
        expect((yield* emulator.stats).deadTokenUses).toBe(0)
      })
  )
})
