/**
 * The credential engine's mechanics: per owner and kind, a cell holding the
 * current record, a single-flight fetch behind the store's lease, and one
 * scheduler for the whole engine that refreshes each record when it is due.
 * `TokenEngine` is its public face.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Metric, Option, Random, Schedule, type Scope, Stream } from "effect"
import { type AccessTokenError, type Credential, failureCause } from "../AccessToken.js"
import type { CredentialFamily, CredentialKindSpec, IssueContext, Issued } from "../CredentialFamily.js"
import type { OwnerId as Owner } from "../OwnerId.js"
import * as RefreshPolicy from "../RefreshPolicy.js"
import { type CredentialKind, isUsable, mask, MIN_REMAINING, TokenRecord, usableUntil } from "../Token.js"
import type { CredentialStatus, EngineOptions, TokenEngineShape } from "../TokenEngine.js"
import * as TokenMetrics from "../TokenMetrics.js"
import {
  isContested,
  isSameRecord,
  keyString,
  type RecordKey,
  replaces,
  type StoreError,
  TokenStore
} from "../TokenStore.js"
import { ForceRefreshBudgetExhausted, UnknownApp } from "../WeChatError.js"
import * as DueQueue from "./dueQueue.js"
import * as FifoPermits from "./fifoPermits.js"
import * as SingleFlight from "./singleFlight.js"

interface Failure {
  readonly error: AccessTokenError
  readonly at: number
  /** Failures in a row, this one included: how far the backoff has grown. */
  readonly streak: number
  /** No fetch for callers or the schedule before then (`RefreshPolicy.retryDelayMillis`). */
  readonly retryAt: number
}

interface Held {
  readonly record: TokenRecord
  readonly credential: Credential
}

// `isUsable(held.record, now)` without reading the record: the credential's
// `expiresAt` is the record's usable end. A pass over 200,000 cells then
// reads what each cell allocated beside it (the cell, its held pair), not
// records scattered over the heap by whatever decoded them: measured 5×
// faster for a /readyz at 100,000 authorizers.
const MIN_REMAINING_MILLIS = Duration.toMillis(MIN_REMAINING)
const isUsableUntil = (usableUntil: number, now: number): boolean => now + MIN_REMAINING_MILLIS < usableUntil

const toHeld = (record: TokenRecord): Held => ({
  record,
  credential: { value: record.value, expiresAt: usableUntil(record) }
})

// One per owner and kind, for as long as the engine runs: 100,000
// credentials are 100,000 cells, so a cell holds plain fields (each write is
// one synchronous step, as a `Ref` update would be) and no fiber. The
// server's fast path reads `held` synchronously (`peek`).
interface Cell extends DueQueue.Entry {
  readonly key: RecordKey
  readonly spec: CredentialKindSpec
  readonly family: CredentialFamily
  /**
   * What the status passes read, kept on the cell itself: at 100,000
   * credentials a pass is bound by memory, not instructions, and each hop
   * to another object (the key, the owner id, the held credential) is a
   * cache miss on a large heap. `label` is the owner's metrics label,
   * interned so that the authorizers of one component share one string;
   * `usableUntil` is the held credential's usable end (0: none held).
   */
  readonly label: string
  usableUntil: number
  held: Held | undefined
  lastFailure: Failure | undefined
  forced: RefreshPolicy.ForceRefreshSpent
  /** Records this cell saw contested (`TokenStore.isContested`): its next job fetches past them. */
  contested: ReadonlyArray<TokenRecord> | undefined
  fetches: RefreshPolicy.FetchBucket
}

const heldOf = (cell: Cell): Effect.Effect<Held | undefined> => Effect.sync(() => cell.held)

// What start-up listed, by kind and owner.
type Preloaded = ReadonlyMap<CredentialKind, ReadonlyMap<string, TokenRecord>>

// The stored record of a preloaded kind (`null`: none stored); `undefined`
// when the kind was not listed and must be read.
const seedOf = (
  preloaded: Preloaded | undefined,
  kind: CredentialKind,
  owner: string
): TokenRecord | null | undefined => {
  const listed = preloaded?.get(kind)
  return listed === undefined ? undefined : listed.get(owner) ?? null
}

