import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Stream, TestClock } from "effect"
import * as Revalidate from "../../../src/internal/engine/revalidate.js"
import * as RefreshPolicy from "../../../src/RefreshPolicy.js"
import type { TokenRecord } from "../../../src/Token.js"
import { layerMemory, StoreError, TokenStore, type TokenStoreShape } from "../../../src/TokenStore.js"
import { APP, AUTHORIZER, makeIssuer, parts, PRESENCE, record, TOKEN } from "./fixtures.js"

// The memory store with a changes mark a test sets (none: unreadable), its
// reads of records and of the mark counted, and writes it can refuse.
class Marks extends Context.Tag("test/Marks")<Marks, {
  mark: Option.Option<number>
  refusing: boolean
  reads: number
  gets: number
}>() {}

const withMark = (initial: Option.Option<number>) =>
  Layer.effectContext(Effect.gen(function*() {
    const store = yield* TokenStore
    const marks = { mark: initial, refusing: false, reads: 0, gets: 0 }
    const marked: TokenStoreShape = {
      ...store,
      get: (key) => Effect.zipRight(Effect.sync(() => marks.gets++), store.get(key)),
      set: (record) =>
        marks.refusing ? Effect.fail(new StoreError({ operation: "set", detail: "refused" })) : store.set(record),
      changesMark: Effect.suspend(() => {
        marks.reads += 1
        return Option.match(marks.mark, {
          onNone: () => Effect.fail(new StoreError({ operation: "changesMark", detail: "unreachable" })),
          onSome: Effect.succeed
        })
      })
    }
    return Context.make(TokenStore, marked).pipe(Context.add(Marks, marks))
  })).pipe(Layer.provide(layerMemory))

// The memory store with change messages a test hands in.
const withChanges = (changes: ReadonlyArray<TokenRecord>) =>
  Layer.effect(TokenStore, Effect.map(TokenStore, (store) => ({ ...store, changes: Stream.fromIterable(changes) })))
    .pipe(Layer.provide(layerMemory))

// The engine's parts with the app's token cell holding a record of `fields`.
const holding = (fields: Parameters<typeof record>[0]) =>
  Effect.gen(function*() {
    const engine = yield* parts(makeIssuer())
    const cell = yield* engine.owners.cellOf(APP, TOKEN)
    yield* engine.fetch.adopt(cell, record(fields))
    return { ...engine, cell }
  })

