import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, TestClock } from "effect"
import * as Backoff from "../../../src/Backoff.js"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as RefreshPolicy from "../../../src/RefreshPolicy.js"
import { MissingInput, WeChatApiError } from "../../../src/WeChatError.js"
import { APP, families, makeIssuer, record, TOKEN } from "./fixtures.js"

const family = families(makeIssuer())[0]
const fresh = (held?: Cell.Held) => Cell.make({ appId: APP, kind: TOKEN }, family.kinds[0], family, APP, held)
const busy = new WeChatApiError({ errcode: -1, errmsg: "system busy" })

describe("engine cell", () => {
  it("holds a record with its usable end beside it, 0 while it holds none", () => {
    const cell = fresh()
    expect(cell.usableUntil).toBe(0)
    const held = Cell.toHeld(record({ value: "a", fetchedAt: 0 }))
    Cell.hold(cell, held)
    expect(cell.held).toBe(held)
    expect(cell.usableUntil).toBe(held.credential.expiresAt)
    expect(Cell.isUsableUntil(cell.usableUntil, 0)).toBe(true)
    expect(Cell.isUsableUntil(cell.usableUntil, cell.usableUntil - 5_000)).toBe(false)
  })

  it.effect("a failure grows the streak and cools the cell down until its retry time; a success ends it", () =>
    Effect.gen(function*() {
      const cell = fresh()
      yield* Cell.failed(cell, busy)
      yield* Cell.failed(cell, busy)
      const failure = cell.lastFailure!
      expect(failure.streak).toBe(2)
      expect(failure.retryAt).toBeGreaterThan(0)
      expect(Cell.coolingDown(cell, failure.retryAt - 1)).toBe(busy)
      expect(Cell.coolingDown(cell, failure.retryAt)).toBeUndefined()
      yield* Cell.succeeded(cell)
      expect(cell.lastFailure).toBeUndefined()
      expect(Cell.coolingDown(cell, 0)).toBeUndefined()
    }))

  it.effect("another credential's missing input does not cool this cell down; its own does", () =>
    Effect.gen(function*() {
      const cell = fresh()
      const elsewhere = new MissingInput({ appId: APP, kind: "demo_grant", detail: "push it" })
      yield* Cell.failed(cell, elsewhere)
      expect(Cell.coolsDown(cell, elsewhere)).toBe(false)
      expect(Cell.coolingDown(cell, 0)).toBeUndefined()
      const own = new MissingInput({ appId: APP, kind: TOKEN, detail: "push it" })
      yield* Cell.failed(cell, own)
      expect(Cell.coolingDown(cell, 0)).toBe(own)
    }))

  it.effect("forced refreshes are spent within the rule, then refused with when the next is allowed", () =>
    Effect.gen(function*() {
      const cell = fresh()
      const rule: RefreshPolicy.ForceRefreshRule = { perDay: 1, spacingMillis: 0 }
      yield* Cell.spendForceRefresh(cell, rule)
      expect(cell.forced).toEqual({ day: 0, used: 1, lastAt: 0 })
      const refused = yield* Effect.exit(Cell.spendForceRefresh(cell, rule))
      expect(refused).toEqual(Exit.fail(expect.objectContaining({ _tag: "ForceRefreshBudgetExhausted" })))
    }))

  it.effect("the fetch bucket lets a burst through, then makes the next fetch wait for a refill", () =>
    Effect.gen(function*() {
      const cell = fresh()
      for (let fetch = 0; fetch < Backoff.FETCH_BURST; fetch++) yield* Cell.takeFetch(cell)
      const waiting = yield* Effect.fork(Cell.takeFetch(cell))
      yield* TestClock.adjust(Backoff.FETCH_REFILL)
      expect(Exit.isSuccess(yield* waiting.await)).toBe(true)
    }))

  it("a contest is settled by the job that fetched past it, not by one that started before it", () => {
    const cell = fresh()
    const first = [record({ value: "a", fetchedAt: 0 }), record({ value: "b", fetchedAt: 0 })]
    Cell.contest(cell, first)
    const second = [record({ value: "c", fetchedAt: 0 })]
    Cell.contest(cell, second)
    Cell.settle(cell, first)
    expect(cell.contested).toBe(second)
    Cell.settle(cell, second)
    expect(cell.contested).toBeUndefined()
  })

  it.effect("a new record is the next generation of the current one, in its lineage", () =>
    Effect.gen(function*() {
      const cell = fresh()
      const current = record({ value: "a", fetchedAt: 0, generation: 4 })
      const next = yield* Cell.newRecord(cell, { value: "b", expiresInSeconds: 7_200 }, 0, current, 300_000)
      expect([next.value, next.generation, next.lineage, next.expiresAt]).toEqual(["b", 5, "fixture", 7_200_000])
      const first = yield* Cell.newRecord(cell, { value: "c", expiresInSeconds: 7_200 }, 0, undefined, 300_000)
      expect(first.generation).toBe(1)
    }))
})
