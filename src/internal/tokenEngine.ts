/**
 * The credential engine's mechanics: per owner and kind, a cell holding the
 * current record, a single-flight fetch behind the store's lease, and a
 * fiber that keeps the record fresh. `TokenEngine` is its public face.
 *
 * @internal
 */
import {
  Clock,
  Duration,
  Effect,
  Either,
  FiberMap,
  Metric,
  Option,
  Random,
  Ref,
  Schedule,
  type Scope,
  Stream
} from "effect"
import { type AccessTokenError, type Credential, failureCause } from "../AccessToken.js"
import type { CredentialFamily, CredentialKindSpec, IssueContext, Issued } from "../CredentialFamily.js"
import type { OwnerId } from "../OwnerId.js"
import * as RefreshPolicy from "../RefreshPolicy.js"
import { type CredentialKind, isUsable, mask, TokenRecord, usableUntil } from "../Token.js"
import type { CredentialStatus, EngineOptions, TokenEngineShape } from "../TokenEngine.js"
import * as TokenMetrics from "../TokenMetrics.js"
import { keyString, type RecordKey, type StoreError, TokenStore } from "../TokenStore.js"
import { ForceRefreshBudgetExhausted, UnknownApp } from "../WeChatError.js"
import * as FifoPermits from "./fifoPermits.js"
import * as SingleFlight from "./singleFlight.js"

interface Failure {
  readonly error: AccessTokenError
  readonly at: number
}

interface Held {
  readonly record: TokenRecord
  readonly credential: Credential
}

const toHeld = (record: TokenRecord): Held => ({
  record,
  credential: { value: record.value, expiresAt: usableUntil(record) }
})

interface Cell {
  readonly key: RecordKey
  readonly spec: CredentialKindSpec
  readonly family: CredentialFamily
  // A plain field, not a `Ref`: the server's fast path reads it
  // synchronously (`peek`); every write is `adopt`, one synchronous step.
  held: Held | undefined
  readonly lastFailure: Ref.Ref<Failure | undefined>
  readonly forced: Ref.Ref<RefreshPolicy.ForceRefreshSpent>
}

const heldOf = (cell: Cell): Effect.Effect<Held | undefined> => Effect.sync(() => cell.held)

const reactionTo = (cell: Cell, error: AccessTokenError): RefreshPolicy.Reaction =>
  RefreshPolicy.reactions[RefreshPolicy.failureClass(error, cell.family.classify)]

