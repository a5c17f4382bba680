/**
 * Getting a cell a credential: from memory when what it holds meets the
 * demand, else one fetch shared by every caller (single-flight) behind the
 * store's cross-replica lease, failing fast while a failure cools down, and
 * adopting whatever record the store holds newer than its own.
 *
 * @internal
 */
import { Clock, Duration, Effect, Metric, MetricLabel, Option, Random, type Scope } from "effect"
import { type AccessTokenError, type Credential, failureCause } from "../../AccessToken.js"
import type { Issued } from "../../CredentialFamily.js"
import * as Pacing from "../../Pacing.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { mask, TokenRecord } from "../../Token.js"
import * as TokenMetrics from "../../TokenMetrics.js"
import { isContested, keyString, replaces, type StoreError, type TokenStoreShape } from "../../TokenStore.js"
import * as SingleFlight from "../singleFlight.js"
import * as Cell from "./cell.js"
import type { Owners } from "./owners.js"
import type { Scheduler } from "./scheduler.js"

/** @internal */
export interface FetchOptions {
  readonly leaseMillis: number
  readonly leasePollMillis: number
  readonly marginMillis: number
  /** What the cell's issuer answers; `force`: a replacement of a rejected value, budget spent. */
  readonly issue: (cell: Cell.Cell, force: boolean) => Effect.Effect<Issued, AccessTokenError>
}

