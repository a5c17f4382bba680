/**
 * How often one credential is fetched when things go wrong: the fetch
 * bucket every fetch for callers and the schedule draws from, the backoff
 * after failures in a row, and which failures make callers fail fast.
 * Pure rules over numbers; the engine's cells apply them.
 *
 * - Fetch bucket: callers, compare-and-refresh and the schedule fetch one
 *   credential at most 3 times at once and then once per 5 s, whatever the
 *   issuer answers: at most 723 fetches an hour (`maxFetches`); a failing
 *   issuer, at most 80 (`maxFailingFetches`).
 * - Backoff: `transient` failures wait 1 s, doubling to a minute, jittered;
 *   other classes wait their `RefreshPolicy.reactions` pause; never past the
 *   last usable second of a held credential (`retryAt`).
 *
 * @since 0.3.0
 */
import { Duration } from "effect"
import type { AccessTokenError } from "./AccessToken.js"
import { type FailureClass, MIN_REMAINING, reactions } from "./RefreshPolicy.js"
import type { RecordKey } from "./TokenStore.js"

/**
 * How often one credential may be fetched, for callers, the schedule or a
 * compare-and-refresh: a bucket of `FETCH_BURST` fetches, refilled one per
 * `FETCH_REFILL`. A fetch finding the bucket empty waits for it, so no
 * answer of any issuer can make a credential cost more than
 * `maxFetches(1 hour)` = 723 fetches an hour, 17,000-odd a day in the
 * worst case: an issuer answering the shortest lifetime accepted (10 s)
 * each time, or tokens that die on use with every caller reporting them
 * (held back, a compare-and-refresh waits at most 5 s; left free, such
 * reports cost 2,000 fetches within the hour). A `stable` forced refresh
 * rides on the plain fetch it follows, within its own 20 a day. The burst
 * lets a cold start retry its first failures fast; a fetched credential
 * lives at least `MIN_LIFETIME`, so nothing the engine plans waits on the
 * bucket.
 *
 * @since 0.3.0
 * @category backoff
 */
export const FETCH_BURST = 3

/**
 * @since 0.3.0
 * @category backoff
 */
export const FETCH_REFILL = Duration.seconds(5)

/**
 * A credential's fetch bucket: `tokens` left at `at`.
 *
 * @since 0.3.0
 * @category backoff
 */
export interface FetchBucket {
  readonly tokens: number
  readonly at: number
}

/**
 * A full bucket.
 *
 * @since 0.3.0
 * @category backoff
 */
export const fullBucket: FetchBucket = { tokens: FETCH_BURST, at: -Infinity }

/**
 * Takes one fetch from the bucket at `now`: the bucket after it, and how
 * long the fetch must wait first (0 when a token is there).
 *
 * @since 0.3.0
 * @category backoff
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
 * @category backoff
 */
export const maxFetches = (windowMillis: number): number =>
  FETCH_BURST + Math.floor(windowMillis / Duration.toMillis(FETCH_REFILL))

/**
 * The longest wait between two fetches after transient failures: the
 * backoff doubles from 1 s up to this.
 *
 * @since 0.3.0
 * @category backoff
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
 * @category backoff
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
 * @category backoff
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
 * @category backoff
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
 * When the next fetch may start after the `streak`-th failure in a row, of
 * class `failure`, at `failedAt`, for a credential usable until
 * `usableUntil` (0: none held). Only a `transient` failure comes back
 * early for a credential about to die: a spent quota or a wrong secret is
 * not cured by asking before the end.
 *
 * @since 0.3.0
 * @category backoff
 */
export const retryAfterFailure = (
  failure: FailureClass,
  streak: number,
  draw: number,
  failedAt: number,
  usableUntil: number
): number => retryAt(failedAt, retryDelayMillis(failure, streak, draw), failure === "transient" ? usableUntil : 0)

/**
 * Whether a failure of the credential `key` makes its callers fail fast
 * until its retry time. A missing input is cooled down by its own
 * credential, which a put clears: the credentials issued from it ask again
 * at once (failing fast from memory until then) instead of each waiting
 * out a cooldown of its own.
 *
 * @since 0.3.0
 * @category cooldown
 */
export const coolsDown = (error: AccessTokenError, key: RecordKey): boolean =>
  error._tag !== "MissingInput" || (error.appId === key.appId && error.kind === key.kind)

/**
 * When the schedule tries again after a failed refresh at `now`: at the
 * failure's retry time, and, for a failure that does not cool the
 * credential down (an input missing elsewhere), not before its class's
 * cooldown either.
 *
 * @since 0.3.0
 * @category cooldown
 */
export const nextAttemptAt = (input: {
  readonly now: number
  readonly retryAt: number | undefined
  readonly coolsDown: boolean
  readonly failure: FailureClass
}): number =>
  Math.max(
    input.retryAt ?? 0,
    input.now + (input.coolsDown ? 0 : Duration.toMillis(reactions[input.failure].cooldown))
  )
