/**
 * The refresh policy on one screen: pure rules over numbers and records, kept
 * apart from the engine that applies them (as golang/oauth2 keeps "is this
 * token valid" apart from its cache, and aws-sdk-go-v2's `CredentialsCache`
 * decides "fetch now" in one place).
 *
 * Policy at a glance
 * - Plan: a credential issued for `lifetime` expires at request time +
 *   lifetime (WeChat starts the clock when it issues). It is refreshed at
 *   expiry − margin + jitter: margin = min(configured margin, the overlap
 *   rule's cap, lifetime / 2); jitter ∈ [0, margin / 2] only ever moves the
 *   refresh later, so a day costs ⌈86400 / (lifetime − margin)⌉ fetches.
 * - Overlap rules (what a replacement does to the credential it replaces):
 *   - `classic`: it dies 5 minutes after the next fetch, so it is usable until
 *     min(expiry, refreshAt + 5 min).
 *   - `stable`: the issuer renews it itself in its last 5 minutes, so the
 *     margin is capped at 5 minutes; usable until expiry.
 *   - `none`: it dies as soon as the next one is fetched: usable until
 *     min(expiry, refreshAt).
 * - Same value back: an answer carrying the value already held never extends
 *   its expiry; the next attempt is planned at that real end.
 * - Handed out only while at least `MIN_REMAINING` (5 s) remains. Fetch now:
 *   a caller (`usable`) when nothing usable is held; the schedule
 *   (`scheduled`) also from `refreshAt` on; a compare-and-refresh
 *   (`replacing`) also while the rejected value is still the held one.
 * - Failures, by class: `transient` waits a jittered backoff (1 s,
 *   doubling, at most a minute) before the next fetch, and callers finding
 *   no usable credential fail fast until then, cold or warm; `dead-credential`
 *   and `configuration` pause 5 minutes (callers fail fast as long); `quota`
 *   pauses an hour; `store` (a classic refresh the store refused) pauses 5 s.
 * - Fetch bucket: callers and the schedule fetch one credential at most
 *   3 times at once and then once per 5 s, whatever the issuer answers: at
 *   most 723 fetches an hour (`maxFetches`); a failing issuer, at most 80
 *   (`maxFailingFetches`).
 * - Lifetimes: an answered `expires_in` is a whole number of seconds of at
 *   least `MIN_LIFETIME` (10 s; shorter is refused); above `MAX_LIFETIME`
 *   (a day) it is clamped (`lifetimeSeconds`).
 * - Forced refreshes (stable `force_refresh`): one budget of 20 a day, 30 s apart.
 * - Pacing: the schedule starts at most `pacingBudget` refreshes a second,
 *   about twice the rate the held credentials call for; the rest wait for
 *   the next second. Only a refresh of a credential still usable for
 *   `PACING_RESERVE` more is deferred: never a first fetch, a
 *   compare-and-refresh, a retry after a failure, nor one near its end.
 * - Re-validation: a replica compares each `classic` credential it holds with
 *   the store's record every `revalidationMillis` (30 s, at most 4 minutes),
 *   so it never serves a token another replica replaced past its overlap.
 *
 * @since 0.2.0
 */
import { Duration, Either, Schema } from "effect"
import type { AccessTokenError } from "./AccessToken.js"
import type { TokenRecord } from "./Token.js"
import { replaces } from "./TokenStore.js"
import type { WeChatError } from "./WeChatError.js"

/**
 * What issuing a new credential does to the one it replaces.
 *
 * @since 0.2.0
 * @category overlap
 */
export const OverlapRule = Schema.Literal("classic", "stable", "none")

/**
 * @since 0.2.0
 * @category overlap
 */
export type OverlapRule = typeof OverlapRule.Type

/**
 * How long a replaced `classic` credential lives on, and the `stable` renewal window.
 *
 * @since 0.1.0
 * @category overlap
 */
export const OVERLAP = Duration.minutes(5)

/**
 * A credential is handed out only while it has at least this long to live,
 * so a caller never receives one that dies in flight.
 *
 * @since 0.1.0
 * @category validity
 */
export const MIN_REMAINING = Duration.seconds(5)

/**
 * The last moment a caller may use the record: never past the moment the
 * issuer would kill it. In `classic` the next fetch (planned at `refreshAt`)
 * kills it 5 minutes later, which can come before `expiresAt` when the
 * margin is longer than the overlap.
 *
 * @since 0.1.0
 * @category validity
 */
