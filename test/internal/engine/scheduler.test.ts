import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as Scheduler from "../../../src/internal/engine/scheduler.js"
import { APP, families, makeIssuer, record, TOKEN } from "./fixtures.js"

const family = families(makeIssuer())[0]
const cellOf = (owner: string, held?: Cell.Held) =>
  Cell.make({ appId: owner as typeof APP, kind: TOKEN }, family.kinds[0], family, owner, held)

// Runs the scheduler with a job that logs each start and answers `next(cell)`.
const running = (
  scheduler: Scheduler.Scheduler,
  next: (cell: Cell.Cell) => number,
  live: (cell: Cell.Cell) => boolean = () => true
) =>
  Effect.gen(function*() {
    const started: Array<string> = []
    const scope = yield* Effect.scope
    yield* Effect.forkIn(
      scheduler.run((cell) => Effect.sync(() => (started.push(cell.key.appId), next(cell))), live, scope),
      scope
    )
    return started
  })

describe("engine scheduler", () => {
  it.scoped("starts each cell when it is due, in due order, and queues it again when its job says", () =>
    Effect.gen(function*() {
      const scheduler = Scheduler.make({ maxJobs: 4, marginMillis: 300_000, owns: () => true })
      const [a, b] = [cellOf("a"), cellOf("b")]
      // `a`'s jobs answer 10 s, then 20 s: each a time still ahead when it ends.
      let runsOfA = 0
      const started = yield* running(scheduler, (cell) => cell === a ? ++runsOfA * 10_000 : Number.POSITIVE_INFINITY)
      scheduler.schedule(b, 2_000)
      scheduler.schedule(a, 1_000)
      yield* TestClock.adjust(1_500)
      expect(started).toEqual(["a"])
      yield* TestClock.adjust(1_000)
      expect(started).toEqual(["a", "b"])
      yield* TestClock.adjust(8_000)
      expect(started).toEqual(["a", "b", "a"])
    }))

  it.scoped("a cell queued ahead of the one it sleeps for wakes it; a removed or dead cell is not started again", () =>
    Effect.gen(function*() {
      const scheduler = Scheduler.make({ maxJobs: 4, marginMillis: 300_000, owns: () => true })
      const [a, b] = [cellOf("a"), cellOf("b")]
      const dead = new Set<Cell.Cell>()
      const started = yield* running(scheduler, () => 60_000, (cell) => !dead.has(cell))
      scheduler.schedule(a, 50_000)
      yield* TestClock.adjust(1)
      dead.add(b)
      scheduler.schedule(b, 10)
      yield* TestClock.adjust(20)
      expect(started).toEqual(["b"])
      scheduler.remove(a)
      yield* TestClock.adjust(120_000)
      expect(started).toEqual(["b"])
    }))

  it.scoped("paces due refreshes to the budget of the rate it expects, deferring the rest to the next second", () =>
    Effect.gen(function*() {
      const scheduler = Scheduler.make({ maxJobs: 64, marginMillis: 300_000, owns: () => true })
      // Ten credentials, all due at 1 s, each usable for long after: a rate of ~10 / 7,000 s makes a budget of 1.
      const cells = Array.from({ length: 10 }, (_, index) => {
        const cell = cellOf(
          `owner-${index}`,
          Cell.toHeld(record({ value: `v${index}`, fetchedAt: 0, refreshAt: 1_000 }))
        )
        scheduler.expect(cell.held, 1)
        return cell
      })
      const started = yield* running(scheduler, () => Number.POSITIVE_INFINITY)
      for (const cell of cells) scheduler.schedule(cell, 1_000)
      yield* TestClock.adjust(1_000)
      expect(started.length).toBe(1)
      yield* TestClock.adjust(1_000)
      expect(started.length).toBe(2)
      yield* TestClock.adjust(8_000)
      expect(started.length).toBe(10)
    }))

  it.scoped("a first fetch is never deferred by pacing", () =>
    Effect.gen(function*() {
      const scheduler = Scheduler.make({ maxJobs: 64, marginMillis: 300_000, owns: () => true })
      const started = yield* running(scheduler, () => Number.POSITIVE_INFINITY)
      for (let index = 0; index < 10; index++) scheduler.schedule(cellOf(`owner-${index}`), 0)
      yield* TestClock.adjust(1)
      expect(started.length).toBe(10)
    }))

  it.scoped("jobs that end before the loop sleeps do not leave it asleep with every slot free", () =>
    Effect.gen(function*() {
      // One slot, ten cells due at once, each job ending at once (as one
      // failing fast from memory does): every slot freed wakes the loop,
      // even when the job ended before the loop's sleep began.
      const scheduler = Scheduler.make({ maxJobs: 1, marginMillis: 300_000, owns: () => true })
      const started = yield* running(scheduler, () => Number.POSITIVE_INFINITY)
      for (let index = 0; index < 10; index++) scheduler.schedule(cellOf(`owner-${index}`), 0)
      yield* TestClock.adjust(1)
      expect(started.length).toBe(10)
    }))
})
