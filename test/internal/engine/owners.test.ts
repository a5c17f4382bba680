import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as Owners from "../../../src/internal/engine/owners.js"
import type { OwnerId } from "../../../src/OwnerId.js"
import { TokenRecord } from "../../../src/Token.js"
import { layerMemory, TokenStore } from "../../../src/TokenStore.js"
import {
  APP,
  AUTHORIZER,
  families,
  makeIssuer,
  ownersOver,
  PRESENCE,
  record,
  recordingScheduler,
  TOKEN
} from "./fixtures.js"

describe("engine owners", () => {
  it.effect("an unknown owner or kind is refused with UnknownApp and starts nothing", () =>
    Effect.gen(function*() {
      const { owners } = yield* ownersOver
      for (const [owner, kind] of [["wxffffffffffffffff", TOKEN], [APP, "nope"], [AUTHORIZER, PRESENCE]] as const) {
        expect(yield* Effect.exit(owners.cellOf(owner, kind))).toEqual(
          Exit.fail(expect.objectContaining({ _tag: "UnknownApp" }))
        )
      }
      expect(owners.size()).toBe(0)
    }).pipe(Effect.provide(layerMemory)))

  it.effect("a dynamic owner whose presence another replica stored is admitted on first use", () =>
    Effect.gen(function*() {
      const { owners, store } = yield* ownersOver
      yield* store.set(record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE))
      const cell = yield* owners.cellOf(AUTHORIZER, PRESENCE)
      expect(cell.held?.record.value).toBe("grant")
      expect(owners.isAdmitted(AUTHORIZER)).toBe(true)
      expect(yield* owners.cellOf(AUTHORIZER, PRESENCE)).toBe(cell)
    }).pipe(Effect.provide(layerMemory)))

  it.effect("a stopped owner's cells are no longer live, scheduled or expected; it is listed retired until admitted", () =>
    Effect.gen(function*() {
      const { owners, recording } = yield* ownersOver
      const family = owners.dynamicFamilyOf(AUTHORIZER)!
      const presence = record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE)
      yield* owners.admit(AUTHORIZER as OwnerId, family, presence)
      const cell = owners.started(AUTHORIZER, PRESENCE)!
      expect(owners.live(cell)).toBe(true)
      const tombstone = new TokenRecord({ ...presence, generation: 2, retired: true })
      yield* owners.stop(AUTHORIZER, family, tombstone)
      expect([owners.live(cell), owners.isAdmitted(AUTHORIZER), recording.expected()]).toEqual([false, false, 0])
      expect(recording.removed).toEqual([cell])
      expect(Array.from(owners.retired(), (retired) => retired.record)).toEqual([tombstone])
      // A record a dead cell takes is not counted in the pacing.
      owners.hold(cell, Cell.toHeld(presence))
      expect(recording.expected()).toBe(0)
      yield* owners.admit(AUTHORIZER as OwnerId, family, presence)
      expect(Array.from(owners.retired())).toEqual([])
    }).pipe(Effect.provide(layerMemory)))

  it.effect("two families declaring one kind are refused", () =>
    Effect.gen(function*() {
      const [first] = families(makeIssuer())
      const refused = yield* Effect.exit(
        Owners.make([first, first], yield* TokenStore, recordingScheduler().scheduler)
      )
      expect(Exit.isFailure(refused)).toBe(true)
    }).pipe(Effect.provide(layerMemory)))
})
