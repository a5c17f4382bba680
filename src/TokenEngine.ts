/**
 * The token engine: per app and credential kind, the current token in memory,
 * one shared upstream fetch at a time (single-flight, also across replicas via
 * the store's lease), and a background fiber that refreshes ahead of expiry on
 * a `Schedule`. A failed refresh never takes away a token that is still valid.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  FiberMap,
  Layer,
  Metric,
  Option,
  Random,
  Ref,
  Schedule,
  Scope,
  Stream
} from "effect"
import { AccessToken, type AccessTokenError, type Credential, failureCause } from "./AccessToken.js"
import type { AppId } from "./AppId.js"
import { type CredentialKind, isUsable, mask, OVERLAP, type TokenMode, TokenRecord, usableUntil } from "./Token.js"
import { TokenConfig } from "./TokenConfig.js"
import * as TokenMetrics from "./TokenMetrics.js"
import { keyString, type RecordKey, type StoreError, TokenStore } from "./TokenStore.js"
import * as FifoPermits from "./internal/fifoPermits.js"
import { type Issued, type TicketType, WeChatApi } from "./WeChatApi.js"
import { ForceRefreshBudgetExhausted, severity, UnknownApp } from "./WeChatError.js"

/**
 * How one credential is doing: what `/readyz` and `/metrics` report.
 *
 * @since 0.1.0
 */
export interface CredentialStatus {
  readonly appId: AppId
  readonly kind: CredentialKind
  readonly valid: boolean
  readonly record: Option.Option<TokenRecord>
  readonly lastError: Option.Option<AccessTokenError>
}

/**
 * Stable mode's `force_refresh` allowance: WeChat grants 20 a day, 30 s apart.
 *
 * @since 0.1.0
 */
export interface ForceRefreshBudget {
  readonly usedToday: number
  readonly remainingToday: number
  readonly nextAllowedAt: number
}

/**
 * @since 0.1.0
 */
export interface TokenEngineShape {
  readonly apps: ReadonlyArray<AppId>
  readonly get: (appId: string, kind?: CredentialKind) => Effect.Effect<Credential, AccessTokenError>
  readonly refresh: (
    appId: string,
    staleValue?: string,
    kind?: CredentialKind
  ) => Effect.Effect<Credential, AccessTokenError>
  readonly status: Effect.Effect<ReadonlyArray<CredentialStatus>>
  readonly forceRefreshBudget: (appId: string) => Effect.Effect<ForceRefreshBudget, UnknownApp>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenEngine extends Context.Tag("effect-wechat-token/TokenEngine")<TokenEngine, TokenEngineShape>() {}

/**
 * Knobs with their units; the defaults suit WeChat's real limits.
 *
 * @since 0.1.0
 */
export interface EngineOptions {
  /** Longer than the upstream timeout, so a live refresher never loses its lease. Default: timeout + 5 s. */
  readonly leaseMillis?: number
  /** How often a replica waiting on another's lease looks at the store. Default 100 ms. */
  readonly leasePollMillis?: number
  /**
   * Upstream calls in flight at once, over all apps. Default 16: a server
   * configured with 1,000 apps starts (and refreshes) them in waves instead
   * of opening 1,000 connections to WeChat at once.
   */
  readonly maxConcurrentFetches?: number
}

const FORCE_REFRESH_PER_DAY = 20
const FORCE_REFRESH_SPACING = Duration.seconds(30)
const DAY_MILLIS = 86_400_000

// Transient failures (busy, 5xx, timeouts, malformed bodies) retry fast at
// first, then at most once a minute, with jitter so replicas do not stampede.
const transientBackoff = Schedule.exponential(Duration.seconds(1), 2).pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced(Duration.minutes(1)))
)

// After a failure the fast retries do not cover: configuration errors retry
// slowly so a fixed whitelist recovers without a restart; the daily quota
// (2,000 classic fetches) only comes back after hours; a store that refused
// a classic refresh is asked again soon.
const pauseAfter = (error: AccessTokenError): Duration.Duration =>
  error._tag === "QuotaExceeded"
    ? Duration.hours(1)
    : error._tag === "StoreError"
    ? Duration.seconds(5)
    : Duration.minutes(5)

const isTransient = (error: AccessTokenError): boolean =>
  error._tag !== "UnknownApp" && error._tag !== "StoreError" && error._tag !== "ForceRefreshBudgetExhausted" &&
  severity(error) === "transient"