describe("engine re-validation", () => {
  it.scoped("a change message replaces the held record, admits a dynamic owner, and retires one", () => {
    const grant = record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE)
    const newer = record({ value: "replica", fetchedAt: 0, generation: 2 })
    return Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0 })
      yield* Revalidate.make(store, owners, fetch).followChanges
      expect(cell.held?.record.value).toBe("replica")
      expect(owners.isAdmitted(AUTHORIZER)).toBe(false)
      expect(Array.from(owners.retired(), (retired) => retired.record.value)).toEqual(["grant"])
    }).pipe(Effect.provide(withChanges([newer, grant, { ...grant, generation: 2, retired: true } as TokenRecord])))
  })

  it.scoped("a store that lost the held record gets it written back within one period; a newer stored one is served", () =>
    Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0 })
      yield* Effect.forkScoped(Revalidate.make(store, owners, fetch).revalidate())
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(Option.map(yield* store.get(cell.key), (stored) => stored.value)).toEqual(Option.some("mine"))
      yield* store.set(record({ value: "replica", fetchedAt: 0, generation: 2 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(withMark(Option.none()))))

  it.scoped("while the changes mark stays put, a pass compares only the credentials due before the next two", () =>
    Effect.gen(function*() {
      // Due in two hours: far past the next two passes.
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0, refreshAt: 7_200_000 })
      const marks = yield* Marks
      yield* Effect.forkScoped(Revalidate.make(store, owners, fetch).revalidate())
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      // The first pass compares every credential; then another replica's write is missed.
      expect(marks.reads).toBe(1)
      yield* store.set(record({ value: "replica", fetchedAt: 0, refreshAt: 7_200_000, generation: 2 }))
      const gets = marks.gets
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(marks.gets).toBe(gets)
      expect(cell.held?.record.value).toBe("mine")
      // The mark moves: the next pass compares it and serves the store's.
      marks.mark = Option.some(1)
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("replica")
      // Due within the next two passes: compared although the mark holds.
      yield* store.set(record({ value: "soon", fetchedAt: 0, refreshAt: 60_000, generation: 3 }))
      yield* fetch.adopt(cell, record({ value: "due", fetchedAt: 0, refreshAt: 150_000, generation: 2 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("soon")
    }).pipe(Effect.provide(withMark(Option.some(0)))))

  it.scoped("start-up's read of the store counts as the first pass while the mark stays put", () =>
    Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0, refreshAt: 7_200_000 })
      const marks = yield* Marks
      yield* store.set(record({ value: "replica", fetchedAt: 0, refreshAt: 7_200_000, generation: 2 }))
      const gets = marks.gets
      yield* Effect.forkScoped(Revalidate.make(store, owners, fetch).revalidate({ at: 0, mark: 0 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      // Quiet: start-up read every record at mark 0, and nothing moved it since.
      expect(marks.gets).toBe(gets)
      expect(cell.held?.record.value).toBe("mine")
      // Once the mark moves, a pass compares every credential again.
      marks.mark = Option.some(1)
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(withMark(Option.some(0)))))

  it.scoped("start-up's read without a mark leaves the first pass comparing every credential", () =>
    Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0, refreshAt: 7_200_000 })
      yield* store.set(record({ value: "replica", fetchedAt: 0, refreshAt: 7_200_000, generation: 2 }))
      yield* Effect.forkScoped(Revalidate.make(store, owners, fetch).revalidate({ at: 0, mark: undefined }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(withMark(Option.some(0)))))

  it.scoped("a pass reads a store that can read many records at once in batches, never one by one", () =>
    Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0 })
      let batches = 0
      let gets = 0
      const batched: TokenStoreShape = {
        ...store,
        get: (key) => Effect.zipRight(Effect.sync(() => gets++), store.get(key)),
        getMany: (keys) => Effect.zipRight(Effect.sync(() => batches++), Effect.forEach(keys, store.get))
      }
      yield* Effect.forkScoped(Revalidate.make(batched, owners, fetch).revalidate())
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      // Lost by the store: written back.
      expect(Option.map(yield* store.get(cell.key), (stored) => stored.value)).toEqual(Option.some("mine"))
      yield* store.set(record({ value: "replica", fetchedAt: 0, generation: 2 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect({ batches, gets }).toEqual({ batches: 2, gets: 0 })
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(withMark(Option.none()))))

  it.scoped("an unreadable mark, or a write the store refused, makes the next pass compare every credential", () =>
    Effect.gen(function*() {
      const { cell, fetch, owners, store } = yield* holding({ value: "mine", fetchedAt: 0, refreshAt: 7_200_000 })
      const marks = yield* Marks
      const watched = Revalidate.watchWrites(store)
      yield* Effect.forkScoped(Revalidate.make(watched, owners, fetch).revalidate())
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      marks.mark = Option.none()
      yield* store.set(record({ value: "unread", fetchedAt: 0, refreshAt: 7_200_000, generation: 2 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("unread")
      marks.mark = Option.some(0)
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      // A quiet pass now: a write missed goes unread...
      yield* store.set(record({ value: "missed", fetchedAt: 0, refreshAt: 7_200_000, generation: 3 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("unread")
      // ...until a write of this replica's is refused.
      marks.refusing = true
      expect(yield* Effect.flip(watched.set(record({ value: "refused", fetchedAt: 0, generation: 9 })))).toMatchObject({
        _tag: "StoreError"
      })
      marks.refusing = false
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("missed")
    }).pipe(Effect.provide(withMark(Option.some(0)))))
})
