/**
 * Three token engines on one real redis-server sharing the refresh work,
 * driven by `TestClock` against one in-process emulator that counts every
 * fetch per credential. Each engine's store is wrapped to count the leases
 * it took and the ones it was refused.
 *
 * `TestClock` and Redis do not share a clock (see Engines.test.ts): time is
 * walked in steps no longer than a heartbeat through each refresh window,
 * and after each step the test waits on the wall clock for the engines'
 * Redis round trips before moving time again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Layer, Option, Scope, TestClock } from "effect"
import * as RefreshPolicy from "../../src/RefreshPolicy.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenRecord } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine, type TokenEngineShape } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import * as RedisServer from "../support/redisServer.js"

const SECRET = "emulated-secret"
const MARGIN_MILLIS = 300_000
const LIFETIME_MILLIS = 7_200_000
const APPS = Array.from({ length: 24 }, (_, index) => `wx${index.toString(16).padStart(16, "0")}`)
const STEP_MILLIS = Duration.toMillis(RefreshPolicy.HEARTBEAT)

interface Member {
  readonly engine: TokenEngineShape
  readonly leases: { taken: number; refused: number }
  /** Store calls under way: a step is settled only once none is (a heartbeat's reply lands after its jump). */
  readonly pending: { calls: number }
  readonly scope: Scope.CloseableScope
}

/** One replica in its own scope; `crashes`: it will stop without leaving the store's list of replicas. */
const member = (redisUrl: string, emulator: Emulator.WeChatEmulatorShape, crashes: boolean) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const redis = Context.get(
      yield* Layer.buildWithScope(TokenStoreRedis.layer(redisUrl), scope),
      TokenStore.TokenStore
    )
    const leases = { taken: 0, refused: 0 }
    const pending = { calls: 0 }
    const counted = <A, E, R>(call: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => pending.calls++),
        () => call,
        () => Effect.sync(() => pending.calls--)
      )
    const heartbeat = redis.heartbeat!
    const store: TokenStore.TokenStoreShape = {
      ...redis,
      get: (key) => counted(redis.get(key)),
      set: (record) => counted(redis.set(record)),
      heartbeat: (replica, now, until) => counted(heartbeat(replica, now, until)),
      // Counted until the lease's scope has closed, its release answered (the
      // finalizer added first runs last): a release still on its way when the
      // next step begins would refuse another replica the lease.
      lease: (key, millis) =>
        Effect.gen(function*() {
          pending.calls++
          yield* Effect.addFinalizer(() => Effect.sync(() => pending.calls--))
          const taken = yield* redis.lease(key, millis)
          if (taken) leases.taken += 1
          else leases.refused += 1
          return taken
        }),
      ...(crashes ? { leave: () => Effect.void } : {})
    }
    const built = yield* Layer.buildWithScope(
      TokenLayer.layer({
        config: TokenConfig.layer({
          apps: APPS.map((appId) => TokenConfig.app(appId, SECRET)),
          mode: "classic",
          refreshMargin: Duration.millis(MARGIN_MILLIS),
          apiBaseUrl: "http://wechat.test"
        }),
        store: Layer.succeed(TokenStore.TokenStore, store),
        httpClient: Emulator.layerClient.pipe(Layer.provide(Layer.succeed(Emulator.WeChatEmulator, emulator)))
      }),
      scope
    )
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return { engine: Context.get(built, TokenEngine), leases, pending, scope } satisfies Member
  })

/** Waits on the wall clock, leaving `TestClock` where it is. */
const wallSleep = (millis: number) => Effect.withClock(Effect.sleep(Duration.millis(millis)), Clock.make())

/** Each app's held record on `engine`, by app. */
const held = (engine: TokenEngineShape): Effect.Effect<Map<string, TokenRecord>> =>
  Effect.map(engine.status, (statuses) =>
    new Map(
      statuses.flatMap((status) =>
        Option.isSome(status.record) ? [[status.appId as string, status.record.value] as const] : []
      )
    ))

/** Every engine holds the same generation of every app. */
const agreed = (members: ReadonlyArray<Member>) =>
  Effect.map(Effect.forEach(members, (one) => held(one.engine)), (views) =>
    APPS.every((app) => {
      const generations = views.map((view) => view.get(app)?.generation)
      return generations[0] !== undefined && generations.every((generation) => generation === generations[0])
    }))

/**
 * Waits (wall clock) for the engines' Redis round trips: until no store call
 * is under way and they agree, at most ~4 s. Agreement alone came before a
 * heartbeat's reply on a loaded machine: the next step then found that
 * replica's view of the group lapsed, it refreshed as if alone, and a lease
 * was refused.
 */
const settle = (members: ReadonlyArray<Member>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 200; attempt++) {
      yield* wallSleep(20)
      if (members.every((one) => one.pending.calls === 0) && (yield* agreed(members))) return
    }
  })