export const usableUntil = (record: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt">): number => {
  switch (record.mode) {
    case "classic":
      return Math.min(record.expiresAt, record.refreshAt + Duration.toMillis(OVERLAP))
    case "stable":
      return record.expiresAt
    case "none":
      return Math.min(record.expiresAt, record.refreshAt)
  }
}

/**
 * True while the record may still be handed out at `now`.
 *
 * @since 0.1.0
 * @category validity
 */
export const isUsable = (record: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt">, now: number): boolean =>
  now + Duration.toMillis(MIN_REMAINING) < usableUntil(record)

/**
 * What a caller asks of the engine: the one place that decides "fetch now".
 * `replaces` names the value a compare-and-refresh caller saw rejected.
 *
 * @since 0.2.0
 * @category fetch now
 */
export interface Demand {
  readonly needsFetch: (record: TokenRecord | undefined, now: number) => boolean
  readonly replaces?: string
}

const unusable = (record: TokenRecord | undefined, now: number): record is undefined =>
  record === undefined || !isUsable(record, now)

/**
 * A caller: fetch only when nothing usable is held.
 *
 * @since 0.2.0
 * @category fetch now
 */
export const usable: Demand = { needsFetch: unusable }

/**
 * The background schedule: also from the planned `refreshAt` on.
 *
 * @since 0.2.0
 * @category fetch now
 */
export const scheduled: Demand = { needsFetch: (record, now) => unusable(record, now) || now >= record.refreshAt }

/**
 * Compare-and-refresh: also while `stale` is still the held value; without
 * `stale`, always.
 *
 * @since 0.2.0
 * @category fetch now
 */
export const replacing = (stale: string | undefined): Demand =>
  stale === undefined
    ? { needsFetch: () => true }
    : { needsFetch: (record, now) => unusable(record, now) || record.value === stale, replaces: stale }

/**
 * After a contest (`TokenStore.isContested`): also until the held record
 * replaces every contested one, so one fetch (under the lease) ends the
 * doubt for every replica.
 *
 * @since 0.3.0
 * @category fetch now
 */
export const settling = (contested: ReadonlyArray<TokenRecord>): Demand => ({
  needsFetch: (record, now) => unusable(record, now) || !contested.every((other) => replaces(record, other))
})

/**
 * What the plan needs to know about one answer from the issuer.
 *
 * @since 0.2.0
 * @category plan
 */
export interface PlanInput {
  readonly overlap: OverlapRule
  readonly marginMillis: number
  /** When the request was sent: the issuer counts the lifetime from about then. */
  readonly requestedAt: number
  readonly value: string
  readonly lifetimeMillis: number
  /** The newest record held before the fetch, if any. */
  readonly held?: Pick<TokenRecord, "value" | "expiresAt"> | undefined
  /** A uniform draw in [0, 1) (Effect `Random.next`): where in the jitter range the refresh lands. */
  readonly draw: number
}

/**
 * The effective margin: the configured one, capped by the overlap rule (a
 * `stable` credential is renewed by the issuer only in its last 5 minutes, so
 * asking earlier only returns the same one) and by half the lifetime (so a
 * short-lived credential cannot cause a refresh loop).
 *
 * @since 0.2.0
 * @category plan
 */
export const marginMillis = (overlap: OverlapRule, configuredMillis: number, lifetimeMillis: number): number =>
  Math.min(configuredMillis, overlap === "stable" ? Duration.toMillis(OVERLAP) : Infinity, lifetimeMillis / 2)

/**
 * When the answer expires and when to ask again.
 *
 * @since 0.2.0
 * @category plan
 */
export const plan = (input: PlanInput): { readonly expiresAt: number; readonly refreshAt: number } => {
  const held = input.held
  // Some issuers answer the value they already issued while it is valid,
  // labelled with a fresh lifetime: that label must not extend its life.
  // Nothing newer exists before its real end, so that is the next attempt.
  if (held !== undefined && held.value === input.value && held.expiresAt > input.requestedAt) {
    const expiresAt = Math.min(held.expiresAt, input.requestedAt + input.lifetimeMillis)
    return { expiresAt, refreshAt: expiresAt }
  }
  const expiresAt = input.requestedAt + input.lifetimeMillis
  const margin = marginMillis(input.overlap, input.marginMillis, input.lifetimeMillis)
  const jitter = Math.floor(input.draw * (Math.floor(margin / 2) + 1))
  return { expiresAt, refreshAt: expiresAt - margin + jitter }
}

/**
 * How long a held credential lives, on average, between two scheduled
 * refreshes: its lifetime less the effective margin plus the mean of the
 * plan's jitter (margin / 4). A warm record read from the store keeps the
 * lifetime it was issued with (`expiresAt − fetchedAt`). At least a second,
 * so a record with no life left cannot weigh without bound.
 *
 * @since 0.3.0
 * @category pacing
 */
export const cycleMillis = (
  record: Pick<TokenRecord, "mode" | "fetchedAt" | "expiresAt">,
  configuredMarginMillis: number
): number => {
  const lifetime = record.expiresAt - record.fetchedAt
  const margin = marginMillis(record.mode, configuredMarginMillis, lifetime)
  return Math.max(1_000, lifetime - margin + margin / 4)
}

/**
 * How many times the mean rate of scheduled refreshes the schedule may start
 * in one second.
 *
 * Why 2: with a random phase per credential and a random jitter each cycle,
 * the refreshes due in one second are a Poisson count around the mean rate
 * `r`; its busiest second of a day is 2–5 × `r` (more the smaller `r`). A cap
 * at 2 × `r` cuts those few peaks and leaves the schedule half idle on
 * average, so what it defers drains in the next second or two (a cap nearer
 * `r` would make the deferred wait grow like a queue near saturation, as
 * `ρ / (1 − ρ)`); a looser cap would leave the busiest second above twice
 * the mean, which is the goal.
 *
 * @since 0.3.0
 * @category pacing
 */
export const PACING_FACTOR = 2

/**
 * Scheduled refreshes the engine may start in one second of its clock when
 * it expects `refreshesPerSecond` on average (Σ 1 / `cycleMillis` over the
 * credentials it holds). Rounded down, not up: the goal compares the busiest
 * second with the mean, and ⌈2 × r⌉ is above 2 × r whenever that is not
 * whole (at 100,000 credentials, r ≈ 14.3: ⌈28.7⌉ = 29 is 2.02 × r). Rounded
 * down the cap is still at least 4/3 × r once r ≥ 1. Below one expected
 * refresh a second the cap is 1: a schedule must always move.
 *
 * @since 0.3.0
 * @category pacing
 */
export const pacingBudget = (refreshesPerSecond: number): number =>
  Math.max(1, Math.floor(PACING_FACTOR * refreshesPerSecond))

/**
 * Pacing defers a scheduled refresh only while the held credential stays
 * usable at least this much longer: room for the fetch and its first
 * retries (1 + 2 + 4 + 8 + 16 + 32 s of backoff) before callers would find
 * nothing usable. With the default margin of 300 s a scheduled refresh has
 * 90–240 s to spare; a margin under a minute is never deferred.
 *
 * @since 0.3.0
 * @category pacing
 */
export const PACING_RESERVE = Duration.minutes(1)

/**
 * True while a due scheduled refresh of `record` may wait for a later second.
 *
 * @since 0.3.0
 * @category pacing
 */
export const mayDefer = (record: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt">, now: number): boolean =>
  now + Duration.toMillis(PACING_RESERVE) < usableUntil(record)

/**
 * How the engine reacts to a failed fetch.
 *
 * - `transient`: busy, 5xx, timeout, malformed body, minute quota.
 * - `dead-credential`: the credential a fetch depended on was rejected (after one compare-and-refresh).
 * - `configuration`: wrong secret or app id, IP not whitelisted, admin confirmation, budget spent.
 * - `quota`: the daily quota is spent.
 * - `store`: the store was down and a `classic` refresh must not race other replicas.
 *
 * @since 0.2.0
 * @category failures
 */
export type FailureClass = "transient" | "dead-credential" | "configuration" | "quota" | "store"

/**
 * @since 0.2.0
 * @category failures
 */
export interface Reaction {
  /** The wait before the next fetch after a failure of this class (`transient`: `retryDelayMillis`'s backoff instead). */
  readonly pause: Duration.Duration
  /**
   * Callers finding no usable credential fail fast with the same error this
   * long instead of fetching again: without it, a wrong secret or a dead
   * upstream would turn every request into an upstream call.
   */
  readonly cooldown: Duration.Duration
}

/**
 * The reaction to each failure class. Configuration errors still retry
 * slowly, so a fixed whitelist recovers without a restart; the daily quota
 * only comes back after hours; a store that refused a refresh is asked again soon.
 *
 * @since 0.2.0
 * @category failures
 */
export const reactions: Readonly<Record<FailureClass, Reaction>> = {
  "transient": { pause: Duration.minutes(5), cooldown: Duration.seconds(1) },
  "dead-credential": { pause: Duration.minutes(5), cooldown: Duration.minutes(5) },
  "configuration": { pause: Duration.minutes(5), cooldown: Duration.minutes(5) },
  "quota": { pause: Duration.hours(1), cooldown: Duration.hours(1) },
  "store": { pause: Duration.seconds(5), cooldown: Duration.seconds(5) }
}

/**
 * The class of a WeChat error, as WeChat's global return codes describe it:
 * busy, transport and the minute quota pass, the daily quota comes back
 * after hours, a rejected token is a dead credential, anything else needs a
 * person (wrong secret or app id, IP whitelist, admin confirmation, API misuse).
 *
 * @since 0.3.0
 * @category failures
 */
export const classify = (error: WeChatError): FailureClass => {
  switch (error._tag) {
    case "UpstreamUnavailable":
      return "transient"
    case "QuotaExceeded":
      return error.scope === "day" ? "quota" : "transient"
    case "InvalidCredential":
      return "dead-credential"
    default:
      return "configuration"
  }
}

/**
 * The class of any failure: the engine's own errors by tag, WeChat's by
 * `classify` (or a family's own, when it declares one).
 *
 * @since 0.2.0
 * @category failures
 */
export const failureClass = (
  error: AccessTokenError,
  classifyWeChat: (error: WeChatError) => FailureClass = classify
): FailureClass => {
  switch (error._tag) {
    case "StoreError":
      return "store"
    case "UnknownApp":
    case "ForceRefreshBudgetExhausted":
      return "configuration"
    // A pushed input may land any moment: the next caller must not wait out
    // a long cooldown, and the schedule's backoff bounds the asking.
    case "MissingInput":
      return "transient"
    default:
      return classifyWeChat(error)
  }
}

/**
 * The shortest lifetime (`expires_in`) an issuer's answer may carry. WeChat
 * documents 7,200 s for every token and ticket and never answers a stable
 * token below 300 s; the floor is lower than any of those so that an
 * issuer configured with short lifetimes still works, and it is twice
 * `MIN_REMAINING` because a credential handed out only while 5 s remain
 * would otherwise reach no caller at all. Below it an answer is refused
 * (a typed `UpstreamUnavailable`, retried with backoff), not clamped:
 * serving a credential longer than its issuer said would hand out dead ones.
 *
 * @since 0.3.0
 * @category lifetimes
 */
export const MIN_LIFETIME = Duration.seconds(10)

/**
 * The longest lifetime an issuer's answer is taken to carry: a day, twelve
 * times the documented 7,200 s. Above it the lifetime is clamped, not
 * refused: ending a credential early is always safe (the next refresh
 * replaces it, a `classic` one with its 5 minutes of overlap), while
 * refusing would leave callers nothing for an answer whose value is fine.
 * Without a ceiling, `expires_in: 1e12` would be a 31,000-year credential
 * that is never refreshed and dates no `Date` can print.
 *
 * @since 0.3.0
 * @category lifetimes
 */
export const MAX_LIFETIME = Duration.days(1)

/**
 * The lifetime to plan with, in seconds, for an answered `expires_in`:
 * clamped to `MAX_LIFETIME`, or why it is refused (not a whole number of
 * seconds, or below `MIN_LIFETIME`).
 *
 * @since 0.3.0
 * @category lifetimes
 */
export const lifetimeSeconds = (expiresIn: number): Either.Either<number, string> => {
  if (!Number.isInteger(expiresIn)) return Either.left(`expires_in ${expiresIn} is not a whole number of seconds`)
  const floor = Duration.toSeconds(MIN_LIFETIME)
  if (expiresIn < floor) return Either.left(`expires_in ${expiresIn} is below the ${floor} s floor`)
  return Either.right(Math.min(expiresIn, Duration.toSeconds(MAX_LIFETIME)))
}

/**
 * How often one credential may be fetched for callers or the schedule
 * (a compare-and-refresh is not held back: WeChat rejected the value held,
 * and the force-refresh budget bounds it where the issuer answers the same
 * value): a bucket of `FETCH_BURST` fetches, refilled one per
 * `FETCH_REFILL`. A fetch finding the bucket empty waits for it, so no
 * answer of any issuer can make a credential cost more than
 * `maxFetches(1 hour)` = 723 fetches an hour, 17,000-odd a day in the
 * worst case: that is an issuer answering the shortest lifetime accepted
 * (10 s) each time. The burst lets a cold start retry its first failures
 * fast; a fetched credential lives at least `MIN_LIFETIME`, so nothing
 * the engine plans waits on the bucket.
 *
 * @since 0.3.0
 * @category failures
 */
export const FETCH_BURST = 3

/**
 * @since 0.3.0
 * @category failures
 */
export const FETCH_REFILL = Duration.seconds(5)

/**
 * A credential's fetch bucket: `tokens` left at `at`.
 *
 * @since 0.3.0
 * @category failures
 */
export interface FetchBucket {
  readonly tokens: number
  readonly at: number
}

/**
 * A full bucket.
 *
 * @since 0.3.0
 * @category failures
 */
export const fullBucket: FetchBucket = { tokens: FETCH_BURST, at: -Infinity }

/**
 * Takes one fetch from the bucket at `now`: the bucket after it, and how
 * long the fetch must wait first (0 when a token is there).
 *
 * @since 0.3.0
 * @category failures
 */
export const takeFetch = (
  bucket: FetchBucket,
  now: number
): { readonly bucket: FetchBucket; readonly waitMillis: number } => {
  const refill = Duration.toMillis(FETCH_REFILL)
  const tokens = Math.min(FETCH_BURST, bucket.tokens + Math.max(0, now - bucket.at) / refill)
  const waitMillis = tokens >= 1 ? 0 : Math.ceil((1 - tokens) * refill)
  return { bucket: { tokens: tokens + waitMillis / refill - 1, at: now + waitMillis }, waitMillis }
}

/**
 * The most fetches one credential can cost in `windowMillis`, whatever its
 * issuer answers: the burst, then one per `FETCH_REFILL`. For an hour: 723.
 *
 * @since 0.3.0
 * @category failures
 */
export const maxFetches = (windowMillis: number): number =>
  FETCH_BURST + Math.floor(windowMillis / Duration.toMillis(FETCH_REFILL))

/**
 * The longest wait between two fetches after transient failures: the
 * backoff doubles from 1 s up to this.
 *
 * @since 0.3.0
 * @category failures
 */
export const MAX_BACKOFF = Duration.minutes(1)

/**
 * How long after the `streak`-th failure in a row (1 for the first) the
 * next fetch may start, cold or warm: callers finding nothing usable fail
 * fast with the failure until then, and the schedule waits as long.
 * Transient failures back off from 1 s, doubling up to `MAX_BACKOFF`, less
 * a jitter of up to a fifth drawn from `draw` ∈ [0, 1), so credentials and
 * replicas that failed together do not come back together. Other classes
 * wait their `reactions` pause.
 *
 * @since 0.3.0
 * @category failures
 */
export const retryDelayMillis = (failure: FailureClass, streak: number, draw: number): number => {
  if (failure !== "transient") return Duration.toMillis(reactions[failure].pause)
  const base = Math.min(
    Duration.toMillis(MAX_BACKOFF),
    Duration.toMillis(reactions.transient.cooldown) * 2 ** Math.min(Math.max(0, streak - 1), 30)
  )
  return base - Math.floor(draw * base / 5)
}

/**
 * When the next fetch may start after a failure at `failedAt` that asks
 * for `delayMillis`: then, or earlier when the credential held (usable
 * until `usableUntil`; 0 for none) would die first, at its last usable
 * second (the engine asks this for transient failures only). Static stability: a backoff grown long during an outage must
 * not let a still-valid credential expire unreplaced when the issuer has
 * come back; it costs one fetch more per credential lifetime.
 *
 * @since 0.3.0
 * @category failures
 */
export const retryAt = (failedAt: number, delayMillis: number, usableUntil: number): number => {
  const lastChance = usableUntil - Duration.toMillis(MIN_REMAINING) - 1_000
  return lastChance > failedAt ? Math.min(failedAt + delayMillis, lastChance) : failedAt + delayMillis
}

/**
 * The most fetches one credential can cost in `windowMillis` when every
 * fetch fails (transient failures, the fastest retried): the shortest
 * backoff (the largest jitter) between fetches, from a first fetch at the
 * window's start. For an hour: 80.
 *
 * @since 0.3.0
 * @category failures
 */
export const maxFailingFetches = (windowMillis: number): number => {
  let fetches = 0
  for (let at = 0, streak = 1; at <= windowMillis; streak++) {
    fetches += 1
    at += retryDelayMillis("transient", streak, 1)
  }
  return fetches
}

/**
 * A forced-refresh allowance: `perDay` per UTC day, `spacingMillis` apart.
 *
 * @since 0.2.0
 * @category force refresh
 */
export interface ForceRefreshRule {
  readonly perDay: number
  readonly spacingMillis: number
}

/**
 * Stable mode's `force_refresh`: WeChat grants 20 a day, 30 s apart.
 *
 * @since 0.2.0
 * @category force refresh
 */
export const STABLE_FORCE_REFRESH: ForceRefreshRule = { perDay: 20, spacingMillis: 30_000 }

/**
 * What has been spent: on which day, how many, the last one when.
 *
 * @since 0.2.0
 * @category force refresh
 */
export interface ForceRefreshSpent {
  readonly day: number
  readonly used: number
  readonly lastAt: number
}

/**
 * Nothing spent yet.
 *
 * @since 0.2.0
 * @category force refresh
 */
export const nothingSpent: ForceRefreshSpent = { day: 0, used: 0, lastAt: -Infinity }

/**
 * The budget as `/v1` callers and operators see it.
 *
 * @since 0.1.0
 * @category force refresh
 */
export interface ForceRefreshBudget {
  readonly usedToday: number
  readonly remainingToday: number
  readonly nextAllowedAt: number
}

const DAY_MILLIS = 86_400_000

/**
 * The budget at `now`.
 *
 * @since 0.2.0
 * @category force refresh
 */
export const budgetAt = (rule: ForceRefreshRule, spent: ForceRefreshSpent, now: number): ForceRefreshBudget => {
  const day = Math.floor(now / DAY_MILLIS)
  const usedToday = spent.day === day ? spent.used : 0
  return {
    usedToday,
    remainingToday: rule.perDay - usedToday,
    nextAllowedAt: usedToday >= rule.perDay ? (day + 1) * DAY_MILLIS : Math.max(now, spent.lastAt + rule.spacingMillis)
  }
}

/**
 * Spends one forced refresh at `now`: the new state, or when the next one is allowed.
 *
 * @since 0.2.0
 * @category force refresh
 */
export const spend = (
  rule: ForceRefreshRule,
  spent: ForceRefreshSpent,
  now: number
): Either.Either<ForceRefreshSpent, number> => {
  const budget = budgetAt(rule, spent, now)
  return budget.nextAllowedAt > now
    ? Either.left(budget.nextAllowedAt)
    : Either.right({ day: Math.floor(now / DAY_MILLIS), used: budget.usedToday + 1, lastAt: now })
}

// Re-validation ------------------------------------------------------------

/**
 * How often a replica compares each `classic` (and `none`) credential it
 * holds with the store's record. Change messages tell replicas of a new
 * record at once; this bounds what they miss (the store lost its data and
 * a replica wrote into the empty store, a message lost while a connection
 * was down, writes the store refused): a replaced `classic` token dies
 * `OVERLAP` after the fetch that replaced it, and a replica serving it must
 * learn of the replacement before. Every `REVALIDATION_MIN`, slower only
 * when that would read more than `REVALIDATION_READS` records a second, and
 * never slower than `REVALIDATION_MAX`, a minute inside the overlap.
 *
 * @since 0.3.0
 * @category revalidation
 */
export const REVALIDATION_MIN = Duration.seconds(30)

/**
 * @since 0.3.0
 * @category revalidation
 */
export const REVALIDATION_MAX = Duration.minutes(4)

/**
 * @since 0.3.0
 * @category revalidation
 */
export const REVALIDATION_READS = 1_000

/**
 * The period between two re-validations of `credentials` held credentials.
 *
 * @since 0.3.0
 * @category revalidation
 */
export const revalidationMillis = (credentials: number): number =>
  Math.min(
    Duration.toMillis(REVALIDATION_MAX),
    Math.max(Duration.toMillis(REVALIDATION_MIN), Math.ceil(credentials * 1_000 / REVALIDATION_READS))
  )
