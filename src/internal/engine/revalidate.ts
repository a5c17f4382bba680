/**
 * Keeping every replica on the store's records: change messages adopted as
 * they come, and a periodic re-validation for what the messages missed.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Option, Schedule, Stream } from "effect"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { mask, type TokenRecord } from "../../Token.js"
import { isSameRecord, replaces, type StoreError, type TokenStoreShape } from "../../TokenStore.js"
import * as Cell from "./cell.js"
import type { Fetch } from "./fetch.js"
import type { Owners } from "./owners.js"

// Credentials a pass reads from the store at once: one round trip each.
const BATCH = 1_000

// The longest a replica goes without comparing every credential it holds,
// whatever the mark says.
const FULL_PASS_MAX = Duration.toMillis(Duration.minutes(30))

/** @internal */
export interface WatchedStore {
  /** How many writes the store refused so far: each may have left it behind this replica. */
  readonly refusedWrites: () => number
}

/**
 * `store` with its refused writes counted, for re-validation to tell that
 * the store may lack what this replica holds.
 *
 * @internal
 */
export const watchWrites = <S extends Pick<TokenStoreShape, "set">>(store: S): S & WatchedStore => {
  let refused = 0
  return {
    ...store,
    set: (record) =>
      Effect.tapError(store.set(record), () =>
        Effect.sync(() => {
          refused += 1
        })),
    refusedWrites: () => refused
  }
}

/**
 * What start-up read of the store: when it began, and the store's changes
 * mark then (`undefined`: unread, or a store without one).
 *
 * @internal
 */
export interface StartUpRead {
  readonly at: number
  readonly mark: number | undefined
}

/** @internal */
export const make = (
  store: Pick<TokenStoreShape, "get" | "getMany" | "set" | "changes" | "changesMark"> & Partial<WatchedStore>,
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
  //
  // `stored` is the store's record of `cell`, read just before; a pass
  // reads a batch of them at once (`getMany`), in this one fiber.
  const reconcile = (cell: Cell.Cell, stored: TokenRecord | undefined): Effect.Effect<void, StoreError> =>
    Effect.gen(function*() {
      const held = cell.held
      if (held === undefined || !owners.live(cell)) return
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

  // The store's records of `cells`, in one read when the store can; else
  // `get` each, a few at a time.
  const storedOf = (cells: ReadonlyArray<Cell.Cell>) =>
    store.getMany !== undefined
      ? store.getMany(cells.map((cell) => cell.key))
      : Effect.forEach(cells, (cell) => store.get(cell.key), { concurrency: 16 })

  const watchedCells = () =>
    Array.from(owners.cells()).filter((cell) => cell.spec.overlap !== "stable" && cell.held !== undefined)

  // A pass compares every held credential only when the store may hold
  // what this replica missed: its changes mark moved or could not be read,
  // a write of this replica's was refused, the previous pass failed, or
  // `FULL_PASS_MAX` went by without one (writes that move no mark: a
  // replica of an earlier version, a key deleted or evicted by hand).
  // Otherwise the store holds nothing this replica was not told of, and a
  // pass compares only the credentials due before the next two: what a
  // refresh is about to read the lease over.
  //
  // Start-up's reads (`read`) count as a full pass made when they began: a
  // replica that just read a million records from the store does not read
  // them all again before anything could have changed.
  const revalidate = (read?: StartUpRead): Effect.Effect<never> =>
    Effect.gen(function*() {
      // The period follows the count of the previous pass, or of what start-up started.
      let held = read === undefined ? 0 : watchedCells().length
      let markBefore = read?.mark
      let refusedBefore = store.refusedWrites?.() ?? 0
      let fullAt = read?.at ?? Number.NEGATIVE_INFINITY
      for (;;) {
        const period = RefreshPolicy.revalidationMillis(held)
        yield* Effect.sleep(Duration.millis(period))
        const now = yield* Clock.currentTimeMillis
        const mark = store.changesMark === undefined
          ? undefined
          : Option.getOrUndefined(yield* Effect.option(store.changesMark))
        const refused = store.refusedWrites?.() ?? 0
        const quiet = mark !== undefined && mark === markBefore && refused === refusedBefore &&
          now - fullAt < FULL_PASS_MAX
        const watched = watchedCells()
        held = watched.length
        const dueBy = now + 2 * period
        const compared = quiet ? watched.filter((cell) => cell.held!.record.refreshAt <= dueBy) : watched
        let failures = 0
        let detail = ""
        for (let from = 0; from < compared.length; from += BATCH) {
          const batch = compared.slice(from, from + BATCH)
          const stored = yield* Effect.either(storedOf(batch))
          if (Either.isLeft(stored)) {
            failures += batch.length
            detail = stored.left.message
            continue
          }
          for (const [index, cell] of batch.entries()) {
            const record = Option.getOrUndefined(stored.right[index]!)
            // Most are the same record: only the others cost an Effect.
            if (record !== undefined && cell.held !== undefined && isSameRecord(record, cell.held.record)) continue
            const reconciled = yield* Effect.either(reconcile(cell, record))
            if (Either.isLeft(reconciled)) {
              failures += 1
              detail = reconciled.left.message
            }
          }
        }
        markBefore = failures === 0 ? mark : undefined
        refusedBefore = refused
        if (!quiet && failures === 0) fullAt = now
        if (failures > 0) {
          yield* Effect.logWarning("token store unavailable; re-validation will try again").pipe(
            Effect.annotateLogs({ credentials: failures, detail })
          )
        }
      }
    })

  return { followChanges, revalidate }
}