/** @internal */
export const make = (
  families: readonly [CredentialFamily, ...Array<CredentialFamily>],
  options: EngineOptions = {}
): Effect.Effect<TokenEngineShape, never, TokenStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const scope = yield* Effect.scope
    const loops = yield* FiberMap.make<string>()
    const flights = yield* SingleFlight.make<string, Held, AccessTokenError>()
    const leaseMillis = options.leaseMillis ?? 15_000
    const leasePoll = Duration.millis(options.leasePollMillis ?? 100)
    const marginMillis = Duration.toMillis(options.refreshMargin ?? Duration.seconds(300))
    const upstreamPermits = yield* FifoPermits.make(options.maxConcurrentFetches ?? 16)
    const cells = new Map<string, Cell>()
    const kinds = new Map<CredentialKind, { readonly family: CredentialFamily; readonly spec: CredentialKindSpec }>()
    for (const family of families) {
      for (const spec of family.kinds) {
        if (kinds.has(spec.kind)) {
          return yield* Effect.dieMessage(`two credential families declare the kind ${spec.kind}`)
        }
        kinds.set(spec.kind, { family, spec })
      }
    }
    const defaultKind = families[0].kinds[0].kind
    const dynamicFamilies = families.filter((family) => family.dynamic !== undefined)
    // Dynamic owners admitted now, and those retired (with their tombstone) for `status`.
    const admitted = new Set<string>()
    const retired = new Map<string, { readonly family: CredentialFamily; readonly record: TokenRecord }>()

    const annotate = (cell: Cell) => Effect.annotateLogs({ app: cell.key.appId, kind: cell.key.kind })

    const adopt = (cell: Cell, record: TokenRecord): Effect.Effect<Held> =>
      Effect.sync(() => {
        const held = cell.held
        if (held !== undefined && held.record.generation >= record.generation) return held
        cell.held = toHeld(record)
        return cell.held
      })

    // The newest of what this process holds and what the store holds. A store
    // that is down never stops the engine: it keeps the credential in memory.
    const newest = (cell: Cell): Effect.Effect<TokenRecord | undefined> =>
      Effect.all([heldOf(cell), store.get(cell.key)]).pipe(
        Effect.map(([held, stored]) => {
          const fromStore = Option.getOrUndefined(stored)
          if (held === undefined) return fromStore
          return fromStore !== undefined && fromStore.generation > held.record.generation ? fromStore : held.record
        }),
        Effect.catchTag("StoreError", (error) =>
          Effect.logWarning("token store unreadable; using the token held in memory", error.message).pipe(
            Effect.zipRight(heldOf(cell)),
            Effect.map((held) =>
              held?.record
            )
          ))
      )

    const newRecord = (
      cell: Pick<Cell, "key" | "spec">,
      issued: Issued,
      requestedAt: number,
      current: TokenRecord | undefined
    ) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const { expiresAt, refreshAt } = RefreshPolicy.plan({
          overlap: cell.spec.overlap,
          marginMillis,
          requestedAt,
          value: issued.value,
          lifetimeMillis: issued.expiresInSeconds * 1000,
          held: current,
          draw: yield* Random.next
        })
        return new TokenRecord({
          appId: cell.key.appId,
          kind: cell.key.kind,
          value: issued.value,
          mode: cell.spec.overlap,
          fetchedAt: now,
          expiresAt,
          refreshAt,
          generation: (current?.generation ?? 0) + 1
        })
      })

    const spendForceRefresh = (cell: Cell, rule: RefreshPolicy.ForceRefreshRule) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const spent = RefreshPolicy.spend(rule, yield* Ref.get(cell.forced), now)
        if (Either.isLeft(spent)) {
          return yield* new ForceRefreshBudgetExhausted({ appId: cell.key.appId, nextAllowedAt: spent.left })
        }
        yield* Ref.set(cell.forced, spent.right)
      })

    const issue = (cell: Cell, force: boolean) => cell.spec.issue(contextOf(cell, force))

    const fetchUpstream = (cell: Cell, demand: RefreshPolicy.Demand, current: TokenRecord | undefined) =>
      Effect.gen(function*() {
        const requestedAt = yield* Clock.currentTimeMillis
        const issued = yield* issue(cell, false)
        // The plain fetch answered the very value a caller saw rejected: only
        // a forced fetch replaces it, within the kind's budget.
        const rule = cell.spec.forceRefresh
        if (rule === undefined || issued.value !== demand.replaces) {
          return yield* newRecord(cell, issued, requestedAt, current)
        }
        yield* spendForceRefresh(cell, rule)
        return yield* newRecord(cell, yield* issue(cell, true), requestedAt, current)
      }).pipe(
        Effect.tapBoth({
          onSuccess: () => Metric.increment(TokenMetrics.refreshes),
          onFailure: (error) => Metric.update(Metric.tagged(TokenMetrics.failures, "cause", failureCause(error)), 1)
        }),
        Effect.tagMetrics({ app: cell.key.appId, kind: cell.key.kind })
      )

    // Takes the cross-replica lease. While another replica holds it, waits for
    // its credential to land in the store instead of fetching: in classic mode
    // two fetches would kill each other's tokens. A lapsed lease (its holder
    // died) is taken over on the next poll.
    const awaitLease = (
      cell: Cell,
      demand: RefreshPolicy.Demand
    ): Effect.Effect<Held | undefined, StoreError, Scope.Scope> =>
      store.lease(cell.key, leaseMillis).pipe(
        Effect.catchTag("StoreError", (error) =>
          // Store down: a kind whose issuer hands every replica the same value
          // (`stable`) may refresh locally; any other must not fight other
          // replicas while it still has a usable value. It defers only while
          // the value stays usable until the next attempt: deferring past that
          // would leave callers a window with nothing to serve.
          Effect.all([heldOf(cell), Clock.currentTimeMillis]).pipe(
            Effect.flatMap(([held, now]) =>
              cell.spec.overlap !== "stable" && held !== undefined &&
                isUsable(held.record, now + Duration.toMillis(reactionTo(cell, error).pause))
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

    const fetchAndAdopt = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Held, AccessTokenError> =>
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
        yield* Effect.logInfo("token refreshed").pipe(
          Effect.annotateLogs({
            token: mask(held.record.value),
            generation: held.record.generation,
            expiresAt: new Date(held.record.expiresAt).toISOString()
          })
        )
        return held
      }).pipe(
        Effect.scoped,
        Effect.tapBoth({
          onSuccess: () =>
            Ref.set(cell.lastFailure, undefined),
          onFailure: (error) =>
            Clock.currentTimeMillis.pipe(
              Effect.flatMap((at) =>
                Ref.set(cell.lastFailure, { error, at })
              ),
              Effect.zipRight(Effect.logWarning("token fetch failed", error.message)),
              Effect.annotateLogs({ cause: failureCause(error) })
            )
        }),
        annotate(cell)
      )

    // A missing input is cooled down by its own cell, which a put clears: the
    // credentials issued from it ask again at once (failing fast from memory
    // until then) instead of each waiting out a cooldown of its own.
    const coolsDown = (cell: Cell, error: AccessTokenError): boolean =>
      error._tag !== "MissingInput" || (error.appId === cell.key.appId && error.kind === cell.key.kind)

    // Any number of concurrent callers share one fetch, which runs in the
    // engine's scope: a caller that gives up does not cancel it for others.
    // After a failure, callers fail fast with it for the class's cooldown.
    const singleFlight = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Held, AccessTokenError> =>
      Effect.gen(function*() {
        const failure = yield* Ref.get(cell.lastFailure)
        if (
          failure !== undefined && coolsDown(cell, failure.error) &&
          (yield* Clock.currentTimeMillis) < failure.at + Duration.toMillis(reactionTo(cell, failure.error).cooldown)
        ) {
          return yield* Effect.fail(failure.error)
        }
        return yield* flights.run(keyString(cell.key), fetchAndAdopt(cell, demand))
      })

    // The hot path: a valid credential is answered from memory with no I/O,
    // in as few Effect steps as it takes (bench/inProcess.ts measures it).
    const serve = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Credential, AccessTokenError> =>
      Effect.clockWith((clock) => {
        const held = cell.held
        return held !== undefined && !demand.needsFetch(held.record, clock.unsafeCurrentTimeMillis())
          ? Effect.succeed(held.credential)
          : Effect.map(singleFlight(cell, demand), (fresh) => fresh.credential)
      })

    // Refreshes at `refreshAt`, retrying what the policy retries; the
    // schedule's delay is whatever the step says is left until the next due time.
    const maintain = (cell: Cell) => {
      const step = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const held = yield* heldOf(cell)
        if (held !== undefined && now < held.record.refreshAt) {
          return Duration.millis(held.record.refreshAt - now)
        }
        return yield* singleFlight(cell, RefreshPolicy.scheduled).pipe(
          Effect.retry({
            schedule: RefreshPolicy.transientBackoff,
            while: (error) => reactionTo(cell, error).retry
          }),
          Effect.as(Duration.zero),
          Effect.catchAll((error) => Effect.succeed(reactionTo(cell, error).pause))
        )
      })
      return step.pipe(Effect.repeat(Schedule.identity<Duration.Duration>().pipe(Schedule.addDelay((delay) => delay))))
    }

    // Owners and kinds reach here unvalidated (HTTP paths); an id that is not
    // configured is never looked up anywhere else.
    const cellOf = (appId: string, kind: CredentialKind): Effect.Effect<Cell, UnknownApp> => {
      const existing = cells.get(`${appId}/${kind}`)
      if (existing !== undefined) return Effect.succeed(existing)
      const declared = kinds.get(kind)
      if (declared === undefined) return Effect.fail(new UnknownApp({ appId }))
      const { family, spec } = declared
      const owner = family.owners.find((owner) => owner === appId)
      if (owner !== undefined) return start(owner, family, spec)
      if (family.dynamic === undefined || !family.dynamic.accepts(appId)) return Effect.fail(new UnknownApp({ appId }))
      const dynamicOwner = appId as OwnerId
      if (admitted.has(appId)) return start(dynamicOwner, family, spec)
      // Another replica (or an earlier run) may have admitted it: its presence record says so.
      return store.get({ appId: dynamicOwner, kind: family.dynamic.presence }).pipe(
        Effect.catchTag("StoreError", (error) =>
          Effect.logWarning("token store unreadable; cannot look up an owner", error.message).pipe(
            Effect.as(Option.none())
          )),
        Effect.flatMap((presence) =>
          Option.isSome(presence) && presence.value.retired !== true
            ? Effect.zipRight(admit(dynamicOwner, family, presence.value), start(dynamicOwner, family, spec))
            : Effect.fail(new UnknownApp({ appId }))
        )
      )
    }

    // Starts a dynamic owner: its presence cell holding `presence`, and its eager kinds.
    const admit = (owner: OwnerId, family: CredentialFamily, presence: TokenRecord): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.add(owner)
        retired.delete(owner)
        for (const spec of family.kinds) {
          if (spec.kind === presence.kind) {
            yield* start(owner, family, spec, presence)
          } else if (spec.start === "eager") {
            yield* start(owner, family, spec)
          }
        }
      })

    // Stops every credential of a retired owner, here only: the tombstone is already stored.
    const stop = (owner: string, family: CredentialFamily, tombstone: TokenRecord): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.delete(owner)
        retired.set(owner, { family, record: tombstone })
        for (const spec of family.kinds) {
          const key = `${owner}/${spec.kind}`
          cells.delete(key)
          yield* FiberMap.remove(loops, key)
        }
        yield* Effect.logInfo("owner retired: its credentials are no longer refreshed").pipe(
          Effect.annotateLogs({ app: owner })
        )
      })

    const retire = (owner: string): Effect.Effect<void, AccessTokenError> =>
      Effect.gen(function*() {
        const family = dynamicFamilies.find((family) =>
          family.dynamic!.accepts(owner)
        )
        if (family === undefined) {
          return yield* new UnknownApp({ appId: owner })
        }
        const key = { appId: owner as OwnerId, kind: family.dynamic!.presence }
        const cell = cells.get(keyString(key))
        const current = cell !== undefined ? yield* newest(cell) : Option.getOrUndefined(yield* store.get(key))
        // Never known here or anywhere: nothing to stop.
        if (current === undefined) {
          return
        }
        const tombstone = current.retired === true
          ? current
          : yield* store.set(new TokenRecord({ ...current, generation: current.generation + 1, retired: true }))
        // A put of a new value won the race: the owner is back.
        if (tombstone.retired === true) {
          yield* stop(owner, family, tombstone)
        }
      })

    // Durable inputs come from outside (a push, an issuer's answer). The
    // owner may have no cell yet: the first ticket, a new authorizer.
    const put = (owner: string, kind: CredentialKind, issued: Issued): Effect.Effect<Credential, AccessTokenError> =>
      Effect.gen(function*() {
        const declared = kinds.get(kind)
        if (declared === undefined) {
          return yield* new UnknownApp({ appId: owner })
        }
        const { family, spec } = declared
        const presence = family.dynamic !== undefined && family.dynamic.presence === kind &&
          family.dynamic.accepts(owner)
        const key = { appId: owner as OwnerId, kind }
        const cell = cells.get(keyString(key)) ?? (presence ? undefined : yield* cellOf(owner, kind))
        const current = cell !== undefined ? yield* newest(cell) : Option.getOrUndefined(yield* store.get(key))
        const winner = current !== undefined && current.value === issued.value && current.retired !== true
          // The same value again (a duplicate push): already stored, nothing to write.
          ? current
          : yield* Effect.gen(function*() {
            const record = yield* newRecord({ key, spec }, issued, yield* Clock.currentTimeMillis, current)
            const stored = yield* store.set(record)
            // Another put raced ours to the same generation: the later put wins.
            return stored.value === record.value
              ? stored
              : yield* store.set(new TokenRecord({ ...record, generation: stored.generation + 1 }))
          })
        const target = cell ?? (yield* start(key.appId, family, spec, winner))
        const held = yield* adopt(target, winner)
        yield* Ref.set(target.lastFailure, undefined)
        if (presence && !admitted.has(owner)) {
          yield* admit(key.appId, family, winner)
        }
        if (winner !== current) {
          yield* Effect.logInfo("durable value stored").pipe(
            Effect.annotateLogs({ app: owner, kind, value: mask(winner.value), generation: winner.generation })
          )
        }
        return held.credential
      })

    // What an issuer may ask of the engine: other credentials of its owner.
    const contextOf = (cell: Cell, force: boolean): IssueContext => ({
      owner: cell.key.appId,
      force,
      upstream: upstreamPermits.withPermit,
      credential: (kind, owner) =>
        get(owner ?? cell.key.appId, kind),
      replace: (kind, stale, owner) => refresh(owner ?? cell.key.appId, stale, kind),
      put: (kind, issued) => put(cell.key.appId, kind, issued),
      retire: retire(cell.key.appId)
    })

    // The stored record is loaded first, so a restart neither burns quota
    // nor kills the credential other servers hold. Whatever mode wrote it: a
    // valid token stays valid after a switch between classic and stable.
    const start = (
      appId: OwnerId,
      family: CredentialFamily,
      spec: CredentialKindSpec,
      seed?: TokenRecord
    ): Effect.Effect<Cell> =>
      Effect.gen(function*() {
        const key = { appId, kind: spec.kind }
        const stored = seed !== undefined ? Option.some(seed) : yield* store.get(key).pipe(
          Effect.catchTag(
            "StoreError",
            (error) =>
              Effect.logWarning("token store unreadable at start-up", error.message).pipe(Effect.as(Option.none()))
          )
        )
        const cell: Cell = {
          key,
          spec,
          family,
          held: Option.getOrUndefined(Option.map(stored, toHeld)),
          lastFailure: yield* Ref.make<Failure | undefined>(undefined),
          forced: yield* Ref.make(RefreshPolicy.nothingSpent)
        }
        // Two first requests for an on-demand kind may race here: the first cell wins.
        const existing = cells.get(keyString(key))
        if (existing !== undefined) {
          return existing
        }
        cells.set(keyString(key), cell)
        yield* FiberMap.run(loops, keyString(key), maintain(cell))
        return cell
      })

    const get = (appId: string, kind: CredentialKind = defaultKind) => {
      // A started cell is served without the extra step of `cellOf`.
      const started = cells.get(`${appId}/${kind}`)
      return started !== undefined
        ? serve(started, RefreshPolicy.usable)
        : Effect.flatMap(cellOf(appId, kind), (cell) => serve(cell, RefreshPolicy.usable))
    }

    // What `get` would answer from memory at `now`, read synchronously; a
    // cell not started or holding nothing usable is `get`'s to handle.
    const peek = (appId: string, now: number, kind: CredentialKind = defaultKind): Credential | undefined => {
      const held = cells.get(`${appId}/${kind}`)?.held
      return held !== undefined && !RefreshPolicy.usable.needsFetch(held.record, now) ? held.credential : undefined
    }

    const refresh = (appId: string, staleValue?: string, kind: CredentialKind = defaultKind) =>
      Effect.flatMap(cellOf(appId, kind), (cell) => serve(cell, RefreshPolicy.replacing(staleValue)))

    // Records written by other replicas replace ours as soon as the store says so.
    yield* store.changes.pipe(
      Stream.runForEach((record) => {
        const cell = cells.get(keyString(record))
        const family = kinds.get(record.kind)?.family
        const presence = family?.dynamic !== undefined && family.dynamic.presence === record.kind &&
          family.dynamic.accepts(record.appId)
        if (!presence) return cell === undefined ? Effect.void : adopt(cell, record)
        // Another replica admitted or retired a dynamic owner.
        if (record.retired === true) return cell === undefined ? Effect.void : stop(record.appId, family, record)
        return cell === undefined ? admit(record.appId, family, record) : adopt(cell, record)
      }),
      Effect.retry(Schedule.spaced(Duration.seconds(1))),
      Effect.forkIn(scope)
    )

    for (const family of families) {
      for (const spec of family.kinds) {
        if (spec.start === "eager") {
          yield* Effect.forEach(family.owners, (owner) => start(owner, family, spec), { discard: true })
        }
      }
    }

    // Dynamic owners come back from their stored presence records. A store
    // that cannot list now still admits each on first use (`cellOf`).
    for (const family of dynamicFamilies) {
      const dynamic = family.dynamic!
      const records = yield* store.list(dynamic.presence).pipe(
        Effect.catchTag(
          "StoreError",
          (error) =>
            Effect.logWarning("token store cannot list owners at start-up; admitting them on first use", error.message)
              .pipe(Effect.as([]))
        )
      )
      for (const record of records) {
        if (!dynamic.accepts(record.appId)) continue
        if (record.retired === true) retired.set(record.appId, { family, record })
        else yield* admit(record.appId, family, record)
      }
    }

    const status = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* Effect.forEach(cells.values(), (cell) =>
        Effect.all([heldOf(cell), Ref.get(cell.lastFailure)]).pipe(
          Effect.map(([held, failure]): CredentialStatus => ({
            appId: cell.key.appId,
            kind: cell.key.kind,
            valid: held !== undefined && isUsable(held.record, now),
            record: Option.fromNullable(held?.record),
            lastError: Option.fromNullable(failure?.error),
            retired: false
          }))
        )).pipe(
          Effect.map((live) =>
            live.concat(Array.from(retired.values(), ({ record }): CredentialStatus => ({
              appId: record.appId,
              kind: record.kind,
              valid: false,
              record: Option.some(record),
              lastError: Option.none(),
              retired: true
            })))
          )
        )
    })

    const forceRefreshBudget = (appId: string, kind: CredentialKind = defaultKind) =>
      Effect.gen(function*() {
        const cell = yield* cellOf(appId, kind)
        // A kind without a forced fetch has no budget to spend.
        const rule = cell.spec.forceRefresh ?? { perDay: 0, spacingMillis: 0 }
        return RefreshPolicy.budgetAt(rule, yield* Ref.get(cell.forced), yield* Clock.currentTimeMillis)
      })

    const apps = Array.from(
      new Set(families.flatMap((family) => family.owners))
    )
    return { apps, get, peek, refresh, put, retire, status, forceRefreshBudget }
  })
