import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { type CredentialStatus, TokenEngine } from "../src/TokenEngine.js"
import { APP, emulatorLayer, engineLayer, OTHER, withEngine } from "./support/engine.js"

describe("TokenEngine.eachStatus", () => {
  it.effect("hands over what status lists, through one reused view whose copies keep their values", () =>
    withEngine(
      engineLayer({ apps: [APP, OTHER] }),
      Effect.gen(function*() {
        const engine = yield* TokenEngine
        const token = yield* engine.get(APP)
        yield* engine.get(OTHER)
        const listed = yield* engine.status
        const seen: Array<CredentialStatus> = []
        const copies: Array<CredentialStatus> = []
        yield* engine.eachStatus((status) => {
          seen.push(status)
          copies.push({ ...status })
        })
        expect(copies).toEqual(listed)
        expect(copies.map((status) => [status.appId, status.valid])).toEqual([[APP, true], [OTHER, true]])
        expect(Option.map(copies[0]!.record, (record) => record.value)).toEqual(Option.some(token.value))
        // The view is one object, re-pointed at each credential: only a copy keeps the first.
        expect(seen[0]).toBe(seen[1])
        expect(seen[0]!.appId).toBe(OTHER)
      })
    ).pipe(Effect.provide(emulatorLayer())))
})
