import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Ref } from "effect"
import * as FifoPermits from "../../src/internal/fifoPermits.js"

// Forks `self` and returns once it is waiting (or running): forks run in order.
const forkAndSettle = <A, E>(self: Effect.Effect<A, E>) => Effect.tap(Effect.fork(self), () => Effect.yieldNow())

// A single permit, held by `holder` until `open` runs.
const heldPermit = Effect.gen(function*() {
  const permits = yield* FifoPermits.make(1)
  const gate = yield* Deferred.make<void>()
  const holder = yield* forkAndSettle(permits.withPermit(Deferred.await(gate)))
  return { permits, holder, open: Deferred.succeed(gate, undefined) }
})

describe("FifoPermits", () => {
  it.effect("runs at most `permits` at once and lets every caller through", () =>
    Effect.gen(function*() {
      const permits = yield* FifoPermits.make(16)
      const running = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const work = Effect.gen(function*() {
        const now = yield* Ref.updateAndGet(running, (n) => n + 1)
        yield* Ref.update(peak, (p) => Math.max(p, now))
        yield* Effect.yieldNow()
        yield* Ref.update(running, (n) => n - 1)
      })
      yield* Effect.forEach(Array.from({ length: 1_000 }), () => permits.withPermit(work), {
        concurrency: "unbounded",
        discard: true
      })
      expect(yield* Ref.get(peak)).toBe(16)
      expect(yield* Ref.get(running)).toBe(0)
    }))

  it.effect("hands a released permit to the oldest waiter", () =>
    Effect.gen(function*() {
      const { holder, open, permits } = yield* heldPermit
      const order = yield* Ref.make<ReadonlyArray<number>>([])
      const waiters = yield* Effect.forEach([1, 2, 3, 4, 5], (n) =>
        forkAndSettle(permits.withPermit(Ref.update(order, (seen) => [...seen, n]))))
      yield* open
      yield* Fiber.join(holder)
      yield* Effect.forEach(waiters, Fiber.join, { discard: true })
      expect(yield* Ref.get(order)).toEqual([1, 2, 3, 4, 5])
    }))

  it.effect("an interrupted waiter leaves the line without taking a permit", () =>
    Effect.gen(function*() {
      const { holder, open, permits } = yield* heldPermit
      const leaving = yield* forkAndSettle(permits.withPermit(Effect.succeed("leaving ran")))
      const staying = yield* forkAndSettle(permits.withPermit(Effect.succeed("staying ran")))
      expect(Exit.isInterrupted(yield* Fiber.interrupt(leaving))).toBe(true)
      yield* open
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(staying)).toBe("staying ran")
      // The single permit is free again.
      expect(yield* permits.withPermit(Effect.succeed("after"))).toBe("after")
    }))

  it.effect("a waiter interrupted as the permit reaches it passes the permit on", () =>
    Effect.gen(function*() {
      const { holder, open, permits } = yield* heldPermit
      const started = yield* Ref.make(false)
      const handedTo = yield* forkAndSettle(permits.withPermit(Ref.set(started, true)))
      const next = yield* forkAndSettle(permits.withPermit(Effect.succeed("next ran")))
      // The holder releases (handing the permit to `handedTo`) during this
      // yield; `handedTo` is interrupted before it gets to run.
      yield* open
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(handedTo)
      expect(yield* Ref.get(started)).toBe(false)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(next)).toBe("next ran")
      expect(yield* permits.withPermit(Effect.succeed("after"))).toBe("after")
    }))

  it.effect("a failing or interrupted holder returns its permit", () =>
    Effect.gen(function*() {
      const permits = yield* FifoPermits.make(1)
      expect(Exit.isFailure(yield* Effect.exit(permits.withPermit(Effect.fail("boom"))))).toBe(true)
      const holder = yield* forkAndSettle(permits.withPermit(Effect.never))
      yield* Fiber.interrupt(holder)
      expect(yield* permits.withPermit(Effect.succeed("after"))).toBe("after")
    }))
})
