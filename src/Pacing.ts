/**
 * When the schedule starts the refreshes that are due: at most about twice
 * the rate the held credentials call for in any second of the clock, and a
 * cold start's herd spread over a lifetime instead of coming back as one
 * burst every cycle. Pure rules over numbers and records; the engine's
 * scheduler applies them.
 *
 * - Budget: the schedule starts at most `pacingBudget` refreshes a second;
 *   the rest wait for the next second (`nextSecond`). Only a refresh of a
 *   credential still usable for `PACING_RESERVE` more is deferred
 *   (`mayWait`): never a first fetch, a compare-and-refresh, a retry after
 *   a failure, nor one near its end.
 * - Herd: a credential fetched for the first time in a cold start of `HERD`
 *   or more refreshes first at a random point of its lifetime (`herdSpread`).
 *
 * @since 0.3.0
 */
import { Duration } from "effect"
import { marginMillis, usableUntil } from "./RefreshPolicy.js"
import type { TokenRecord } from "./Token.js"

/**
 * How long a held credential lives, on average, between two scheduled
 * refreshes: its lifetime less the effective margin plus the mean of the
 * plan's jitter (margin / 4). A warm record read from the store keeps the
 * lifetime it was issued with (`expiresAt − fetchedAt`). At least a second,
 * so a record with no life left cannot weigh without bound.
 *
 * @since 0.3.0
 * @category budget
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
 * @category budget
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
 * @category budget
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
 * @category budget
 */
export const PACING_RESERVE = Duration.minutes(1)

/**
 * True while a due scheduled refresh of `record` may wait for a later second.
 *
 * @since 0.3.0
 * @category budget
 */
export const mayDefer = (record: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt">, now: number): boolean =>
  now + Duration.toMillis(PACING_RESERVE) < usableUntil(record)

/**
 * What the schedule started in the current second of the clock.
 *
 * @since 0.3.0
 * @category budget
 */
export interface PacingWindow {
  readonly second: number
  readonly started: number
}

/**
 * Nothing started yet.
 *
 * @since 0.3.0
 * @category budget
 */
export const emptyWindow: PacingWindow = { second: Number.NEGATIVE_INFINITY, started: 0 }

/**
 * Whether a due job refreshes (`held` is none or due at `now`) rather than
 * merely re-queues a credential another replica already renewed: only a
 * refresh counts in the budget.
 *
 * @since 0.3.0
 * @category budget
 */
export const refreshes = (held: Pick<TokenRecord, "refreshAt"> | undefined, now: number): boolean =>
  held === undefined || now >= held.refreshAt

/**
 * Whether a due refresh may wait for a later second: only a held record
 * whose last fetch did not fail and that stays usable `PACING_RESERVE` more.
 *
 * @since 0.3.0
 * @category budget
 */
export const mayWait = (
  held: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt"> | undefined,
  failing: boolean,
  now: number
): boolean => held !== undefined && !failing && mayDefer(held, now)

/**
 * Admits a due refresh at `now` when the held credentials call for
 * `refreshesPerSecond`: the window with it counted, or `undefined` when it
 * must wait for `nextSecond(now)` (the budget is spent and it `mayWait`).
 *
 * @since 0.3.0
 * @category budget
 */
export const admit = (
  window: PacingWindow,
  now: number,
  refreshesPerSecond: number,
  waits: boolean
): PacingWindow | undefined => {
  const second = Math.floor(now / 1_000)
  const started = second === window.second ? window.started : 0
  if (started >= pacingBudget(refreshesPerSecond) && waits) return undefined
  return { second, started: started + 1 }
}

/**
 * The start of the second after `now`'s: when a deferred refresh is due again.
 *
 * @since 0.3.0
 * @category budget
 */
export const nextSecond = (now: number): number => (Math.floor(now / 1_000) + 1) * 1_000

/**
 * A cold start of this many credentials or more is a herd (`herdSpread`); fewer are not.
 *
 * @since 0.3.0
 * @category herd
 */
export const HERD = 256

/**
 * When a credential fetched for the first time (`firstFetch`) in an engine
 * of `credentials` may refresh first: between `from` and `to`, uniformly,
 * or `undefined` to keep its plan.
 *
 * Why: a cold start of a herd fetches every credential within minutes; left
 * alone their refreshes would come back as the same burst every lifetime.
 * Spread instead, each keeps its own phase from then on and the herd's
 * refreshes are even over the day, for one early fetch per credential,
 * once. A credential with a record (a warm start) keeps its plan. The
 * window opens one margin (expiry − refresh time) after the fetch: a
 * refresh seconds after it would be a second start-up fetch, made while
 * the herd is still being fetched.
 *
 * @since 0.3.0
 * @category herd
 */
export const herdSpread = (input: {
  readonly record: Pick<TokenRecord, "expiresAt" | "refreshAt">
  readonly requestedAt: number
  readonly firstFetch: boolean
  readonly credentials: number
}): { readonly from: number; readonly to: number } | undefined => {
  const from = input.requestedAt + (input.record.expiresAt - input.record.refreshAt)
  return !input.firstFetch || input.credentials < HERD || input.record.refreshAt <= from
    ? undefined
    : { from, to: input.record.refreshAt }
}

/**
 * The point of a spread at `draw` ∈ [0, 1).
 *
 * @since 0.3.0
 * @category herd
 */
export const pointIn = (spread: { readonly from: number; readonly to: number }, draw: number): number =>
  Math.round(spread.from + draw * (spread.to - spread.from))
