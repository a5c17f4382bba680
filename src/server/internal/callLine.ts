/**
 * The proxy's line of upstream calls per owner: at most `permits` in flight,
 * the others waiting first come, first served, each only until its deadline.
 *
 * Why not `FifoPermits` with `Effect.timeout` around it: the proxy takes a
 * place in line on every call, and there a `Deferred`, an uninterruptible
 * mask and a forked, raced timeout cost ~100 µs of CPU (measured), most of a
 * millisecond budget. Here a free permit is a counter decrement, and only a
 * caller that has to wait sets a timer.
 */
import { Data, Effect } from "effect"

/** The deadline passed while the call was still waiting in line. */
export class LineTimedOut extends Data.TaggedError("LineTimedOut") {}

export interface CallLine {
  /**
   * Runs `self` holding a permit, waiting in line for one while none is free,
   * until `deadlineAt` (`performance.now()` time). A wait the caller gives up
   * (interruption) leaves the line; a permit handed over meanwhile passes on.
   */
  readonly withPermit: <A, E, R>(
    self: Effect.Effect<A, E, R>,
    deadlineAt: number
  ) => Effect.Effect<A, E | LineTimedOut, R>
}

interface Waiter {
  granted: boolean
  readonly grant: () => void
}

export const make = (permits: number): CallLine => {
  let free = permits
  const waiters: Array<Waiter> = []
  const release = () => {
    const next = waiters.shift()
    if (next === undefined) free += 1
    else next.grant()
  }
  const acquire = (deadlineAt: number): Effect.Effect<void, LineTimedOut> =>
    Effect.suspend(() => {
      if (free > 0) {
        free -= 1
        return Effect.void
      }
      return Effect.async<void, LineTimedOut>((resume) => {
        const waiter: Waiter = {
          granted: false,
          grant: () => {
            clearTimeout(timer)
            waiter.granted = true
            resume(Effect.void)
          }
        }
        const leave = () => {
          const index = waiters.indexOf(waiter)
          if (index !== -1) waiters.splice(index, 1)
        }
        // A Node timer, not an Effect one: see the module comment; the
        // deadline is the caller's socket-level one, as for the body.
        const timer = setTimeout(() => {
          leave()
          resume(Effect.fail(new LineTimedOut()))
        }, Math.max(0, deadlineAt - performance.now()))
        waiters.push(waiter)
        return Effect.sync(() => {
          clearTimeout(timer)
          if (waiter.granted) release()
          else leave()
        })
      })
    })
  return {
    withPermit: (self, deadlineAt) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(acquire(deadlineAt)),
          Effect.ensuring(restore(self), Effect.sync(release))
        )
      )
  }
}
