import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as Durable from "../../../src/internal/engine/durable.js"
import { layerMemory } from "../../../src/TokenStore.js"
import { AUTHORIZER, makeIssuer, parts, PRESENCE } from "./fixtures.js"

const setUp = Effect.map(parts(makeIssuer()), (wired) => ({
  ...wired,
  durable: Durable.make(wired.store, wired.owners, wired.fetch, wired.recording.scheduler, 300_000)
}))

describe("engine durable inputs", () => {
  it.scoped("a put is stored before it returns; the same value again writes nothing; its presence admits the owner", () =>
    Effect.gen(function*() {
      const { durable, owners, store } = yield* setUp
      const put = yield* durable.put(AUTHORIZER, PRESENCE, { value: "grant-1", expiresInSeconds: 7_200 })
      expect(put.value).toBe("grant-1")
      const stored = Option.getOrThrow(yield* store.get({ appId: AUTHORIZER as never, kind: PRESENCE }))
      expect(owners.isAdmitted(AUTHORIZER)).toBe(true)
      yield* durable.put(AUTHORIZER, PRESENCE, { value: "grant-1", expiresInSeconds: 7_200 })
      expect(Option.getOrThrow(yield* store.get(stored)).generation).toBe(stored.generation)
      yield* durable.put(AUTHORIZER, PRESENCE, { value: "grant-2", expiresInSeconds: 7_200 })
      expect(owners.started(AUTHORIZER, PRESENCE)?.held?.record.generation).toBe(stored.generation + 1)
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("retire stores a tombstone and stops the owner; a later put brings it back", () =>
    Effect.gen(function*() {
      const { durable, owners, store } = yield* setUp
      yield* durable.put(AUTHORIZER, PRESENCE, { value: "grant-1", expiresInSeconds: 7_200 })
      yield* durable.retire(AUTHORIZER)
      const key = { appId: AUTHORIZER as never, kind: PRESENCE }
      expect(Option.getOrThrow(yield* store.get(key)).retired).toBe(true)
      expect([owners.isAdmitted(AUTHORIZER), owners.started(AUTHORIZER, PRESENCE)]).toEqual([false, undefined])
      yield* durable.put(AUTHORIZER, PRESENCE, { value: "grant-2", expiresInSeconds: 7_200 })
      expect(owners.isAdmitted(AUTHORIZER)).toBe(true)
      expect(Option.getOrThrow(yield* store.get(key)).retired).toBeUndefined()
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("a kind nobody declares, or an owner no family admits, is UnknownApp", () =>
    Effect.gen(function*() {
      const { durable } = yield* setUp
      const unknown = Exit.fail(expect.objectContaining({ _tag: "UnknownApp" }))
      expect(yield* Effect.exit(durable.put(AUTHORIZER, "nope", { value: "x", expiresInSeconds: 60 }))).toEqual(unknown)
      expect(yield* Effect.exit(durable.retire("wx0000000000000000"))).toEqual(unknown)
    }).pipe(Effect.provide(layerMemory)))
})
