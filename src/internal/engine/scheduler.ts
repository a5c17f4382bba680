/**
 * One scheduler for every cell: the due queue holds each cell's next
 * refresh time, and one fiber sleeps until the first is due (or until a
 * cell is queued ahead of it), then starts a refresh job per due cell, at
 * most `maxJobs` at a time. An idle credential costs its queue slot, no
 * fiber. A job answers when its cell is due next (its new `refreshAt`, or
 * after a failure's pause) and is queued again then. Upstream calls stay
 * bounded by the engine's permits; the job bound only keeps a cold start of
 * 100,000 from forking 100,000 fibers to wait for them.
 *
 * @internal
 */
import { Clock, Duration, Effect, type Scope } from "effect"
import * as Pacing from "../../Pacing.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import * as DueQueue from "../dueQueue.js"
import type { Cell, Held } from "./cell.js"

/** @internal */
export interface Scheduler {
  /** Queues `cell` at `at`, or moves it there. */
  readonly schedule: (cell: Cell, at: number) => void
  readonly remove: (cell: Cell) => void
  /** A live cell took (`1`) or gave up (`-1`) `held`: the pacing's expected rate follows. */
  readonly expect: (held: Held | undefined, sign: 1 | -1) => void
  /**
   * The scheduler's loop, forked into `scope`: `job` refreshes a due cell and
   * answers when it is due next; a cell no longer `live` is not queued again.
   */
  readonly run: (
    job: (cell: Cell) => Effect.Effect<number>,
    live: (cell: Cell) => boolean,
    scope: Scope.Scope
  ) => Effect.Effect<never>
}

/** @internal */
export const make = (options: {
  readonly maxJobs: number
  readonly marginMillis: number
  /** Whether this replica refreshes `cell` (`Shares.owns`): only its own refreshes count in the pacing. */
  readonly owns: (cell: Cell, now: number) => boolean
}): Scheduler => {
  const due = DueQueue.make<Cell>()
  let jobs = 0
  let wake: (() => void) | undefined
  let sleepingUntil = Number.POSITIVE_INFINITY
  // A wake-up asked for while the loop is not asleep is kept until it next
  // sleeps, which then ends at once: a job can end (one failing fast from
  // memory does at once) before the loop's sleep has begun, and with every
  // job slot taken that sleep has no deadline.
  let wakePending = false
  const wakeUp = (): void => {
    if (wake !== undefined) wake()
    else wakePending = true
  }

  const schedule = (cell: Cell, at: number): void => {
    due.set(cell, at)
    if (at < sleepingUntil) wakeUp()
  }

  // Pacing. Each credential refreshes at its own phase plus a fresh jitter
  // each cycle, so the refreshes due in one second are a Poisson count:
  // its busiest second of a day holds 2–5 × the mean. The scheduler starts
  // at most `Pacing.pacingBudget` of them per second of the clock
  // (about twice the mean, reasoning there) and moves the rest to the next
  // second, in the queue: no fiber, no polling. The mean is what the
  // engine holds, Σ 1 / cycle over the live cells' records, kept as a sum
  // that every change of a held record or of the cells adjusts in O(1);
  // counting the refreshes that actually happened would lag a cold start
  // or a wave of new owners by a whole cycle.
  let expectedPerSecond = 0
  let window = Pacing.emptyWindow

  const expect = (held: Held | undefined, sign: 1 | -1): void => {
    if (held !== undefined) {
      expectedPerSecond += sign * 1_000 / Pacing.cycleMillis(held.record, options.marginMillis)
    }
  }

  // Counts the job in this second's starts; false when it must wait for the
  // next second. A job that only re-queues a cell, or leaves its refresh to
  // another replica, is not counted.
  const startsNow = (cell: Cell, now: number): boolean => {
    const held = cell.held?.record
    if (!Pacing.refreshes(held, now)) return true
    if (RefreshPolicy.sharedTurn({ owned: options.owns(cell, now), now, held }) !== undefined) return true
    const admitted = Pacing.admit(
      window,
      now,
      expectedPerSecond,
      Pacing.mayWait(held, cell.lastFailure !== undefined, now)
    )
    if (admitted === undefined) return false
    window = admitted
    return true
  }

  // Wakes at `until`, or as soon as `wake` is called.
  const sleepUntil = (until: number, now: number): Effect.Effect<void> =>
    Effect.raceFirst(
      until === Number.POSITIVE_INFINITY ? Effect.never : Effect.sleep(Duration.millis(until - now)),
      Effect.async<void>((resume) => {
        if (wakePending) {
          wakePending = false
          return resume(Effect.void)
        }
        sleepingUntil = until
        wake = () => {
          wake = undefined
          resume(Effect.void)
        }
        return Effect.sync(() => {
          wake = undefined
        })
      })
    ).pipe(Effect.ensuring(Effect.sync(() => {
      sleepingUntil = Number.POSITIVE_INFINITY
      wake = undefined
    })))

  const run: Scheduler["run"] = (job, live, scope) => {
    const started = (cell: Cell): Effect.Effect<void> =>
      job(cell).pipe(
        Effect.flatMap((at) =>
          Effect.sync(() => {
            if (live(cell)) schedule(cell, at)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          const wasFull = jobs >= options.maxJobs
          jobs -= 1
          if (wasFull) wakeUp()
        }))
      )
    return Effect.gen(function*() {
      for (;;) {
        // This pass reads the queue and the job count afresh.
        wakePending = false
        const now = yield* Clock.currentTimeMillis
        let first = due.first()
        while (first !== undefined && first.due <= now && jobs < options.maxJobs) {
          if (startsNow(first, now)) {
            due.pop()
            jobs += 1
            yield* Effect.forkIn(started(first), scope)
          } else {
            due.set(first, Pacing.nextSecond(now))
          }
          first = due.first()
        }
        yield* sleepUntil(jobs >= options.maxJobs || first === undefined ? Number.POSITIVE_INFINITY : first.due, now)
      }
    })
  }

  return { schedule, remove: due.remove, expect, run }
}