const setFailure = (cell: Cell, failure: Failure | undefined): Effect.Effect<void> =>
  Effect.sync(() => {
    cell.lastFailure = failure
  })

// A cold start of this many credentials or more spreads their first
// refreshes over their whole lifetime (see `newRecord`); fewer are not a herd.
const HERD = 256

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
    const due = DueQueue.make<Cell>()
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
    const configuredOwners = new Set(families.flatMap((family) => family.owners)).size
    // One string per distinct label: an owner labelled by itself keeps its
    // own id; the authorizers of a component share the component's.
    const labels = new Map<string, string>()
    const labelOf = (owner: string): string => {
      const label = TokenMetrics.ownerLabel(owner, configuredOwners)
      if (label === owner) return owner
      const interned = labels.get(label)
      if (interned !== undefined) return interned
      labels.set(label, label)
      return label
    }
    const dynamicFamilies = families.filter((family) => family.dynamic !== undefined)
    // Dynamic owners admitted now, and those retired (with their tombstone) for `status`.
    const admitted = new Set<string>()
    const retired = new Map<string, { readonly family: CredentialFamily; readonly record: TokenRecord }>()

    const annotate = (cell: Cell) => Effect.annotateLogs({ app: cell.key.appId, kind: cell.key.kind })

    // `record` comes from the store (read, a change message, a compare-and-set
    // winner): the cell takes it unless what it holds replaces it. A record
    // contested with the held one is taken too, so every replica follows the
    // store, and (for kinds whose next fetch kills the held token) the cell
    // is queued to fetch past both: nobody knows which one WeChat kept.
    const adopt = (cell: Cell, record: TokenRecord): Effect.Effect<Held> =>
      Effect.sync(() => {
        const held = cell.held
        if (held === undefined || replaces(record, held.record)) return hold(cell, toHeld(record))
        if (!isContested(record, held.record)) return held
        if (cell.spec.overlap !== "stable" && isLive(cell)) {
          cell.contested = [held.record, record]
          schedule(cell, 0)
        }
        return hold(cell, toHeld(record))
      })

    // The newest of what this process holds and what the store holds (the
    // store's when they are contested). A store that is down never stops the
    // engine: it keeps the credential in memory.
    const newest = (cell: Cell): Effect.Effect<TokenRecord | undefined> =>
      Effect.all([heldOf(cell), store.get(cell.key)]).pipe(
        Effect.map(([held, stored]) => {
          const fromStore = Option.getOrUndefined(stored)
          if (held === undefined || fromStore === undefined) return fromStore ?? held?.record
          return replaces(held.record, fromStore) ? held.record : fromStore
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
          generation: (current?.generation ?? 0) + 1,
          lineage: current === undefined
            ? (yield* Random.nextIntBetween(0, Number.MAX_SAFE_INTEGER)).toString(36)
            : current.lineage
        })
      })

    const spendForceRefresh = (cell: Cell, rule: RefreshPolicy.ForceRefreshRule) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const spent = RefreshPolicy.spend(rule, cell.forced, now)
        if (Either.isLeft(spent)) {
          return yield* new ForceRefreshBudgetExhausted({ appId: cell.key.appId, nextAllowedAt: spent.left })
        }
        cell.forced = spent.right
      })

    const issue = (cell: Cell, force: boolean) => cell.spec.issue(contextOf(cell, force))

    const fetchUpstream = (cell: Cell, demand: RefreshPolicy.Demand, current: TokenRecord | undefined) =>
      Effect.gen(function*() {
        // Whatever the issuer answers, callers and the schedule cannot fetch
        // faster than the bucket refills; a compare-and-refresh is not held back.
        if (demand.replaces === undefined) {
          const taken = RefreshPolicy.takeFetch(cell.fetches, yield* Clock.currentTimeMillis)
          cell.fetches = taken.bucket
          if (taken.waitMillis > 0) yield* Effect.sleep(Duration.millis(taken.waitMillis))
        }
        const requestedAt = yield* Clock.currentTimeMillis
        const issued = yield* issue(cell, false)
        // The plain fetch answered the very value a caller saw rejected: only
        // a forced fetch replaces it, within the kind's budget.
        const rule = cell.spec.forceRefresh
        if (rule === undefined || issued.value !== demand.replaces) {
          return yield* spreadIfHerd(yield* newRecord(cell, issued, requestedAt, current), current, requestedAt)
        }
        yield* spendForceRefresh(cell, rule)
        return yield* newRecord(cell, yield* issue(cell, true), requestedAt, current)
      }).pipe(
        Effect.tapBoth({
          onSuccess: () => Metric.increment(TokenMetrics.refreshes),
          onFailure: (error) => Metric.update(Metric.tagged(TokenMetrics.failures, "cause", failureCause(error)), 1)
        }),
        Effect.tagMetrics({ app: cell.label, kind: cell.key.kind })
      )

    // A cold start of a herd fetches every credential within minutes; left
    // alone their refreshes would come back as the same burst every
    // lifetime. A credential fetched for the first time in a herd instead
    // refreshes first at a random point of its lifetime, uniformly: from
    // then on each keeps its own phase, and the refreshes of the herd are
    // spread evenly over the day. It costs each credential one early fetch,
    // once; a credential with a record (a warm start) keeps its plan. The
    // draw starts one margin (expiry minus refresh time) after the fetch: a
    // refresh seconds after it would be a second start-up fetch, made while
    // the herd is still being fetched.
    const spreadIfHerd = (record: TokenRecord, current: TokenRecord | undefined, requestedAt: number) => {
      const earliest = requestedAt + (record.expiresAt - record.refreshAt)
      return current !== undefined || cells.size < HERD || record.refreshAt <= earliest
        ? Effect.succeed(record)
        : Effect.map(Random.next, (draw) =>
          new TokenRecord({
            ...record,
            refreshAt: Math.round(earliest + draw * (record.refreshAt - earliest))
          }))
    }

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
            setFailure(cell, undefined),
          onFailure: (error) =>
            Effect.all([Clock.currentTimeMillis, Random.next]).pipe(
              Effect.flatMap(([at, draw]) => {
                const streak = (cell.lastFailure?.streak ?? 0) + 1
                const failure = RefreshPolicy.failureClass(error, cell.family.classify)
                return setFailure(cell, {
                  error,
                  at,
                  streak,
                  retryAt: RefreshPolicy.retryAt(
                    at,
                    RefreshPolicy.retryDelayMillis(failure, streak, draw),
                    // A spent quota or a wrong secret is not cured by asking before the end.
                    failure === "transient" ? cell.usableUntil : 0
                  )
                })
              }),
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
    // After a failure, callers fail fast with it until the backoff allows
    // the next fetch: a cold start against a dead issuer asks no faster
    // than the schedule does.
    const singleFlight = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Held, AccessTokenError> =>
      Effect.gen(function*() {
        const failure = cell.lastFailure
        if (
          failure !== undefined && coolsDown(cell, failure.error) &&
          (yield* Clock.currentTimeMillis) < failure.retryAt
        ) {
          return yield* Effect.fail(failure.error)
        }
        return yield* flights.run(keyString(cell.key), fetchAndAdopt(cell, demand))
      })

    // A fetch that found an input missing may have been under way when the
    // input was put: a caller that joined it asks once more (which fails
    // fast from memory while the input is still missing).
    const fetchFor = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Held, AccessTokenError> =>
      singleFlight(cell, demand).pipe(
        Effect.catchIf((error) =>
          !coolsDown(cell, error), () =>
          singleFlight(cell, demand))
      )

    // The hot path: a valid credential is answered from memory with no I/O,
    // in as few Effect steps as it takes (bench/inProcess.ts measures it).
    const serve = (cell: Cell, demand: RefreshPolicy.Demand): Effect.Effect<Credential, AccessTokenError> =>
      Effect.clockWith((clock) => {
        const held = cell.held
        return held !== undefined && !demand.needsFetch(held.record, clock.unsafeCurrentTimeMillis())
          ? Effect.succeed(held.credential)
          : Effect.map(fetchFor(cell, demand), (fresh) => fresh.credential)
      })

    // One scheduler for every cell: the due queue holds each cell's next
    // refresh time, and one fiber sleeps until the first is due (or until a
    // cell is queued ahead of it), then starts a refresh job per due cell, at
    // most `maxJobs` at a time. An idle credential costs its queue slot, no
    // fiber. A job refreshes at `refreshAt`, retrying what the policy
    // retries, and queues its cell again: at its new `refreshAt`, or after
    // the failure's pause. Upstream calls stay bounded by the permits; the
    // job bound only keeps a cold start of 100,000 from forking 100,000
    // fibers to wait for them.
    const maxJobs = 4 * (options.maxConcurrentFetches ?? 16)
    let jobs = 0
    let wake: (() => void) | undefined
    let sleepingUntil = Number.POSITIVE_INFINITY

    const schedule = (cell: Cell, at: number): void => {
      due.set(cell, at)
      if (at < sleepingUntil) wake?.()
    }

    // A cell is queued only while it is the engine's (not retired).
    const isLive = (cell: Cell): boolean => cells.get(keyString(cell.key)) === cell

    // Pacing. Each credential refreshes at its own phase plus a fresh jitter
    // each cycle, so the refreshes due in one second are a Poisson count:
    // its busiest second of a day holds 2–5 × the mean. The scheduler starts
    // at most `RefreshPolicy.pacingBudget` of them per second of the clock
    // (about twice the mean, reasoning there) and moves the rest to the next
    // second, in the queue: no fiber, no polling. The mean is what the
    // engine holds, Σ 1 / cycle over the live cells' records, kept as a sum
    // that every change of a held record or of the cells adjusts in O(1);
    // counting the refreshes that actually happened would lag a cold start
    // or a wave of new owners by a whole cycle.
    let expectedPerSecond = 0
    let pacedSecond = Number.NEGATIVE_INFINITY
    let startedInSecond = 0

    const expectRefreshes = (held: Held | undefined, sign: 1 | -1): void => {
      if (held !== undefined) expectedPerSecond += sign * 1_000 / RefreshPolicy.cycleMillis(held.record, marginMillis)
    }

    const hold = (cell: Cell, held: Held): Held => {
      const live = isLive(cell)
      if (live) expectRefreshes(cell.held, -1)
      cell.held = held
      cell.usableUntil = held.credential.expiresAt
      if (live) expectRefreshes(held, 1)
      return held
    }

    // Whether the job about to start refreshes (not merely re-queues a cell
    // whose record another replica already renewed), and whether it may wait:
    // a first fetch, a retry after a failure and a credential near its end
    // never wait (forced refreshes and callers' fetches never come here).
    const refreshes = (cell: Cell, now: number): boolean => cell.held === undefined || now >= cell.held.record.refreshAt
    const mayWait = (cell: Cell, now: number): boolean =>
      cell.held !== undefined && cell.lastFailure === undefined && RefreshPolicy.mayDefer(cell.held.record, now)

    // Counts the job in this second's starts; false when it must wait for the next second.
    const startsNow = (cell: Cell, now: number): boolean => {
      if (!refreshes(cell, now)) return true
      const second = Math.floor(now / 1_000)
      if (second !== pacedSecond) {
        pacedSecond = second
        startedInSecond = 0
      }
      if (startedInSecond >= RefreshPolicy.pacingBudget(expectedPerSecond) && mayWait(cell, now)) return false
      startedInSecond += 1
      return true
    }

    const job = (cell: Cell): Effect.Effect<void> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const held = cell.held
        const contested = cell.contested
        if (held !== undefined && now < held.record.refreshAt && contested === undefined) return held.record.refreshAt
        const demand = contested === undefined ? RefreshPolicy.scheduled : RefreshPolicy.settling(contested)
        return yield* singleFlight(cell, demand).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              if (cell.contested === contested) cell.contested = undefined
            })
          ),
          Effect.zipRight(Clock.currentTimeMillis),
          // A contest seen during this job is settled at once.
          Effect.map((now) => cell.contested === undefined ? cell.held?.record.refreshAt ?? now : now),
          // The next attempt comes when the backoff of the failure allows it.
          Effect.catchAll((error) =>
            Effect.map(Clock.currentTimeMillis, (now) =>
              Math.max(
                cell.lastFailure?.retryAt ?? 0,
                now + (coolsDown(cell, error) ? 0 : Duration.toMillis(reactionTo(cell, error).cooldown))
              ))
          )
        )
      }).pipe(
        Effect.flatMap((at) =>
          Effect.sync(() => {
            if (isLive(cell)) schedule(cell, at)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          const wasFull = jobs >= maxJobs
          jobs -= 1
          if (wasFull) wake?.()
        }))
      )

    // Wakes at `until`, or as soon as `wake` is called.
    const sleepUntil = (until: number, now: number): Effect.Effect<void> =>
      Effect.raceFirst(
        until === Number.POSITIVE_INFINITY ? Effect.never : Effect.sleep(Duration.millis(until - now)),
        Effect.async<void>((resume) => {
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

    const scheduler: Effect.Effect<never> = Effect.gen(function*() {
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        let first = due.first()
        while (first !== undefined && first.due <= now && jobs < maxJobs) {
          if (startsNow(first, now)) {
            due.pop()
            jobs += 1
            yield* Effect.forkIn(annotate(first)(job(first)), scope)
          } else {
            due.set(first, (Math.floor(now / 1_000) + 1) * 1_000)
          }
          first = due.first()
        }
        yield* sleepUntil(jobs >= maxJobs || first === undefined ? Number.POSITIVE_INFINITY : first.due, now)
      }
    })

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
      const dynamicOwner = appId as Owner
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
    const admit = (
      owner: Owner,
      family: CredentialFamily,
      presence: TokenRecord,
      preloaded?: Preloaded
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.add(owner)
        retired.delete(owner)
        for (const spec of family.kinds) {
          if (spec.kind === presence.kind) {
            yield* start(owner, family, spec, presence)
          } else if (spec.start === "eager") {
            yield* start(owner, family, spec, seedOf(preloaded, spec.kind, owner))
          }
        }
      })

    // Start-up reads each eagerly started kind with one listing (one file
    // read, a Redis SCAN with MGETs) instead of a read per credential: with
    // 100,000 owners that is the difference between seconds and minutes. A
    // store that cannot list leaves the kind to per-credential reads.
    const preload = (kindsToRead: ReadonlyArray<CredentialKind>): Effect.Effect<Preloaded> =>
      Effect.forEach(kindsToRead, (kind) =>
        store.list(kind).pipe(
          Effect.map((records) =>
            [kind, new Map(records.map((record) => [record.appId, record]))] as const
          ),
          Effect.catchTag("StoreError", (error) =>
            Effect.logWarning("token store cannot list at start-up; reading credentials one by one", error.message)
              .pipe(Effect.as(undefined)))
        )).pipe(
          Effect.map((listed) =>
            new Map(listed.filter((entry) => entry !== undefined))
          )
        )

    // Stops every credential of a retired owner, here only: the tombstone is already stored.
    const stop = (owner: string, family: CredentialFamily, tombstone: TokenRecord): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.delete(owner)
        retired.set(owner, { family, record: tombstone })
        for (const spec of family.kinds) {
          const key = `${owner}/${spec.kind}`
          const cell = cells.get(key)
          if (cell !== undefined) {
            due.remove(cell)
            expectRefreshes(cell.held, -1)
          }
          cells.delete(key)
        }
        yield* Effect.logInfo("owner retired: its credentials are no longer refreshed").pipe(
          Effect.annotateLogs({ app: owner })
        )
      })

    const retire = (owner: string): Effect.Effect<void, AccessTokenError> =>
      Effect.gen(function*() {
        const family = dynamicFamilies.find((family) => family.dynamic!.accepts(owner))
        if (family === undefined) {
          return yield* new UnknownApp({ appId: owner })
        }
        const key = { appId: owner as Owner, kind: family.dynamic!.presence }
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
        // A dynamic owner's values may be put before it is admitted (the token
        // an authorization answered, then the refresh token that admits it),
        // so admitting it finds them instead of fetching.
        const dynamic = family.dynamic !== undefined && family.dynamic.accepts(owner) &&
          !family.owners.some((known) => known === owner)
        const presence = dynamic && family.dynamic!.presence === kind
        const key = { appId: owner as Owner, kind }
        const cell = cells.get(keyString(key)) ?? (dynamic ? undefined : yield* cellOf(owner, kind))
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
              : yield* store.set(
                new TokenRecord({ ...record, lineage: stored.lineage, generation: stored.generation + 1 })
              )
          })
        const live = cell !== undefined || !dynamic || presence || admitted.has(owner)
        const target = live ? cell ?? (yield* start(key.appId, family, spec, winner)) : undefined
        if (target !== undefined) {
          yield* adopt(target, winner)
          yield* setFailure(target, undefined)
        }
        if (presence && !admitted.has(owner)) yield* admit(key.appId, family, winner)
        if (winner !== current) {
          yield* Effect.logInfo("durable value stored").pipe(
            Effect.annotateLogs({ app: owner, kind, value: mask(winner.value), generation: winner.generation })
          )
        }
        return toHeld(winner).credential
      })

    // What an issuer may ask of the engine: other credentials of its owner.
    const contextOf = (cell: Cell, force: boolean): IssueContext => ({
      owner: cell.key.appId,
      force,
      upstream: upstreamPermits.withPermit,
      credential: (kind, owner) => get(owner ?? cell.key.appId, kind),
      replace: (kind, stale, owner) => refresh(owner ?? cell.key.appId, stale, kind),
      put: (kind, issued) => put(cell.key.appId, kind, issued),
      retire: retire(cell.key.appId)
    })

    // The stored record is loaded first, so a restart neither burns quota
    // nor kills the credential other servers hold. Whatever mode wrote it: a
    // valid token stays valid after a switch between classic and stable.
    const start = (
      appId: Owner,
      family: CredentialFamily,
      spec: CredentialKindSpec,
      seed?: TokenRecord | null
    ): Effect.Effect<Cell> =>
      Effect.gen(function*() {
        const key = { appId, kind: spec.kind }
        // `null`: a listing just said the store holds none.
        const stored = seed !== undefined ? Option.fromNullable(seed) : yield* store.get(key).pipe(
          Effect.catchTag(
            "StoreError",
            (error) =>
              Effect.logWarning("token store unreadable at start-up", error.message).pipe(Effect.as(Option.none()))
          )
        )
        const held = Option.getOrUndefined(Option.map(stored, toHeld))
        const cell: Cell = {
          key,
          spec,
          family,
          label: labelOf(appId),
          usableUntil: held?.credential.expiresAt ?? 0,
          held,
          lastFailure: undefined,
          forced: RefreshPolicy.nothingSpent,
          contested: undefined,
          fetches: RefreshPolicy.fullBucket,
          due: 0,
          slot: -1
        }
        // Two first requests for an on-demand kind may race here: the first cell wins.
        const existing = cells.get(keyString(key))
        if (existing !== undefined) {
          return existing
        }
        cells.set(keyString(key), cell)
        expectRefreshes(cell.held, 1)
        schedule(cell, cell.held?.record.refreshAt ?? (yield* Clock.currentTimeMillis))
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

    // Change messages can be missed, and a store that lost its data or
    // refused writes holds less than the replicas do. So every
    // `RefreshPolicy.revalidationMillis`, each credential whose next fetch
    // kills the held one is compared with the store's record: the store's is
    // taken (`adopt`) unless the held one replaces it, and then the held one
    // is written back, so a replica starting on an emptied store finds it
    // instead of fetching a token that kills it.
    const reconcile = (cell: Cell): Effect.Effect<void, StoreError> =>
      Effect.gen(function*() {
        const held = cell.held
        if (held === undefined || !isLive(cell)) return
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
          yield* adopt(cell, winner)
          yield* Effect.logInfo("token store holds another token; serving it").pipe(
            Effect.annotateLogs({ token: mask(winner.value), generation: winner.generation })
          )
        }
      }).pipe(annotate(cell))

    const revalidate = Effect.gen(function*() {
      // The period follows the count of the previous pass (none before the first).
      let watched: Array<Cell> = []
      for (;;) {
        yield* Effect.sleep(Duration.millis(RefreshPolicy.revalidationMillis(watched.length)))
        watched = Array.from(cells.values()).filter((cell) => cell.spec.overlap !== "stable" && cell.held !== undefined)
        let failures = 0
        let detail = ""
        yield* Effect.forEach(watched, (cell) =>
          Effect.catchTag(reconcile(cell), "StoreError", (error) =>
            Effect.sync(() => {
              failures += 1
              detail = error.message
            })), { concurrency: 16, discard: true })
        if (failures > 0) {
          yield* Effect.logWarning("token store unavailable; re-validation will try again").pipe(
            Effect.annotateLogs({ credentials: failures, detail })
          )
        }
      }
    })

    yield* Effect.forkIn(scheduler, scope)
    yield* Effect.forkIn(revalidate, scope)

    const eagerKinds = (family: CredentialFamily, except?: CredentialKind) =>
      family.kinds.filter((spec) =>
        spec.start === "eager" && spec.kind !== except
      )

    for (const family of families) {
      const eager = eagerKinds(family)
      if (family.owners.length === 0 || eager.length === 0) {
        continue
      }
      const preloaded = yield* preload(eager.map((spec) =>
        spec.kind
      ))
      for (const spec of eager) {
        yield* Effect.forEach(
          family.owners,
          (owner) => start(owner, family, spec, seedOf(preloaded, spec.kind, owner)),
          { discard: true }
        )
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
      const preloaded = records.length === 0
        ? undefined
        : yield* preload(eagerKinds(family, dynamic.presence).map((spec) => spec.kind))
      for (const record of records) {
        if (!dynamic.accepts(record.appId)) continue
        if (record.retired === true) retired.set(record.appId, { family, record })
        else yield* admit(record.appId, family, record, preloaded)
      }
    }

    // One synchronous pass: with 100,000 cells, an Effect step per cell
    // would cost /readyz and /metrics more than everything else they do.
    // The pass shows every cell through one reused view, so it allocates
    // nothing per cell: a visitor copies (`{ ...status }`, which reads the
    // getters) only what it keeps. Measured at 100,000 authorizers, a fresh
    // status object and `Option` per cell made the pass 3-4x slower.
    const visitStatuses = (now: number, visit: (status: CredentialStatus) => void): void => {
      let current: Cell | undefined
      // The owner id is read through the cell only when a visitor asks.
      const view = {
        get appId(): Owner {
          return current!.key.appId
        },
        kind: "" as CredentialKind,
        metricsLabel: "",
        valid: false,
        retired: false,
        get record(): Option.Option<TokenRecord> {
          const held = current?.held
          return held === undefined ? Option.none() : Option.some(held.record)
        },
        get lastError(): Option.Option<AccessTokenError> {
          const failure = current?.lastFailure
          return failure === undefined ? Option.none() : Option.some(failure.error)
        }
      }
      for (const cell of cells.values()) {
        current = cell
        view.kind = cell.spec.kind
        view.metricsLabel = cell.label
        view.valid = isUsableUntil(cell.usableUntil, now)
        visit(view)
      }
      for (const { record } of retired.values()) {
        visit({
          appId: record.appId,
          kind: record.kind,
          metricsLabel: labelOf(record.appId),
          valid: false,
          record: Option.some(record),
          lastError: Option.none(),
          retired: true
        })
      }
    }

    const eachStatus = (visit: (status: CredentialStatus) => void): Effect.Effect<void> =>
      Effect.clockWith((clock) => Effect.sync(() => visitStatuses(clock.unsafeCurrentTimeMillis(), visit)))

    const status = Effect.suspend(() => {
      const statuses: Array<CredentialStatus> = []
      return Effect.as(eachStatus((status) => statuses.push({ ...status })), statuses)
    })

    const forceRefreshBudget = (appId: string, kind: CredentialKind = defaultKind) =>
      Effect.gen(function*() {
        const cell = yield* cellOf(appId, kind)
        // A kind without a forced fetch has no budget to spend.
        const rule = cell.spec.forceRefresh ?? { perDay: 0, spacingMillis: 0 }
        return RefreshPolicy.budgetAt(rule, cell.forced, yield* Clock.currentTimeMillis)
      })

    const apps = Array.from(
      new Set(families.flatMap((family) => family.owners))
    )
    // A set, not a search of the list: 100,000 owners would make that 10^10 steps.
    const servable: Array<RecordKey> = []
    const seen = new Set<string>()
    for (const family of families) {
      for (const owner of family.owners) {
        if (seen.has(owner)) continue
        seen.add(owner)
        servable.push({ appId: owner, kind: family.kinds[0].kind })
      }
    }
    return { apps, servable, get, peek, refresh, put, retire, status, eachStatus, forceRefreshBudget }
  })
