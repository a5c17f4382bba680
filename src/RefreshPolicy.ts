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
 *   doubling, at most a minute; `Backoff`) before the next fetch, and callers
 *   finding no usable credential fail fast until then, cold or warm;
 *   `dead-credential` and `configuration` pause 5 minutes (callers fail fast
 *   as long); `quota` pauses an hour; `store` (a classic refresh the store
 *   refused) pauses 5 s. Every credential's fetches draw from one bucket
 *   (`Backoff`): at most 723 an hour.
 * - Store down at a refresh (`defersOnStoreDown`): a `stable` kind refreshes
 *   locally; any other defers while its value stays usable past the pause.
 * - Lifetimes: an answered `expires_in` is a whole number of seconds of at
 *   least `MIN_LIFETIME` (10 s; shorter is refused); above `MAX_LIFETIME`
 *   (a day) it is clamped (`lifetimeSeconds`).
 * - Forced refreshes (stable `force_refresh`): one budget of 20 a day, 30 s apart.
 * - Pacing (`Pacing`): the schedule starts at most about twice the refreshes
 *   a second that the held credentials call for; a cold start's herd is
 *   spread over a lifetime.
 * - Re-validation: a replica compares each `classic` credential it holds with
 *   the store's record every `revalidationMillis` (30 s, at most 4 minutes),
 *   so it never serves a token another replica replaced past its overlap.
 * - Shared work: replicas on one store each refresh their own share of the
 *   credentials (`sharedTurn`); a replica counts as alive for `REPLICA_TTL`
 *   after its last heartbeat (every `HEARTBEAT`), and another's credential
 *   still unrefreshed halfway to its usable end is refreshed anyway.
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

// In milliseconds once: the hot route asks `isUsable` on every request, and
// decoding a `Duration` each time was a visible share of its cost.
const OVERLAP_MILLIS = Duration.toMillis(OVERLAP)
const MIN_REMAINING_MILLIS = Duration.toMillis(MIN_REMAINING)

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
      return Math.min(record.expiresAt, record.refreshAt + OVERLAP_MILLIS)
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
  now + MIN_REMAINING_MILLIS < usableUntil(record)

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
 * settles it, so one fetch (under the lease) ends the doubt for every
 * replica.
 *
 * A record settles a contest when it replaces every contested one, or when
 * it succeeds one of them in its lineage and none of them replaces it. A
 * successor was fetched by a replica that read its predecessor from the
 * store under the lease, so after the contest arose: it ends the doubt as
 * surely as a fetch of our own, and fetching past it would only start a new
 * contest (records fetched within `CLOCK_SKEW` of each other replace none
 * across lineages), one more classic fetch per replica.
 *
 * @since 0.3.0
 * @category fetch now
 */
export const settling = (contested: ReadonlyArray<TokenRecord>): Demand => ({
  needsFetch: (record, now) => unusable(record, now) || !settles(record, contested)
})

const settles = (record: TokenRecord, contested: ReadonlyArray<TokenRecord>): boolean =>
  contested.every((other) => replaces(record, other)) ||
  (contested.some((other) => other.lineage === record.lineage && record.generation > other.generation) &&
    !contested.some((other) => replaces(other, record)))

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
 * Whether a refresh the store cannot lease (it is down) waits instead of
 * fetching locally: a kind whose issuer hands every replica the same value
 * (`stable`) may refresh locally; any other must not fight other replicas
 * while it still has a usable value, and defers only while the value held
 * stays usable past the `pauseMillis` until the next attempt: deferring
 * past that would leave callers a window with nothing to serve.
 *
 * @since 0.3.0
 * @category fetch now
 */
export const defersOnStoreDown = (
  overlap: OverlapRule,
  held: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt"> | undefined,
  now: number,
  pauseMillis: number
): boolean => overlap !== "stable" && held !== undefined && isUsable(held, now + pauseMillis)

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

/**
 * How often a replica sharing the refresh work tells the store it is alive.
 *
 * Each heartbeat is a store round trip and a wake-up of the engine; all it
 * buys is how soon a dead replica's share moves, which only has to happen
 * well within a refresh margin (5 minutes by default): the credentials stay
 * usable for the whole margin. Every 30 s that is 2,880 round trips a day
 * per replica (17,280 at 5 s), and a crashed replica's credentials are
 * refreshed by the others at most `2 × REPLICA_TTL + HEARTBEAT` (170 s)
 * after they fell due.
 *
 * @since 0.3.0
 * @category shared work
 */
export const HEARTBEAT = Duration.seconds(30)

/**
 * How long a replica counts as alive after its last heartbeat: two
 * heartbeats and the `CLOCK_SKEW` between replicas (each stamps its own
 * clock), so a live replica never drops out, and a dead one's share passes
 * to the others within `REPLICA_TTL` + `HEARTBEAT`.
 *
 * @since 0.3.0
 * @category shared work
 */
export const REPLICA_TTL = Duration.seconds(70)

/**
 * What a replica does with a credential when its turn comes: `undefined` to
 * refresh it now, else when to look at it again.
 *
 * - `owned` (this replica's share, or no share known): refresh now.
 * - Another replica's: look again every `REPLICA_TTL` (by then its refresh
 *   has reached this replica, or the owner died and the share moved), and
 *   refresh it anyway from halfway between `refreshAt` and its usable end:
 *   an owner that cannot refresh (its upstream or its store fails) must not
 *   let the credential die. The store's lease keeps that refresh single.
 * - Another replica's with nothing held: look again; a caller asking for it
 *   meanwhile fetches it through the lease.
 *
 * @since 0.3.0
 * @category shared work
 */
export const sharedTurn = (input: {
  readonly owned: boolean
  readonly now: number
  readonly held: Pick<TokenRecord, "mode" | "expiresAt" | "refreshAt"> | undefined
}): number | undefined => {
  if (input.owned) return undefined
  const recheck = input.now + Duration.toMillis(REPLICA_TTL)
  if (input.held === undefined) return recheck
  const { refreshAt } = input.held
  const takeoverAt = refreshAt + Math.floor((usableUntil(input.held) - refreshAt) / 2)
  return input.now >= takeoverAt ? undefined : Math.min(recheck, takeoverAt)
}
