/**
 * A clock and a fiber scheduler of the simulation's own, for scenarios that
 * run the real engine over simulated hours (`spread`, `shared`).
 *
 * Why not `TestClock`: its `adjust` waits for every fiber to suspend by
 * polling with `setTimeout(0)` around each sleep it ends, 5–20 ms per
 * wake-up of the scheduler on this machine, and a day of 100,000 credentials
 * wakes it about a million times. Here the engine runs on this clock and
 * scheduler (`Effect.withClock`, `runFork`'s `scheduler`): a sleep is an
 * entry in a queue by wake time, the driver ends each in order, and in
 * between runs the fibers' queued steps until none is left, synchronously.
 * Nothing else moves time, so a run is deterministic (with a seeded
 * `Random`), like `TestClock`, and costs only the engine's own work.
 */
import { Duration, Effect } from "effect"
import type { Clock, Scheduler } from "effect"
import { ClockTypeId } from "effect/Clock"
import * as DueQueue from "../src/internal/dueQueue.js"

// Fibers' steps, run when the driver says: FIFO, never yielding to the event loop.
export const makeScheduler = () => {
  const tasks: Array<Scheduler.Task> = []
  let next = 0
  const scheduler: Scheduler.Scheduler = {
    // A fiber runs until it waits: the simulation has no other work to let in.
    shouldYield: () => false,
    scheduleTask: (task) => {
      tasks.push(task)
    }
  }
  // Steps run are dropped as it goes: a cold start of a million runs in one
  // drain, and an array kept whole until its end held every step's fiber.
  const drain = () => {
    while (next < tasks.length) {
      tasks[next++]!()
      if (next >= 65_536 && next * 2 >= tasks.length) {
        tasks.splice(0, next)
        next = 0
      }
    }
    tasks.length = 0
    next = 0
  }
  return { scheduler, drain }
}

interface Sleeper extends DueQueue.Entry {
  readonly wake: () => void
}

// Time moves only when the driver ends a sleep.
export const makeClock = (start = 0) => {
  let now = start
  const sleepers = DueQueue.make<Sleeper>()
  const clock: Clock.Clock = {
    [ClockTypeId]: ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: (duration) =>
      Effect.async<void>((resume) => {
        const sleeper: Sleeper = { due: 0, slot: -1, wake: () => resume(Effect.void) }
        sleepers.set(sleeper, now + Duration.toMillis(duration))
        return Effect.sync(() => sleepers.remove(sleeper))
      })
  }
  // Ends every sleep due by `until`, in order, running what each wakes before the next.
  const advance = (until: number, drain: () => void) => {
    drain()
    for (let first = sleepers.first(); first !== undefined && first.due <= until; first = sleepers.first()) {
      sleepers.pop()
      now = Math.max(now, first.due)
      first.wake()
      drain()
    }
    now = until
  }
  return { clock, advance }
}
