import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as SingleFlight from "../../src/internal/singleFlight.js"

describe("singleFlight", () => {
  it.scoped("callers of one key share one run and its result; another key runs on its own", () =>
    Effect.gen(function*() {
      const flights = yield* SingleFlight.make<string, number, string>()
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const compute = (answer: number) =>
        Effect.zipRight(Effect.sync(() => runs++), Effect.as(Deferred.await(gate), answer))
      const same = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.fork(flights.run("a", compute(1))))
      const other = yield* Effect.fork(flights.run("b", compute(2)))
      yield* Effect.yieldNow()
      expect(flights.running("a")).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.forEach(same, Fiber.join)).toEqual(Array(10).fill(1))
      expect(yield* Fiber.join(other)).toBe(2)
      expect(runs).toBe(2)
      expect(flights.running("a")).toBe(false)
    }))

  it.scoped("a failure is shared, and the next call runs afresh", () =>
    Effect.gen(function*() {
      const flights = yield* SingleFlight.make<string, number, string>()
      const failed = yield* Effect.all([flights.run("a", Effect.fail("boom")), flights.run("a", Effect.succeed(9))], {
        concurrency: "unbounded",
        mode: "either"
      })
      expect(failed.map((result) => result._tag)).toEqual(["Left", "Left"])
      expect(yield* flights.run("a", Effect.succeed(7))).toBe(7)
    }))

  it.scoped("a caller that gives up does not cancel the run for the others", () =>
    Effect.gen(function*() {
      const flights = yield* SingleFlight.make<string, string, never>()
      const gate = yield* Deferred.make<void>()
      const impatient = yield* Effect.fork(flights.run("a", Effect.as(Deferred.await(gate), "done")))
      const patient = yield* Effect.fork(flights.run("a", Effect.succeed("not run")))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(impatient)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(patient)).toBe("done")
    }))

  it.scoped("a lead runs in its caller's fiber; callers of its key share it, and it joins a run under way", () =>
    Effect.gen(function*() {
      const flights = yield* SingleFlight.make<string, number, string>()
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const computedBy: Array<string> = []
      const compute = (answer: number) =>
        Effect.gen(function*() {
          runs++
          computedBy.push(String(yield* Effect.fiberId))
          yield* Deferred.await(gate)
          return answer
        })
      const leader = yield* Effect.fork(Effect.zip(Effect.fiberId, flights.lead("a", compute(1))))
      yield* Effect.yieldNow()
      const joiners = yield* Effect.forEach(Array.from({ length: 5 }), () => Effect.fork(flights.run("a", compute(2))))
      const secondLead = yield* Effect.fork(flights.lead("a", compute(3)))
      yield* Effect.yieldNow()
      expect(flights.running("a")).toBe(true)
      yield* Deferred.succeed(gate, undefined)
      const [leaderId, led] = yield* Fiber.join(leader)
      expect(led).toBe(1)
      expect(computedBy).toEqual([String(leaderId)])
      expect(yield* Effect.forEach(joiners, Fiber.join)).toEqual(Array(5).fill(1))
      expect(yield* Fiber.join(secondLead)).toBe(1)
      expect(runs).toBe(1)
      expect(flights.running("a")).toBe(false)
      expect(yield* Effect.either(flights.lead("a", Effect.fail("boom")))).toMatchObject({ _tag: "Left", left: "boom" })
      expect(flights.running("a")).toBe(false)
    }))

  it.scoped("an interrupted lead frees its key: the next call runs afresh", () =>
    Effect.gen(function*() {
      const flights = yield* SingleFlight.make<string, number, never>()
      const leader = yield* Effect.fork(flights.lead("a", Effect.never))
      yield* Effect.yieldNow()
      expect(flights.running("a")).toBe(true)
      yield* Fiber.interrupt(leader)
      expect(flights.running("a")).toBe(false)
      expect(yield* flights.lead("a", Effect.succeed(5))).toBe(5)
    }))
})
