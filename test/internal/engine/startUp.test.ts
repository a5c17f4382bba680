import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as StartUp from "../../../src/internal/engine/startUp.js"
import { TokenRecord } from "../../../src/Token.js"
import { layerMemory } from "../../../src/TokenStore.js"
import { APP, AUTHORIZER, families, makeIssuer, ownersOver, PRESENCE, record, TOKEN } from "./fixtures.js"

describe("engine start-up", () => {
  it.effect("start-up starts each configured owner's eager kinds from the store, due at the stored refresh time", () =>
    Effect.gen(function*() {
      const { owners, recording, store } = yield* ownersOver
      yield* store.set(record({ value: "stored", fetchedAt: 0, refreshAt: 42_000 }))
      yield* StartUp.run(families(makeIssuer()), store, owners)
      const cell = owners.started(APP, TOKEN)!
      expect(cell.held?.record.value).toBe("stored")
      expect(recording.scheduled.get(cell)).toBe(42_000)
      expect(recording.expected()).toBe(1)
      expect(owners.apps).toEqual([APP])
      expect(owners.servable).toEqual([{ appId: APP, kind: TOKEN }])
    }).pipe(Effect.provide(layerMemory)))

  it.effect("start-up admits the stored dynamic owners and lists the retired ones", () =>
    Effect.gen(function*() {
      const { owners, store } = yield* ownersOver
      const gone = "wxc0ffee0000000002"
      yield* store.set(record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE))
      yield* store.set(new TokenRecord({ ...record({ value: "old", fetchedAt: 0 }, gone, PRESENCE), retired: true }))
      yield* StartUp.run(families(makeIssuer()), store, owners)
      expect([owners.isAdmitted(AUTHORIZER), owners.isAdmitted(gone)]).toEqual([true, false])
      expect(Array.from(owners.retired(), (retired) => retired.record.appId)).toEqual([gone])
    }).pipe(Effect.provide(layerMemory)))
})
