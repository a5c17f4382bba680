/**
 * The scheduler's job for one due cell: refreshes it when this replica owns
 * it (`Shares`), or fetches past a contest; for a cell another replica
 * owns, picks up that replica's refresh from the store and looks again
 * later (`RefreshPolicy.sharedTurn`). Answers when the cell is due next.
 *
 * @internal
 */
import { Clock, Duration, Effect } from "effect"
import * as Backoff from "../../Backoff.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import * as Cell from "./cell.js"
import type { Fetch } from "./fetch.js"
import type { Shares } from "./shares.js"

const TTL_MILLIS = Duration.toMillis(RefreshPolicy.REPLICA_TTL)

/** @internal */
export const make = (fetch: Pick<Fetch, "adopt" | "newest" | "scheduledFlight">, shares: Pick<Shares, "owns">) => {
  // Another replica's turn. Its refresh normally arrives as a change
  // message; the store is read only once the owner had a replica's lifetime
  // to write it (a message can be lost), or while nothing is held yet.
  const lookAgain = (cell: Cell.Cell, now: number, at: number): Effect.Effect<number> =>
    Effect.gen(function*() {
      const held = cell.held
      if (held !== undefined && now - held.record.refreshAt < TTL_MILLIS) return at
      const newest = yield* fetch.newest(cell)
      if (newest !== undefined && newest !== held?.record) yield* fetch.adopt(cell, newest)
      const refreshAt = cell.held?.record.refreshAt
      return refreshAt !== undefined && refreshAt > now ? refreshAt : at
    })

  return (cell: Cell.Cell): Effect.Effect<number> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const held = cell.held
      const contested = cell.contested
      if (held !== undefined && now < held.record.refreshAt && contested === undefined) return held.record.refreshAt
      if (contested === undefined) {
        const at = RefreshPolicy.sharedTurn({ owned: shares.owns(cell, now), now, held: held?.record })
        if (at !== undefined) return yield* lookAgain(cell, now, at)
      }
      const demand = contested === undefined ? RefreshPolicy.scheduled : RefreshPolicy.settling(contested)
      return yield* fetch.scheduledFlight(cell, demand).pipe(
        Effect.tap(() => Effect.sync(() => Cell.settle(cell, contested))),
        Effect.zipRight(Clock.currentTimeMillis),
        // A contest seen during this job is settled at once.
        Effect.map((now) => cell.contested === undefined ? cell.held?.record.refreshAt ?? now : now),
        // The next attempt comes when the backoff of the failure allows it.
        Effect.catchAll((error) =>
          Effect.map(Clock.currentTimeMillis, (now) =>
            Backoff.nextAttemptAt({
              now,
              retryAt: cell.lastFailure?.retryAt,
              coolsDown: Cell.coolsDown(cell, error),
              failure: Cell.failureClass(cell, error)
            }))
        )
      )
    })
}