interface Failure {
  readonly error: AccessTokenError
  readonly at: number
}

// After a failed fetch, callers that find no valid token fail fast with the
// same error for a while instead of fetching again: without this, a wrong
// secret or a dead upstream would turn every request into an upstream call.
const cooldownAfter = (error: AccessTokenError): Duration.Duration =>
  isTransient(error) ? Duration.seconds(1) : pauseAfter(error)

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
  readonly mode: TokenMode
  readonly issue: (forceRefresh: boolean) => Effect.Effect<Issued, AccessTokenError>
  readonly held: Ref.Ref<Held | undefined>
  readonly inflight: Ref.Ref<Deferred.Deferred<Held, AccessTokenError> | undefined>
  readonly lastFailure: Ref.Ref<Failure | undefined>
  readonly forced: Ref.Ref<{ readonly day: number; readonly used: number; readonly lastAt: number }>
}

// What a caller needs from the engine: the one place that decides "fetch
// now". `replaces` names the token a compare-and-refresh caller saw rejected.
interface Demand {
  readonly needsFetch: (record: TokenRecord | undefined, now: number) => boolean
  readonly replaces?: string
}
const unusable = (record: TokenRecord | undefined, now: number): record is undefined =>
  record === undefined || !isUsable(record, now)
const usable: Demand = { needsFetch: unusable }
const scheduled: Demand = { needsFetch: (record, now) => unusable(record, now) || now >= record.refreshAt }
const replacing = (stale: string | undefined): Demand =>
  stale === undefined
    ? { needsFetch: () => true }
    : { needsFetch: (record, now) => unusable(record, now) || record.value === stale, replaces: stale }

/**
 * Builds the engine in a scope: its background fibers stop when the scope closes.
 *
 * @since 0.1.0
 */
