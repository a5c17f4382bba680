/**
 * Replicas converging on the store's record after the store lost its data,
 * on `TestClock`: two engines share a store that announces no changes (as a
 * Redis whose change message was missed), so only re-validation can tell a
 * replica that another one replaced the token it serves.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option, Stream, TestClock } from "effect"
import * as RefreshPolicy from "../src/RefreshPolicy.js"
import { TokenRecord } from "../src/Token.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenStore from "../src/TokenStore.js"
import { APP, emulatorLayer, engineLayer, isValid, tokenFetches } from "./support/engine.js"

/** A shared store whose data a test can wipe, as FLUSHALL or a restart without persistence does. */
const flushableStore = () => {
  const records = new Map<string, TokenRecord>()
  const layer = Layer.succeed(
    TokenStore.TokenStore,
    TokenStore.TokenStore.of({
      get: (key) => Effect.sync(() => Option.fromNullable(records.get(TokenStore.keyString(key)))),
      list: (kind) => Effect.sync(() => Array.from(records.values()).filter((record) => record.kind === kind)),
      set: (record) =>
        Effect.sync(() => {
          const key = TokenStore.keyString(record)
          if (TokenStore.isNewer(record, Option.fromNullable(records.get(key)))) records.set(key, record)
          return records.get(key)!
        }),
      lease: () => Effect.succeed(true),
      ...TokenStore.claimsInMemory(),
      changes: Stream.empty,
      healthy: Effect.succeed(true)
    })
  )
  return { records, layer }
}

const replica = (store: ReturnType<typeof flushableStore>) =>
  Effect.map(Layer.build(engineLayer({ store: store.layer })), Context.get(TokenEngine))

const period = RefreshPolicy.revalidationMillis(1)

describe("convergence after the store lost its data (TestClock)", () => {
  it.scoped("a replica serving T1 takes the T2 another replica fetched into the emptied store within one period", () =>
    Effect.gen(function*() {
      const store = flushableStore()
      const first = yield* replica(store)
      const t1 = (yield* first.get(APP)).value
      yield* TestClock.adjust(Duration.minutes(1))
      store.records.clear()
      // Before the first re-validation: the new replica finds nothing and fetches.
      const third = yield* replica(store)
      const t2 = (yield* third.get(APP)).value
      expect(t2).not.toBe(t1)
      expect(yield* tokenFetches()).toBe(2)

      yield* TestClock.adjust(period)
      expect((yield* first.get(APP)).value).toBe(t2)
      // WeChat kills T1 five minutes after T2: nobody serves it then, and no fetch was added.
      yield* TestClock.adjust(Duration.minutes(5))
      for (const engine of [first, third]) {
        const served = (yield* engine.get(APP)).value
        expect(served).toBe(t2)
        expect(yield* isValid(served)).toBe(true)
      }
      expect(yield* tokenFetches()).toBe(2)
    }).pipe(Effect.provide(emulatorLayer())))

  it.scoped("a replica writes the token it holds back into an emptied store, so a replica starting later fetches nothing", () =>
    Effect.gen(function*() {
      const store = flushableStore()
      const first = yield* replica(store)
      const t1 = (yield* first.get(APP)).value
      store.records.clear()
      yield* TestClock.adjust(period)
      expect(Array.from(store.records.values()).map((record) => record.value)).toEqual([t1])
      const later = yield* replica(store)
      expect((yield* later.get(APP)).value).toBe(t1)
      expect(yield* tokenFetches()).toBe(1)
    }).pipe(Effect.provide(emulatorLayer())))

  it.scoped("two records of one generation (fetched apart while writes were refused) are settled by one fetch", () =>
    Effect.gen(function*() {
      const store = flushableStore()
      const first = yield* replica(store)
      const t1 = (yield* first.get(APP)).value
      const second = yield* replica(store)
      yield* second.refresh(APP)
      // The store holds another token of the same generation and lineage: two
      // replicas fetched on their own while the store refused writes.
      const fetched = Array.from(store.records.values())[0]!
      const other = new TokenRecord({ ...fetched, value: t1 })
      store.records.set(TokenStore.keyString(other), other)
      expect(yield* tokenFetches()).toBe(2)

      // Re-validation finds the store's record contested with the held one:
      // nobody can tell which token WeChat kept, so one replica fetches once more.
      yield* TestClock.adjust(period)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* tokenFetches()).toBe(3)
      const settled = Array.from(store.records.values())[0]!
      expect(settled.generation).toBe(fetched.generation + 1)
      for (const engine of [first, second]) {
        expect((yield* engine.get(APP)).value).toBe(settled.value)
      }
      yield* TestClock.adjust(Duration.minutes(6))
      expect(yield* isValid((yield* first.get(APP)).value)).toBe(true)
      expect(yield* tokenFetches()).toBe(3)
    }).pipe(Effect.provide(emulatorLayer())))
})
