/**
 * Keeping every replica on the store's records: change messages adopted as
 * they come, and a periodic re-validation for what the messages missed.
 *
 * @internal
 */
import { Duration, Effect, Option, Schedule, Stream } from "effect"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { mask } from "../../Token.js"
import { isSameRecord, replaces, type StoreError, type TokenStoreShape } from "../../TokenStore.js"
import * as Cell from "./cell.js"
import type { Fetch } from "./fetch.js"
import type { Owners } from "./owners.js"

/** @internal */
export const make = (
  store: Pick<TokenStoreShape, "get" | "set" | "changes">,
  owners: Owners,
  fetch: Pick<Fetch, "adopt">
) => {
  // Records written by other replicas replace ours as soon as the store says so.
  const followChanges = store.changes.pipe(
    Stream.runForEach((record) => {
      const cell = owners.started(record.appId, record.kind)
      const family = owners.declared(record.kind)?.family
      const presence = family?.dynamic !== undefined && family.dynamic.presence === record.kind &&
        family.dynamic.accepts(record.appId)
      if (!presence) return cell === undefined ? Effect.void : fetch.adopt(cell, record)
      // Another replica admitted or retired a dynamic owner.
      if (record.retired === true) return cell === undefined ? Effect.void : owners.stop(record.appId, family, record)
      return cell === undefined ? owners.admit(record.appId, family, record) : fetch.adopt(cell, record)
    }),
    Effect.retry(Schedule.spaced(Duration.seconds(1)))
  )

  // Change messages can be missed, and a store that lost its data or
  // refused writes holds less than the replicas do. So every
  // `RefreshPolicy.revalidationMillis`, each credential whose next fetch
  // kills the held one is compared with the store's record: the store's is
  // taken (`adopt`) unless the held one replaces it, and then the held one
  // is written back, so a replica starting on an emptied store finds it
  // instead of fetching a token that kills it.
  const reconcile = (cell: Cell.Cell): Effect.Effect<void, StoreError> =>
    Effect.gen(function*() {
      const held = cell.held
      if (held === undefined || !owners.live(cell)) return
      const stored = Option.getOrUndefined(yield* store.get(cell.key))
      if (stored !== undefined && isSameRecord(stored, held.record)) return
      const writeBack = stored === undefined || replaces(held.record, stored)
      const winner = writeBack ? yield* store.set(held.record) : stored
      if (writeBack) {
        yield* Effect.logWarning("token store lacked the token held here; wrote it back").pipe(
          Effect.annotateLogs({ generation: held.record.generation })
        )
      }
      if (!isSameRecord(winner, held.record)) {
        yield* fetch.adopt(cell, winner)
        yield* Effect.logInfo("token store holds another token; serving it").pipe(
          Effect.annotateLogs({ token: mask(winner.value), generation: winner.generation })
        )
      }
    }).pipe(Cell.annotate(cell))

  const revalidate: Effect.Effect<never> = Effect.gen(function*() {
    // The period follows the count of the previous pass (none before the first).
    let watched: Array<Cell.Cell> = []
    for (;;) {
      yield* Effect.sleep(Duration.millis(RefreshPolicy.revalidationMillis(watched.length)))
      watched = Array.from(owners.cells()).filter((cell) => cell.spec.overlap !== "stable" && cell.held !== undefined)
      let failures = 0
      let detail = ""
      yield* Effect.forEach(
        watched,
        (cell) =>
          Effect.catchTag(reconcile(cell), "StoreError", (error) =>
            Effect.sync(() => {
              failures += 1
              detail = error.message
            })),
        { concurrency: 16, discard: true }
      )
      if (failures > 0) {
        yield* Effect.logWarning("token store unavailable; re-validation will try again").pipe(
          Effect.annotateLogs({ credentials: failures, detail })
        )
      }
    }
  })

  return { followChanges, revalidate }
}
