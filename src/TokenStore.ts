/**
 * Where tokens survive restarts and are shared between replicas: the port.
 * It loads no adapter: the file store is `TokenStoreFile`, the Redis store
 * `TokenStoreRedis` (each its own subpath export), and `StoreSpec` picks one
 * from `TOKEN_STORE`, loading it only when named.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema, type Scope, Stream } from "effect"
import type { OwnerId } from "./OwnerId.js"
import type { CredentialKind, TokenRecord } from "./Token.js"

/**
 * The store itself failed (Redis down, disk full). The engine keeps serving
 * the token it holds in memory while the store is unavailable.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `token store ${this.operation} failed: ${this.detail}`
  }
}

/**
 * One record per app and kind.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordKey {
  readonly appId: OwnerId
  readonly kind: CredentialKind
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenStoreShape {
  /** The stored record, if any. */
  readonly get: (key: RecordKey) => Effect.Effect<Option.Option<TokenRecord>, StoreError>
  /**
   * The stored records of `keys`, in their order, as `get` would answer
   * each, read in as few round trips as the store can: re-validation
   * compares a million credentials with the store in batches. Optional: a
   * store without it is read with `get`.
   *
   * @since 0.3.0
   */
  readonly getMany?: (
    keys: ReadonlyArray<RecordKey>
  ) => Effect.Effect<ReadonlyArray<Option.Option<TokenRecord>>, StoreError>
  /**
   * Every record of `kind`: how the engine finds, at start-up, the owners
   * that came at runtime (a component's authorizers, named by their durable
   * refresh-token records).
   */
  readonly list: (kind: CredentialKind) => Effect.Effect<ReadonlyArray<TokenRecord>, StoreError>
  /**
   * Compare-and-set: writes `record` only when the store holds nothing for
   * its key or a record it replaces (`isNewer`). Answers the record the
   * store holds afterwards (the winner), so a losing writer adopts it.
   */
  readonly set: (record: TokenRecord) => Effect.Effect<TokenRecord, StoreError>
  /**
   * Tries to take the refresh lease of `key` for `leaseMillis`; `true` when
   * this process holds it. The lease is released when the scope closes.
   * Single-process stores always grant it: the engine's own single-flight
   * already covers one process.
   */
  readonly lease: (key: RecordKey, leaseMillis: number) => Effect.Effect<boolean, StoreError, Scope.Scope>
  /**
   * Replicas sharing the refresh work: marks `replica` alive until `until`,
   * forgets every replica whose time ran out before `now` (epoch millis of
   * the caller's clock), and answers the replicas alive. The engine then
   * refreshes each credential on one of them only, taking the lease once
   * per refresh instead of once per replica. Absent on single-process
   * stores: their one process refreshes everything.
   *
   * @since 0.3.0
   */
  readonly heartbeat?: (
    replica: string,
    now: number,
    until: number
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /**
   * Forgets `replica` at once (it is shutting down): its share passes to
   * the others at their next heartbeat instead of when its time runs out.
   *
   * @since 0.3.0
   */
  readonly leave?: (replica: string) => Effect.Effect<void, StoreError>
  /**
   * A number that moves whenever the store may hold a write this instance
   * neither made nor delivered on `changes`: another process's write whose
   * change message was lost, the store emptied or restored from a snapshot,
   * a file replaced under the store. While it stays put, re-validation
   * compares only the credentials about to be refreshed instead of every
   * one it holds (at 100,000 credentials, 1,000 reads a second per replica).
   * Absent: every re-validation compares every credential.
   *
   * @since 0.3.0
   */
  readonly changesMark?: Effect.Effect<number, StoreError>
  /**
   * Records written by other processes, as soon as the store learns of them,
   * so a replica never hands out a token another replica's refresh has
   * doomed. Single-process stores emit nothing.
   */
  readonly changes: Stream.Stream<TokenRecord, StoreError>
  /** Whether the store is reachable now: `/readyz` reports a degraded store. */
  readonly healthy: Effect.Effect<boolean>
  /**
   * Why the store cannot keep what it is given, while its writes fail for a
   * reason of this process's own (a file store's disk or permissions): then
   * `/readyz` answers 503 naming it, since a restart would lose every
   * token held. Absent on shared stores: when Redis is unreachable every
   * replica rides it out from memory, and `healthy` alone says so.
   *
   * @since 0.3.0
   */
  readonly writeFailure?: Effect.Effect<Option.Option<string>>
  /**
   * Claims `key` for `ttlMillis`: `true` the first time, `false` while an
   * earlier claim of it holds, across every process sharing the store. How a
   * push replayed to any replica is told from the first delivery. `key` is
   * the caller's namespace (e.g. `push:<appid>:<msg_signature>`) and never
   * holds a secret. Single-process stores keep claims in memory.
   */
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<boolean, StoreError>
  /** Whether a claim of `key` holds now. */
  readonly isClaimed: (key: string) => Effect.Effect<boolean, StoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenStore extends Context.Tag("effect-wechat-token/TokenStore")<TokenStore, TokenStoreShape>() {}

/**
 * The record key as one string: used by the memory store and as the file
 * store's document key. App ids are validated, so the result is safe.
 *
 * @since 0.1.0
 * @category utils
 */
export const keyString = (key: RecordKey): string => `${key.appId}/${key.kind}`

/**
 * How far apart the clocks of two replicas may be: within it, `fetchedAt`
 * cannot tell which of two fetches came later.
 *
 * @since 0.3.0
 * @category utils
 */
export const CLOCK_SKEW = Duration.seconds(10)

const skewMillis = Duration.toMillis(CLOCK_SKEW)

/**
 * Whether two records are the same write of a key.
 *
 * @since 0.3.0
 * @category utils
 */
export const isSameRecord = (a: TokenRecord, b: TokenRecord): boolean =>
  a.lineage === b.lineage && a.generation === b.generation && a.value === b.value

/**
 * Whether `candidate` replaces `held`. Within a lineage the higher
 * generation does: each fetch read the generation it succeeds. Two lineages
 * mean the store lost its data (flushed, restarted empty or from an old
 * snapshot) while a replica kept the older line in memory: generations say
 * nothing then, and the record fetched later is the one WeChat keeps
 * (a `classic` fetch kills the token before it), as long as the fetch times
 * are more than `CLOCK_SKEW` apart.
 *
 * @since 0.3.0
 * @category utils
 */
export const replaces = (candidate: TokenRecord, held: TokenRecord): boolean =>
  candidate.lineage === held.lineage
    ? candidate.generation > held.generation
    : candidate.fetchedAt - held.fetchedAt > skewMillis

/**
 * Two different records neither of which replaces the other: two fetches of
 * one generation (replicas fetched on their own while the store refused
 * writes, or a lease lapsed during a fetch), or two lineages fetched within
 * `CLOCK_SKEW`. Nobody can tell which token WeChat kept; a store keeps the
 * one it holds, and the engine fetches once more to end the doubt.
 *
 * @since 0.3.0
 * @category utils
 */
export const isContested = (a: TokenRecord, b: TokenRecord): boolean =>
  !isSameRecord(a, b) && !replaces(a, b) && !replaces(b, a)

/**
 * Compare-and-set rule shared by every store: `candidate` is written when
 * the store holds nothing for its key or a record it replaces (`replaces`);
 * a contested write loses.
 *
 * @since 0.1.0
 * @category utils
 */
export const isNewer = (candidate: TokenRecord, current: Option.Option<TokenRecord>): boolean =>
  Option.match(current, { onNone: () => true, onSome: (held) => replaces(candidate, held) })

/**
 * `claim` and `isClaimed` kept in this process's memory, with time from
 * `Clock`: what a single-process store answers. A lapsed claim is dropped by
 * the next claim, so the map holds only claims that still count.
 *
 * @since 0.3.0
 * @category utils
 */
export const claimsInMemory = (): Pick<TokenStoreShape, "claim" | "isClaimed"> => {
  const claims = new Map<string, number>()
  const holds = (key: string, now: number) => (claims.get(key) ?? now) > now
  return {
    claim: (key, ttlMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        for (const [held, until] of claims) if (until <= now) claims.delete(held)
        if (holds(key, now)) return false
        claims.set(key, now + Math.max(1, ttlMillis))
        return true
      }),
    isClaimed: (key) => Effect.map(Clock.currentTimeMillis, (now) => holds(key, now))
  }
}

/**
 * A store kept in this process only: the default, and what tests use.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore> = Layer.sync(TokenStore, () => {
  const records = new Map<string, TokenRecord>()
  return TokenStore.of({
    get: (key) => Effect.sync(() => Option.fromNullable(records.get(keyString(key)))),
    list: (kind) => Effect.sync(() => Array.from(records.values()).filter((record) => record.kind === kind)),
    set: (record) =>
      Effect.sync(() => {
        const key = keyString(record)
        const held = Option.fromNullable(records.get(key))
        if (isNewer(record, held)) records.set(key, record)
        return records.get(key) ?? record
      }),
    lease: () => Effect.succeed(true),
    // Every write is this instance's own: none is ever missed.
    changesMark: Effect.succeed(0),
    changes: Stream.empty,
    healthy: Effect.succeed(true),
    ...claimsInMemory()
  })
})