/** @internal */
export const make = (
  store: TokenStoreShape,
  owners: Pick<Owners, "hold" | "live" | "size">,
  scheduler: Pick<Scheduler, "schedule">,
  options: FetchOptions
) =>
  Effect.gen(function*() {
    const flights = yield* SingleFlight.make<string, Cell.Held, AccessTokenError>()
    const leasePoll = Duration.millis(options.leasePollMillis)
    const heldOf = (cell: Cell.Cell): Effect.Effect<Cell.Held | undefined> => Effect.sync(() => cell.held)

    // The metric labels of a fetch, one array per app label and kind: a
    // metric updated under labels (the runtime's fiber metrics too, for
    // every fiber the call forks) finds its labelled key by the array's
    // identity, and a new array for each fetch made every update build and
    // hash a new key.
    const labels = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
    const labelsOf = (cell: Cell.Cell): ReadonlyArray<MetricLabel.MetricLabel> => {
      const name = `${cell.label}/${cell.key.kind}`
      const known = labels.get(name)
      if (known !== undefined) return known
      const made = [MetricLabel.make("app", cell.label), MetricLabel.make("kind", cell.key.kind)]
      labels.set(name, made)
      return made
    }

    // `record` comes from the store (read, a change message, a compare-and-set
    // winner): the cell takes it unless what it holds replaces it. A record
    // contested with the held one is taken too, so every replica follows the
    // store, and (for kinds whose next fetch kills the held token) the cell
    // is queued to fetch past both: nobody knows which one WeChat kept.
    const adopt = (cell: Cell.Cell, record: TokenRecord): Effect.Effect<Cell.Held> =>
      Effect.sync(() => {
        const held = cell.held
        if (held === undefined || replaces(record, held.record)) return owners.hold(cell, Cell.toHeld(record))
        if (!isContested(record, held.record)) return held
        if (cell.spec.overlap !== "stable" && owners.live(cell)) {
          Cell.contest(cell, [held.record, record])
          scheduler.schedule(cell, 0)
        }
        return owners.hold(cell, Cell.toHeld(record))
      })

    // The newest of what this process holds and what the store holds (the
    // store's when they are contested). A store that is down never stops the
    // engine: it keeps the credential in memory.
    const newest = (cell: Cell.Cell): Effect.Effect<TokenRecord | undefined> =>
      Effect.all([heldOf(cell), store.get(cell.key)]).pipe(
        Effect.map(([held, stored]) => {
          const fromStore = Option.getOrUndefined(stored)
          if (held === undefined || fromStore === undefined) return fromStore ?? held?.record
          return replaces(held.record, fromStore) ? held.record : fromStore
        }),
        Effect.catchTag("StoreError", (error) =>
          Effect.logWarning("token store unreadable; using the token held in memory", error.message).pipe(
            Cell.annotate(cell),
            Effect.zipRight(heldOf(cell)),
            Effect.map((held) =>
              held?.record
            )
          ))
      )

    // A cold start's herd refreshes first at a random point of its lifetime (`Pacing.herdSpread`).
    const spreadIfHerd = (record: TokenRecord, current: TokenRecord | undefined, requestedAt: number) => {
      const spread = Pacing.herdSpread({
        record,
        requestedAt,
        firstFetch: current === undefined,
        credentials: owners.size()
      })
      return spread === undefined
        ? Effect.succeed(record)
        : Effect.map(Random.next, (draw) =>
          // Only the refresh time of a record just validated changes.
          new TokenRecord({ ...record, refreshAt: Pacing.pointIn(spread, draw) }, true))
    }

    const fetchUpstream = (cell: Cell.Cell, demand: RefreshPolicy.Demand, current: TokenRecord | undefined) =>
      Effect.gen(function*() {
        // Every demand draws from the fetch bucket, a compare-and-refresh too:
        // tokens that die on use, each reported by its caller, would otherwise
        // spend the 2,000-a-day classic quota within the hour.
        yield* Cell.takeFetch(cell)
        const requestedAt = yield* Clock.currentTimeMillis
        const issued = yield* options.issue(cell, false)
        // The plain fetch answered the very value a caller saw rejected: only
        // a forced fetch replaces it, within the kind's budget.
        const rule = cell.spec.forceRefresh
        if (rule === undefined || issued.value !== demand.replaces) {
          const record = yield* Cell.newRecord(cell, issued, requestedAt, current, options.marginMillis)
          return yield* spreadIfHerd(record, current, requestedAt)
        }
        yield* Cell.spendForceRefresh(cell, rule)
        return yield* Cell.newRecord(cell, yield* options.issue(cell, true), requestedAt, current, options.marginMillis)
      }).pipe(
        Effect.tapBoth({
          onSuccess: () => Metric.increment(TokenMetrics.refreshes),
          onFailure: (error) => Metric.update(Metric.tagged(TokenMetrics.failures, "cause", failureCause(error)), 1)
        }),
        Effect.labelMetrics(labelsOf(cell))
      )

    // Takes the cross-replica lease. While another replica holds it, waits for
    // its credential to land in the store instead of fetching: in classic mode
    // two fetches would kill each other's tokens. A lapsed lease (its holder
    // died) is taken over on the next poll.
    const awaitLease = (
      cell: Cell.Cell,
      demand: RefreshPolicy.Demand
    ): Effect.Effect<Cell.Held | undefined, StoreError, Scope.Scope> =>
      store.lease(cell.key, options.leaseMillis).pipe(
        Effect.catchTag("StoreError", (error) =>
          Effect.all([heldOf(cell), Clock.currentTimeMillis]).pipe(
            Effect.flatMap(([held, now]) =>
              RefreshPolicy.defersOnStoreDown(
                  cell.spec.overlap,
                  held?.record,
                  now,
                  Duration.toMillis(Cell.reactionTo(cell, error).pause)
                )
                ? Effect.fail(error)
                : Effect.logWarning("token store unavailable; refreshing locally", error.message).pipe(Effect.as(true))
            )
          )),
        Effect.flatMap((leased) =>
          leased
            ? Effect.succeed(undefined)
            : Effect.sleep(leasePoll).pipe(
              Effect.zipRight(Effect.all([newest(cell), Clock.currentTimeMillis])),
              Effect.flatMap(([record, now]) =>
                record !== undefined && !demand.needsFetch(record, now) ? adopt(cell, record) : awaitLease(cell, demand)
              )
            )
        )
      )

    const fetchAndAdopt = (cell: Cell.Cell, demand: RefreshPolicy.Demand): Effect.Effect<Cell.Held, AccessTokenError> =>
      Effect.gen(function*() {
        const settled = yield* awaitLease(cell, demand)
        if (settled !== undefined) return settled
        // Another replica may have refreshed between our read and the lease.
        const current = yield* newest(cell)
        if (current !== undefined && !demand.needsFetch(current, yield* Clock.currentTimeMillis)) {
          return yield* adopt(cell, current)
        }
        const fetched = yield* fetchUpstream(cell, demand, current)
        // A durable input cannot be fetched again: nothing depending on it is
        // answered before the store holds it.
        const winner = cell.spec.storage === "durable" ? yield* store.set(fetched) : yield* store.set(fetched).pipe(
          Effect.catchTag("StoreError", (error) =>
            Effect.logWarning("token store unwritable; serving the new token from memory", error.message).pipe(
              Effect.as(fetched)
            ))
        )
        const held = yield* adopt(cell, winner)
        // Its annotations are made only when info lines are logged.
        yield* Effect.suspend(() =>
          Effect.logInfo("token refreshed").pipe(
            Effect.annotateLogs({
              token: mask(held.record.value),
              generation: held.record.generation,
              expiresAt: new Date(held.record.expiresAt).toISOString()
            })
          )
        ).pipe(Effect.whenLogLevel("Info"))
        return held
      }).pipe(
        Effect.scoped,
        Effect.tapBoth({
          onSuccess: () =>
            Cell.succeeded(cell),
          onFailure: (error) =>
            Cell.failed(cell, error).pipe(
              Effect.zipRight(Effect.logWarning("token fetch failed", error.message)),
              Effect.annotateLogs({ cause: failureCause(error) })
            )
        }),
        Cell.annotate(cell)
      )

    // Any number of concurrent callers share one fetch, which runs in the
    // engine's scope: a caller that gives up does not cancel it for others.
    // After a failure, callers fail fast with it until the backoff allows
    // the next fetch: a cold start against a dead issuer asks no faster
    // than the schedule does.
    const flight = (
      cell: Cell.Cell,
      demand: RefreshPolicy.Demand,
      share: typeof flights.run
    ): Effect.Effect<Cell.Held, AccessTokenError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const cooling = Cell.coolingDown(cell, now)
        return cooling !== undefined
          ? Effect.fail(cooling)
          : share(keyString(cell.key), fetchAndAdopt(cell, demand))
      })
    const singleFlight = (cell: Cell.Cell, demand: RefreshPolicy.Demand) =>
      flight(cell, demand, flights.run)
    // A scheduled job (a fiber of the engine's scope, which never gives up on
    // its fetch) runs the fetch itself; callers join it as they would a forked one.
    const scheduledFlight = (cell: Cell.Cell, demand: RefreshPolicy.Demand) =>
      flight(cell, demand, flights.lead)

    // A fetch that found an input missing may have been under way when the
    // input was put: a caller that joined it asks once more (which fails
    // fast from memory while the input is still missing).
    const fetchFor = (cell: Cell.Cell, demand: RefreshPolicy.Demand): Effect.Effect<Cell.Held, AccessTokenError> =>
      singleFlight(cell, demand).pipe(
        Effect.catchIf((error) => !Cell.coolsDown(cell, error), () => singleFlight(cell, demand))
      )

    // The hot path: a valid credential is answered from memory with no I/O,
    // in as few Effect steps as it takes (bench/inProcess.ts measures it).
    const serve = (cell: Cell.Cell, demand: RefreshPolicy.Demand): Effect.Effect<Credential, AccessTokenError> =>
      Effect.clockWith((clock) => {
        const held = cell.held
        return held !== undefined && !demand.needsFetch(held.record, clock.unsafeCurrentTimeMillis())
          ? Effect.succeed(held.credential)
          : Effect.map(fetchFor(cell, demand), (fresh) => fresh.credential)
      })

    return { adopt, newest, scheduledFlight, serve, singleFlight }
  })

/** @internal */
export type Fetch = Effect.Effect.Success<ReturnType<typeof make>>
