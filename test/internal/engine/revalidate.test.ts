import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream, TestClock } from "effect"
import * as Revalidate from "../../../src/internal/engine/revalidate.js"
import * as RefreshPolicy from "../../../src/RefreshPolicy.js"
import type { TokenRecord } from "../../../src/Token.js"
import { layerMemory, TokenStore } from "../../../src/TokenStore.js"
import { APP, AUTHORIZER, makeIssuer, parts, PRESENCE, record, TOKEN } from "./fixtures.js"

// The memory store with change messages a test hands in.
const withChanges = (changes: ReadonlyArray<TokenRecord>) =>
  Layer.effect(TokenStore, Effect.map(TokenStore, (store) => ({ ...store, changes: Stream.fromIterable(changes) })))
    .pipe(Layer.provide(layerMemory))

describe("engine re-validation", () => {
  it.scoped("a change message replaces the held record, admits a dynamic owner, and retires one", () => {
    const grant = record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE)
    const newer = record({ value: "replica", fetchedAt: 0, generation: 2 })
    return Effect.gen(function*() {
      const { fetch, owners, store } = yield* parts(makeIssuer())
      const cell = yield* owners.cellOf(APP, TOKEN)
      yield* fetch.adopt(cell, record({ value: "mine", fetchedAt: 0 }))
      yield* Revalidate.make(store, owners, fetch).followChanges
      expect(cell.held?.record.value).toBe("replica")
      expect(owners.isAdmitted(AUTHORIZER)).toBe(false)
      expect(Array.from(owners.retired(), (retired) => retired.record.value)).toEqual(["grant"])
    }).pipe(Effect.provide(withChanges([newer, grant, { ...grant, generation: 2, retired: true } as TokenRecord])))
  })

  it.scoped("a store that lost the held record gets it written back within one period; a newer stored one is served", () =>
    Effect.gen(function*() {
      const { fetch, owners, store } = yield* parts(makeIssuer())
      const cell = yield* owners.cellOf(APP, TOKEN)
      const mine = record({ value: "mine", fetchedAt: 0 })
      yield* fetch.adopt(cell, mine)
      yield* Effect.forkScoped(Revalidate.make(store, owners, fetch).revalidate)
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(Option.map(yield* store.get(cell.key), (stored) => stored.value)).toEqual(Option.some("mine"))
      yield* store.set(record({ value: "replica", fetchedAt: 0, generation: 2 }))
      yield* TestClock.adjust(RefreshPolicy.REVALIDATION_MIN)
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(layerMemory)))
})