const fetchesOf = (emulator: Emulator.WeChatEmulatorShape) =>
  Effect.map(
    emulator.stats,
    (stats) =>
      new Map(APPS.map((app) => [app, (stats.apps[app]?.classicCalls ?? 0) + (stats.apps[app]?.stableCalls ?? 0)]))
  )

/**
 * Walks the clock to `until`: long jumps across the quiet hours (to two
 * steps before the next refresh any engine holds), heartbeat-long steps through
 * each refresh window. `observe` runs after each settled step.
 */
const walk = (members: ReadonlyArray<Member>, until: number, observe: (now: number) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      if (now >= until) return
      const views = yield* Effect.forEach(members, (one) => held(one.engine))
      const next = Math.min(...views.flatMap((view) => Array.from(view.values(), (record) => record.refreshAt)))
      // A jump wakes each heartbeat once, stamped on the virtual time it woke at
      // (its Redis reply arrives after the jump): the next one, a step after
      // the jump, renews every view before the first refresh is due.
      const to = next - now > 3 * STEP_MILLIS ? next - 2 * STEP_MILLIS : now + STEP_MILLIS
      yield* TestClock.adjust(Math.min(to, until) - now)
      yield* settle(members)
      yield* observe(yield* Clock.currentTimeMillis)
    }
  })

describe("three engines sharing the refresh work on one Redis (TestClock)", () => {
  it.scoped(
    "each credential is fetched once per cycle, by one replica; the work splits; a crashed replica's share is taken over within a margin",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const emulator = yield* Emulator.make({ apps: APPS.map((appId) => ({ appId, secret: SECRET })) })
        const members = yield* Effect.forEach([false, false, true], (crashes) => member(redis.url, emulator, crashes))
        yield* settle(members)
        // The cold start: one fetch per app, whoever made it.
        expect(Array.from((yield* fetchesOf(emulator)).values())).toEqual(APPS.map(() => 1))
        // Replicas starting while the first one's cold fetches run may find their leases taken: counted from here.
        const cold = members.map((one) => one.leases.taken)
        const coldRefused = members.map((one) => one.leases.refused)

        // Three cycles, every app's generation followed: one fetch each time it changes.
        const last = new Map((yield* held(members[0]!.engine)).entries())
        let latest = 0
        const follow = (engine: TokenEngineShape) => (now: number) =>
          Effect.gen(function*() {
            for (const [app, record] of yield* held(engine)) {
              const before = last.get(app)!
              expect(RefreshPolicy.isUsable(record, now)).toBe(true)
              if (record.generation === before.generation) continue
              expect(record.generation).toBe(before.generation + 1)
              latest = Math.max(latest, record.fetchedAt - before.refreshAt)
              last.set(app, record)
            }
          })
        yield* walk(members, 3 * LIFETIME_MILLIS, follow(members[0]!.engine))
        const fetches = yield* fetchesOf(emulator)
        for (const app of APPS) expect(fetches.get(app)).toBe(last.get(app)!.generation)
        const shared = members.map((one, index) => one.leases.taken - cold[index]!)
        const refreshes = shared.reduce((sum, taken) => sum + taken, 0)
        expect(refreshes).toBe(Array.from(fetches.values()).reduce((sum, count) => sum + count, 0) - APPS.length)
        // Every replica did part of it, and nobody raced for a lease.
        expect(shared.every((taken) => taken > 0)).toBe(true)
        expect(members.map((one, index) => one.leases.refused - coldRefused[index]!)).toEqual([0, 0, 0])

        // The third replica crashes: no goodbye, its entry lapses.
        yield* Scope.close(members[2]!.scope, Exit.void)
        const survivors = members.slice(0, 2)
        const before = survivors.map((one) => one.leases.taken)
        latest = 0
        yield* walk(survivors, 6 * LIFETIME_MILLIS, follow(survivors[0]!.engine))
        const after = yield* fetchesOf(emulator)
        for (const app of APPS) expect(after.get(app)).toBe(last.get(app)!.generation)
        // Each app refreshed at least twice more, all by the survivors, none later than a margin after it was due.
        for (const app of APPS) expect(after.get(app)! - fetches.get(app)!).toBeGreaterThanOrEqual(2)
        const taken = survivors.reduce((sum, one, index) => sum + one.leases.taken - before[index]!, 0)
        expect(taken).toBe(
          Array.from(after.values()).reduce((sum, count) => sum + count, 0) -
            Array.from(fetches.values()).reduce((sum, count) => sum + count, 0)
        )
        expect(latest).toBeLessThanOrEqual(MARGIN_MILLIS)
        expect((yield* emulator.stats).deadTokenUses).toBe(0)
      })
  )
})
