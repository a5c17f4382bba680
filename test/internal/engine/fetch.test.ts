import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FiberRef, Metric, type MetricLabel, TestClock } from "effect"
import * as RefreshPolicy from "../../../src/RefreshPolicy.js"
import * as TokenMetrics from "../../../src/TokenMetrics.js"
import { layerMemory } from "../../../src/TokenStore.js"
import { WeChatApiError } from "../../../src/WeChatError.js"
import { APP, makeIssuer, parts, record, TOKEN } from "./fixtures.js"

describe("engine fetch", () => {
  it.scoped("fifty callers of a cold cell share one fetch, stored before it is served; then memory answers", () =>
    Effect.gen(function*() {
      const issuer = makeIssuer()
      const { fetch, owners, store } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      const served = yield* Effect.forEach(
        Array.from({ length: 50 }),
        () => fetch.serve(cell, RefreshPolicy.usable),
        { concurrency: "unbounded" }
      )
      expect(new Set(served.map((credential) => credential.value))).toEqual(new Set(["value-1"]))
      expect(issuer.state.calls).toBe(1)
      expect((yield* store.get(cell.key)).pipe((stored) => stored._tag === "Some" && stored.value.value)).toBe(
        "value-1"
      )
      yield* fetch.serve(cell, RefreshPolicy.usable)
      expect(issuer.state.calls).toBe(1)
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("a fetch's metrics carry its app and kind, under one labels array for every fetch of the cell", () =>
    Effect.gen(function*() {
      const base = makeIssuer()
      const seen: Array<ReadonlyArray<MetricLabel.MetricLabel>> = []
      const issuer = {
        ...base,
        issue: Effect.tap(
          base.issue,
          () => Effect.map(FiberRef.get(FiberRef.currentMetricLabels), (labels) => seen.push(labels))
        )
      }
      const { fetch, owners } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      const refreshes = TokenMetrics.refreshes.pipe(Metric.tagged("app", cell.label), Metric.tagged("kind", TOKEN))
      const before = (yield* Metric.value(refreshes)).count
      yield* fetch.singleFlight(cell, RefreshPolicy.replacing(undefined))
      yield* fetch.singleFlight(cell, RefreshPolicy.replacing(undefined))
      expect(issuer.state.calls).toBe(2)
      expect((yield* Metric.value(refreshes)).count - before).toBe(2)
      expect(seen[0]!.map((label) => [label.key, label.value])).toEqual([["app", cell.label], ["kind", TOKEN]])
      expect(seen[1]).toBe(seen[0])
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("after a failure callers fail fast with it until the backoff allows the next fetch", () =>
    Effect.gen(function*() {
      const issuer = makeIssuer()
      const { fetch, owners } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      const busy = new WeChatApiError({ errcode: -1, errmsg: "system busy" })
      issuer.state.failing = busy
      expect(yield* Effect.exit(fetch.serve(cell, RefreshPolicy.usable))).toEqual(Exit.fail(busy))
      expect(yield* Effect.exit(fetch.serve(cell, RefreshPolicy.usable))).toEqual(Exit.fail(busy))
      expect(issuer.state.calls).toBe(1)
      issuer.state.failing = undefined
      yield* TestClock.adjust(cell.lastFailure!.retryAt)
      expect((yield* fetch.serve(cell, RefreshPolicy.usable)).value).toBe("value-2")
      expect(cell.lastFailure).toBeUndefined()
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("the store's newer record is adopted instead of fetching; a stale held one is not taken back", () =>
    Effect.gen(function*() {
      const issuer = makeIssuer()
      const { fetch, owners, store } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      yield* store.set(record({ value: "replica", fetchedAt: 0, generation: 3 }))
      expect((yield* fetch.serve(cell, RefreshPolicy.usable)).value).toBe("replica")
      expect(issuer.state.calls).toBe(0)
      yield* fetch.adopt(cell, record({ value: "older", fetchedAt: 0, generation: 2 }))
      expect(cell.held?.record.value).toBe("replica")
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("a job refreshes a due cell and answers its next refresh time; a cell not due yet is left alone", () =>
    Effect.gen(function*() {
      const issuer = makeIssuer()
      const { job, owners } = yield* parts(issuer)
      const cell = yield* owners.cellOf(APP, TOKEN)
      const next = yield* job(cell)
      expect(issuer.state.calls).toBe(1)
      expect(next).toBe(cell.held!.record.refreshAt)
      expect(yield* job(cell)).toBe(next)
      expect(issuer.state.calls).toBe(1)
    }).pipe(Effect.provide(layerMemory)))
})