export const make = (options: EngineOptions = {}) =>
  Effect.gen(function*() {
    const config = yield* TokenConfig
    const store = yield* TokenStore
    const api = yield* WeChatApi
    const scope = yield* Effect.scope
    const loops = yield* FiberMap.make<string>()
    const leaseMillis = options.leaseMillis ?? Duration.toMillis(config.upstreamTimeout) + 5_000
    const leasePoll = Duration.millis(options.leasePollMillis ?? 100)
    const upstreamPermits = yield* FifoPermits.make(options.maxConcurrentFetches ?? 16)
    // Held only around the call itself: a ticket fetch waiting for its
    // token's fetch holds no permit, so the two can never deadlock.
    const upstream = upstreamPermits.withPermit
    const cells = new Map<string, Cell>()
    const appsById = new Map(config.apps.map((app) => [app.appId as string, app]))

    const annotate = (cell: Cell) => Effect.annotateLogs({ app: cell.key.appId, kind: cell.key.kind })

    const adopt = (cell: Cell, record: TokenRecord): Effect.Effect<Held> =>
      Ref.modify(cell.held, (held) => {
        if (held !== undefined && held.record.generation >= record.generation) return [held, held]
        const next = toHeld(record)
        return [next, next]
      })

    // The newest of what this process holds and what the store holds. A store
    // that is down never stops the engine: it keeps the token in memory.
    const newest = (cell: Cell): Effect.Effect<TokenRecord | undefined> =>
      Effect.all([Ref.get(cell.held), store.get(cell.key)]).pipe(
        Effect.map(([held, stored]) => {
          const fromStore = Option.getOrUndefined(stored)
          if (held === undefined) return fromStore
          return fromStore !== undefined && fromStore.generation > held.record.generation ? fromStore : held.record
        }),
        Effect.catchTag("StoreError", (error) =>
          Effect.logWarning("token store unreadable; using the token held in memory", error.message).pipe(
            Effect.zipRight(Ref.get(cell.held)),
            Effect.map((held) => held?.record)
          ))
      )

    const newRecord = (cell: Cell, issued: Issued, requestedAt: number, generation: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // WeChat starts the clock when it issues the token: count from the request.
        const lifetime = issued.expiresInSeconds * 1000
        const expiresAt = requestedAt + lifetime
        // Stable tokens are renewed by WeChat only in their last 5 minutes, so a
        // longer margin would just fetch the same token again. Never more than
        // half the lifetime, so short-lived tokens cannot cause a refresh loop.
        const margin = Math.min(
          Duration.toMillis(config.refreshMargin),
          cell.mode === "stable" && cell.key.kind === "access_token" ? Duration.toMillis(OVERLAP) : Infinity,
          lifetime / 2
        )
        // Jitter spreads the refreshes of many apps and replicas. It only ever
        // moves a refresh later, into the first half of the margin, so a
        // simulated day still costs ⌈86400 / (7200 − margin)⌉ fetches.
        const jitter = yield* Random.nextIntBetween(0, Math.floor(margin / 2) + 1)
        return new TokenRecord({
          appId: cell.key.appId,
          kind: cell.key.kind,
          value: issued.value,
          mode: cell.mode,
          fetchedAt: now,
          expiresAt,
          refreshAt: expiresAt - margin + jitter,
          generation
        })
      })

    // Stable mode: a normal fetch returns the same token while it is valid, so
    // replacing a token WeChat rejected needs `force_refresh`, which WeChat
    // allows 20 times a day, 30 s apart. Never sent implicitly otherwise.
    const spendForceRefresh = (cell: Cell) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const day = Math.floor(now / DAY_MILLIS)
        const spent = yield* Ref.get(cell.forced)
        const used = spent.day === day ? spent.used : 0
        const nextAllowedAt = used >= FORCE_REFRESH_PER_DAY
          ? (day + 1) * DAY_MILLIS
          : spent.lastAt + Duration.toMillis(FORCE_REFRESH_SPACING)
        if (nextAllowedAt > now) {
          return yield* new ForceRefreshBudgetExhausted({ appId: cell.key.appId, nextAllowedAt })
        }
        yield* Ref.set(cell.forced, { day, used: used + 1, lastAt: now })
      })

    const fetchUpstream = (cell: Cell, demand: Demand, generation: number) =>
      Effect.gen(function*() {
        const requestedAt = yield* Clock.currentTimeMillis
        const record = yield* cell.issue(false).pipe(
          Effect.flatMap((issued) => newRecord(cell, issued, requestedAt, generation))
        )
        if (cell.mode !== "stable" || cell.key.kind !== "access_token" || record.value !== demand.replaces) return record
        yield* spendForceRefresh(cell)
        return yield* cell.issue(true).pipe(Effect.flatMap((issued) => newRecord(cell, issued, requestedAt, generation)))
      }).pipe(
        Effect.tapBoth({
          onSuccess: () => Metric.increment(TokenMetrics.refreshes),
          onFailure: (error) => Metric.update(Metric.tagged(TokenMetrics.failures, "cause", failureCause(error)), 1)
        }),
        Effect.tagMetrics({ app: cell.key.appId, kind: cell.key.kind })
      )

    // Takes the cross-replica lease. While another replica holds it, waits for
    // its token to land in the store instead of fetching: in classic mode two
    // fetches would kill each other's tokens. A lapsed lease (its holder died)
    // is taken over on the next poll.
    const awaitLease = (cell: Cell, demand: Demand): Effect.Effect<Held | undefined, StoreError, Scope.Scope> =>
      store.lease(cell.key, leaseMillis).pipe(
        Effect.catchTag("StoreError", (error) =>
          // Store down: stable mode may refresh locally (WeChat hands every
          // replica the same token); classic mode must not fight other
          // replicas while it still has a usable token. It defers only while
          // the token stays usable until the next attempt (`pauseAfter`):
          // deferring past that would leave callers a window with no token.
          Effect.all([Ref.get(cell.held), Clock.currentTimeMillis]).pipe(
            Effect.flatMap(([held, now]) =>
              cell.mode === "classic" && held !== undefined &&
                isUsable(held.record, now + Duration.toMillis(pauseAfter(error)))
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

    const fetchAndAdopt = (cell: Cell, demand: Demand): Effect.Effect<Held, AccessTokenError> =>
      Effect.gen(function*() {
        const settled = yield* awaitLease(cell, demand)
        if (settled !== undefined) return settled
        // Another replica may have refreshed between our read and the lease.
        const current = yield* newest(cell)
        if (current !== undefined && !demand.needsFetch(current, yield* Clock.currentTimeMillis)) {
          return yield* adopt(cell, current)
        }
        const fetched = yield* fetchUpstream(cell, demand, (current?.generation ?? 0) + 1)
        const winner = yield* store.set(fetched).pipe(
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
          onSuccess: () => Ref.set(cell.lastFailure, undefined),
          onFailure: (error) =>
            Clock.currentTimeMillis.pipe(
              Effect.flatMap((at) => Ref.set(cell.lastFailure, { error, at })),
              Effect.zipRight(Effect.logWarning("token fetch failed", error.message)),
              Effect.annotateLogs({ cause: failureCause(error) })
            )
        }),
        annotate(cell)
      )

    // Any number of concurrent callers share one fetch. The fetch runs in the
    // engine's scope, so a caller that gives up does not cancel it for others.
    const singleFlight = (cell: Cell, demand: Demand): Effect.Effect<Held, AccessTokenError> =>
      Effect.gen(function*() {
        const failure = yield* Ref.get(cell.lastFailure)
        if (failure !== undefined && (yield* Clock.currentTimeMillis) < failure.at + Duration.toMillis(cooldownAfter(failure.error))) {
          return yield* Effect.fail(failure.error)
        }
        const mine = yield* Deferred.make<Held, AccessTokenError>()
        const running = yield* Ref.modify(cell.inflight, (current) => current ? [current, current] : [mine, mine])
        if (running === mine) {
          yield* fetchAndAdopt(cell, demand).pipe(
            Effect.exit,
            Effect.flatMap((exit) => Deferred.done(mine, exit)),
            Effect.ensuring(Ref.set(cell.inflight, undefined)),
            Effect.forkIn(scope)
          )
        }
        return yield* Deferred.await(running)
      })

    // The hot path: a valid token is answered from memory with no I/O, in as
    // few Effect steps as it takes (bench/inProcess.ts measures it).
    const serve = (cell: Cell, demand: Demand): Effect.Effect<Credential, AccessTokenError> =>
      Effect.flatMap(Ref.get(cell.held), (held) =>
        Effect.clockWith((clock) =>
          held !== undefined && !demand.needsFetch(held.record, clock.unsafeCurrentTimeMillis())
            ? Effect.succeed(held.credential)
            : Effect.map(singleFlight(cell, demand), (fresh) => fresh.credential)))

    // Refreshes at `refreshAt`, retrying transient failures with backoff; the
    // schedule's delay is whatever the step says is left until the next due time.
    const maintain = (cell: Cell) => {
      const step = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const held = yield* Ref.get(cell.held)
        if (held !== undefined && now < held.record.refreshAt) return Duration.millis(held.record.refreshAt - now)
        return yield* singleFlight(cell, scheduled).pipe(
          Effect.retry({ schedule: transientBackoff, while: isTransient }),
          Effect.as(Duration.zero),
          Effect.catchAll((error) => Effect.succeed(pauseAfter(error)))
        )
      })
      return step.pipe(Effect.repeat(Schedule.identity<Duration.Duration>().pipe(Schedule.addDelay((delay) => delay))))
    }

    const cellOf = (appId: string, kind: CredentialKind): Effect.Effect<Cell, UnknownApp> => {
      // App ids reach here unvalidated (HTTP paths); an id that is not
      // configured is never looked up anywhere else.
      const existing = cells.get(`${appId}/${kind}`)
      if (existing !== undefined) return Effect.succeed(existing)
      const app = appsById.get(appId)
      if (app === undefined) return Effect.fail(new UnknownApp({ appId }))
      return start(app.appId, kind)
    }

    const issuerOf = (appId: AppId, kind: CredentialKind): Cell["issue"] => {
      if (kind === "access_token") {
        const app = appsById.get(appId)!
        return (forceRefresh) => upstream(api.fetchAccessToken(app, config.mode, { forceRefresh }))
      }
      const type: TicketType = kind === "jsapi_ticket" ? "jsapi" : "wx_card"
      // A ticket fetch that WeChat answers with a dead-token errcode replaces
      // that token (compare-and-refresh) and tries once more.
      return () =>
        Effect.flatMap(get(appId), (token) =>
          upstream(api.fetchTicket(appId, token.value, type)).pipe(
            Effect.catchTag("InvalidCredential", () =>
              Effect.flatMap(refresh(appId, token.value), (fresh) => upstream(api.fetchTicket(appId, fresh.value, type))))
          ))
    }

    // Tickets start on first use; access tokens at start-up. The stored record
    // is loaded first, so a restart neither burns quota nor kills the token
    // other servers hold.
    const start = (appId: AppId, kind: CredentialKind): Effect.Effect<Cell> =>
      Effect.gen(function*() {
        const key = { appId, kind }
        // A new ticket leaves the previous one 5 minutes, like a classic token.
        const mode = kind === "access_token" ? config.mode : "classic"
        const stored = yield* store.get(key).pipe(
          Effect.map(Option.filter((record) => record.mode === mode)),
          Effect.catchTag("StoreError", (error) =>
            Effect.logWarning("token store unreadable at start-up", error.message).pipe(Effect.as(Option.none())))
        )
        const cell: Cell = {
          key,
          mode,
          issue: issuerOf(appId, kind),
          held: yield* Ref.make(Option.getOrUndefined(Option.map(stored, toHeld))),
          inflight: yield* Ref.make<Deferred.Deferred<Held, AccessTokenError> | undefined>(undefined),
          lastFailure: yield* Ref.make<Failure | undefined>(undefined),
          forced: yield* Ref.make({ day: 0, used: 0, lastAt: -Infinity })
        }
        // Two first requests for a ticket may race here: the first cell wins.
        const existing = cells.get(keyString(key))
        if (existing !== undefined) return existing
        cells.set(keyString(key), cell)
        yield* FiberMap.run(loops, keyString(key), maintain(cell))
        return cell
      })

    const get = (appId: string, kind: CredentialKind = "access_token") => {
      // A started cell is served without the extra step of `cellOf`.
      const started = cells.get(`${appId}/${kind}`)
      return started !== undefined ? serve(started, usable) : Effect.flatMap(cellOf(appId, kind), (cell) => serve(cell, usable))
    }

    const refresh = (appId: string, staleValue?: string, kind: CredentialKind = "access_token") =>
      Effect.flatMap(cellOf(appId, kind), (cell) => serve(cell, replacing(staleValue)))

    // Tokens written by other replicas replace ours as soon as the store says so.
    yield* store.changes.pipe(
      Stream.runForEach((record) => {
        const cell = cells.get(keyString(record))
        return cell === undefined ? Effect.void : adopt(cell, record)
      }),
      Effect.retry(Schedule.spaced(Duration.seconds(1))),
      Effect.forkIn(scope)
    )

    yield* Effect.forEach(config.apps, (app) => start(app.appId, "access_token"), { discard: true })

    const status = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* Effect.forEach(cells.values(), (cell) =>
        Effect.all([Ref.get(cell.held), Ref.get(cell.lastFailure)]).pipe(
          Effect.map(([held, failure]): CredentialStatus => ({
            appId: cell.key.appId,
            kind: cell.key.kind,
            valid: held !== undefined && isUsable(held.record, now),
            record: Option.fromNullable(held?.record),
            lastError: Option.fromNullable(failure?.error)
          }))
        ))
    })

    const forceRefreshBudget = (appId: string) =>
      Effect.gen(function*() {
        const cell = yield* cellOf(appId, "access_token")
        const now = yield* Clock.currentTimeMillis
        const spent = yield* Ref.get(cell.forced)
        const usedToday = spent.day === Math.floor(now / DAY_MILLIS) ? spent.used : 0
        return {
          usedToday,
          remainingToday: FORCE_REFRESH_PER_DAY - usedToday,
          nextAllowedAt: usedToday >= FORCE_REFRESH_PER_DAY
            ? (Math.floor(now / DAY_MILLIS) + 1) * DAY_MILLIS
            : Math.max(now, spent.lastAt + Duration.toMillis(FORCE_REFRESH_SPACING))
        }
      })

    return TokenEngine.of({ apps: config.apps.map((app) => app.appId), get, refresh, status, forceRefreshBudget })
  })

/**
 * The engine and the `AccessToken` view of it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: EngineOptions
): Layer.Layer<TokenEngine | AccessToken, never, TokenConfig | TokenStore | WeChatApi> =>
  Layer.effect(
    AccessToken,
    Effect.map(TokenEngine, (engine) =>
      AccessToken.of({
        get: (appId) => engine.get(appId),
        refresh: (appId, staleToken) => engine.refresh(appId, staleToken)
      }))
  ).pipe(Layer.provideMerge(Layer.scoped(TokenEngine, make(options))))
