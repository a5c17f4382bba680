import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, TestClock } from "effect"
import * as Status from "../../../src/internal/engine/status.js"
import type { OwnerId } from "../../../src/OwnerId.js"
import { TokenRecord } from "../../../src/Token.js"
import type { CredentialStatus } from "../../../src/TokenEngine.js"
import { layerMemory } from "../../../src/TokenStore.js"
import { WeChatApiError } from "../../../src/WeChatError.js"
import { APP, AUTHORIZER, makeIssuer, parts, PRESENCE, record, TOKEN } from "./fixtures.js"

describe("engine status views", () => {
  it.scoped("each cell through one reused view, valid while usable, with its last error; then each retired owner", () =>
    Effect.gen(function*() {
      const issuer = makeIssuer()
      const { fetch, job, owners } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      yield* fetch.adopt(cell, record({ value: "mine", fetchedAt: 0 }))
      const grant = record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE)
      yield* owners.stop(AUTHORIZER, owners.dynamicFamilyOf(AUTHORIZER)!, new TokenRecord({ ...grant, retired: true }))
      const status = Status.make(owners)
      const seen: Array<CredentialStatus> = []
      yield* status.eachStatus((view) => seen.push(view))
      const listed = yield* status.status
      expect(seen.length).toBe(listed.length)
      expect(listed.map((entry) => [entry.appId, entry.kind, entry.valid, entry.retired])).toEqual([
        [APP, TOKEN, true, false],
        [AUTHORIZER, PRESENCE, false, true]
      ])
      expect(Option.map(listed[0]!.record, (held) => held.value)).toEqual(Option.some("mine"))
      // Expired and failing: the view says so, and a copy taken before keeps what it saw.
      issuer.state.failing = new WeChatApiError({ errcode: -1, errmsg: "system busy" })
      yield* TestClock.adjust(7_200_000)
      yield* Effect.exit(job(cell))
      const later = yield* status.status
      expect([later[0]!.valid, Option.isSome(later[0]!.lastError)]).toEqual([false, true])
      expect([listed[0]!.valid, Option.isNone(listed[0]!.lastError)]).toEqual([true, true])
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("counts every live credential per label and kind, listing owners labelled by themselves and the invalid", () =>
    Effect.gen(function*() {
      const { fetch, owners } = yield* parts(makeIssuer())
      const cell = yield* owners.cellOf(APP, TOKEN)
      yield* fetch.adopt(cell, record({ value: "mine", fetchedAt: 0 }))
      const grant = record({ value: "grant", fetchedAt: 0 }, AUTHORIZER, PRESENCE)
      yield* owners.admit(AUTHORIZER as OwnerId, owners.dynamicFamilyOf(AUTHORIZER)!, grant)
      const status = Status.make(owners)
      const counted = yield* status.countStatuses(10)
      // In the fixture every owner is labelled by itself (one configured owner).
      expect(counted.counts).toEqual([
        { metricsLabel: APP, kind: TOKEN, labelled: true, valid: 1, invalid: 0 },
        { metricsLabel: AUTHORIZER, kind: PRESENCE, labelled: true, valid: 1, invalid: 0 }
      ])
      expect(counted.labelled).toEqual(yield* status.status)
      expect([counted.retired, counted.invalid]).toEqual([0, []])
      // Retired: out of the counts, its status listed; past the lifetime the other is invalid.
      yield* owners.stop(AUTHORIZER, owners.dynamicFamilyOf(AUTHORIZER)!, new TokenRecord({ ...grant, retired: true }))
      yield* TestClock.adjust(7_200_000)
      const later = yield* status.countStatuses(10)
      expect(later.counts).toEqual([{ metricsLabel: APP, kind: TOKEN, labelled: true, valid: 0, invalid: 1 }])
      expect(later.retired).toBe(1)
      expect(later.labelled.map((entry) => [entry.appId, entry.valid, entry.retired])).toEqual([
        [APP, false, false],
        [AUTHORIZER, false, true]
      ])
      expect(later.invalid.map((entry) => entry.appId)).toEqual([APP])
      expect((yield* status.countStatuses(0)).invalid).toEqual([])
    }).pipe(Effect.provide(layerMemory)))
})
