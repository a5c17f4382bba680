/**
 * One credential of one owner, as the engine holds it: the record held, the
 * last failure, the forced-refresh budget spent, the fetch bucket, and the
 * records seen contested. Every change of a cell is one of the transitions
 * below, each one synchronous step (as a `Ref` update would be).
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Random } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import * as Backoff from "../../Backoff.js"
import type { CredentialFamily, CredentialKindSpec, Issued } from "../../CredentialFamily.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { type CredentialKind, MIN_REMAINING, TokenRecord, usableUntil } from "../../Token.js"
import type { RecordKey } from "../../TokenStore.js"
import { ForceRefreshBudgetExhausted } from "../../WeChatError.js"
import type * as DueQueue from "../dueQueue.js"

/** @internal */
export interface Failure {
  readonly error: AccessTokenError
  readonly at: number
  /** Failures in a row, this one included: how far the backoff has grown. */
  readonly streak: number
  /** No fetch for callers or the schedule before then (`Backoff.retryAfterFailure`). */
  readonly retryAt: number
}

/** @internal */
export interface Held {
  readonly record: TokenRecord
  readonly credential: Credential
}

/** @internal */
export const toHeld = (record: TokenRecord): Held => ({
  record,
  credential: { value: record.value, expiresAt: usableUntil(record) }
})

// `isUsable(held.record, now)` without reading the record: the credential's
// `expiresAt` is the record's usable end. A pass over 200,000 cells then
// reads what each cell allocated beside it (the cell, its held pair), not
// records scattered over the heap by whatever decoded them: measured 5×
// faster for a /readyz at 100,000 authorizers.
const MIN_REMAINING_MILLIS = Duration.toMillis(MIN_REMAINING)

/** @internal */
export const isUsableUntil = (usableUntil: number, now: number): boolean => now + MIN_REMAINING_MILLIS < usableUntil

// One per owner and kind, for as long as the engine runs: 100,000
// credentials are 100,000 cells, so a cell holds plain fields and no fiber.
// The server's fast path reads `held` synchronously (`peek`).
/** @internal */
export interface Cell extends DueQueue.Entry {
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
  fetches: Backoff.FetchBucket
  /** Its row in the engine's cell table (`cellTable.ts`) while live, -1 otherwise. Owned by the table. */
  row: number
}

/** @internal */
export const make = (
  key: RecordKey,
  spec: CredentialKindSpec,
  family: CredentialFamily,
  label: string,
  held: Held | undefined
): Cell => ({
  key,
  spec,
  family,
  label,
  usableUntil: held?.credential.expiresAt ?? 0,
  held,
  lastFailure: undefined,
  forced: RefreshPolicy.nothingSpent,
  contested: undefined,
  fetches: Backoff.fullBucket,
  due: 0,
  slot: -1,
  row: -1
})

/** @internal */
export const hold = (cell: Cell, held: Held): Held => {
  cell.held = held
  cell.usableUntil = held.credential.expiresAt
  return held
}

/** @internal */
export const annotate = (cell: Cell) => Effect.annotateLogs({ app: cell.key.appId, kind: cell.key.kind })

/** @internal */
export const failureClass = (cell: Cell, error: AccessTokenError): RefreshPolicy.FailureClass =>
  RefreshPolicy.failureClass(error, cell.family.classify)

/** @internal */
export const reactionTo = (cell: Cell, error: AccessTokenError): RefreshPolicy.Reaction =>
  RefreshPolicy.reactions[failureClass(cell, error)]

/** A fetch succeeded: the backoff starts over. */
export const succeeded = (cell: Cell): Effect.Effect<void> =>
  Effect.sync(() => {
    cell.lastFailure = undefined
  })

/** A fetch failed: the streak grows, and no fetch comes before the policy's retry time. */
export const failed = (cell: Cell, error: AccessTokenError): Effect.Effect<void> =>
  Effect.map(Effect.all([Clock.currentTimeMillis, Random.next]), ([at, draw]) => {
    const streak = (cell.lastFailure?.streak ?? 0) + 1
    const retryAt = Backoff.retryAfterFailure(failureClass(cell, error), streak, draw, at, cell.usableUntil)
    cell.lastFailure = { error, at, streak, retryAt }
  })

/** @internal */
export const coolsDown = (cell: Cell, error: AccessTokenError): boolean => Backoff.coolsDown(error, cell.key)

/** Whether the cell's last fetch failed for want of `owner`'s `kind` (`MissingInput`). */
export const lacks = (cell: Cell, owner: string, kind: CredentialKind): boolean => {
  const error = cell.lastFailure?.error
  return error?._tag === "MissingInput" && error.appId === owner && error.kind === kind
}

/** The failure callers fail fast with at `now`, if its backoff still holds. */
export const coolingDown = (cell: Cell, now: number): AccessTokenError | undefined => {
  const failure = cell.lastFailure
  return failure !== undefined && coolsDown(cell, failure.error) && now < failure.retryAt ? failure.error : undefined
}

/** Spends one forced refresh of the kind's budget, or fails with when the next is allowed. */
export const spendForceRefresh = (
  cell: Cell,
  rule: RefreshPolicy.ForceRefreshRule
): Effect.Effect<void, ForceRefreshBudgetExhausted> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const spent = RefreshPolicy.spend(rule, cell.forced, now)
    if (Either.isLeft(spent)) {
      return new ForceRefreshBudgetExhausted({ appId: cell.key.appId, nextAllowedAt: spent.left })
    }
    cell.forced = spent.right
    return Effect.void
  })

// Whatever the issuer answers, callers and the schedule cannot fetch
// faster than the bucket refills.
/** @internal */
export const takeFetch = (cell: Cell): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const taken = Backoff.takeFetch(cell.fetches, now)
    cell.fetches = taken.bucket
    return taken.waitMillis > 0 ? Effect.sleep(Duration.millis(taken.waitMillis)) : Effect.void
  })

/** @internal */
export const contest = (cell: Cell, records: ReadonlyArray<TokenRecord>): void => {
  cell.contested = records
}

/** The contest a job fetched past is settled, unless a newer one came meanwhile. */
export const settle = (cell: Cell, contested: ReadonlyArray<TokenRecord> | undefined): void => {
  if (cell.contested === contested) cell.contested = undefined
}

/** @internal */
export const forceRefreshBudget = (cell: Cell, now: number): RefreshPolicy.ForceRefreshBudget =>
  // A kind without a forced fetch has no budget to spend.
  RefreshPolicy.budgetAt(cell.spec.forceRefresh ?? { perDay: 0, spacingMillis: 0 }, cell.forced, now)

/** The record of what an issuer answered, the next generation of `current`. */
export const newRecord = (
  cell: Pick<Cell, "key" | "spec">,
  issued: Issued,
  requestedAt: number,
  current: TokenRecord | undefined,
  marginMillis: number
): Effect.Effect<TokenRecord> =>
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
