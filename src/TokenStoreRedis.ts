/**
 * The Redis adapter of `TokenStore`, shared by every replica of the token
 * server. It needs the `ioredis` package, an optional peer dependency:
 * install it next to this one to use Redis.
 *
 * - Where: `redis://` or `rediss://` (TLS) `[user:password@]HOST:PORT[/DB]`,
 *   `redis+sentinel://[user:password@]HOST:PORT[,…]/MASTER_NAME[/DB]`
 *   (the master the sentinels name, followed across failovers), or
 *   `redis+cluster://[user:password@]HOST:PORT[,…]` (seed nodes of a Redis Cluster).
 * - Keys: `wechat-token:{<owner>}:<kind>` holds the record as JSON,
 *   `wechat-token:{<owner>}:<kind>:lease` the refresh lease. The `{owner}`
 *   hash tag keeps one owner's keys in one cluster slot. Neither ever holds
 *   a secret. `wechat-token:mark` counts the record writes (not on a
 *   cluster), for `changesMark`. A record 0.2.0 wrote under `wechat-token:<owner>:<kind>` is
 *   read and moved to its new key.
 * - `set` is one Lua compare-and-set by generation that also publishes the
 *   written record (and the write's count) on `wechat-token:changes`; scripts
 *   go by SHA-1 (`EVALSHA`); `changes` streams the records
 *   other store instances wrote (this instance's own writes are skipped).
 *   Messages published while this instance was disconnected are not replayed.
 * - `lease` is `SET NX PX` with a random owner, released on scope close only
 *   while still owned.
 * - `heartbeat` keeps the replicas alive in the sorted set
 *   `wechat-token:replicas` (scored by when each stops counting as alive),
 *   so replicas split the scheduled refreshes instead of racing for leases.
 * - Redis down: reads fail at once with `StoreError` (no offline queue, 2 s
 *   command timeout), the connection is retried in the background, `healthy`
 *   is false until it is back. One Redis: writes fail at once too. Sentinel or
 *   Cluster: a write waits (up to 30 s) for the promoted master.
 * - The layer fails only when Redis refuses the user, the password or the TLS
 *   certificate; otherwise it waits for the first connection attempt, then
 *   carries on either way.
 * - The connections close with the layer's scope.
 * - The same connections carry `StoreDocuments` (the layer provides both).
 *
 * @since 0.2.0
 */
import { Context, Effect, Either, Layer, type Redacted } from "effect"
import * as RedisStore from "./internal/redisStore.js"
import * as RedisTarget from "./internal/redisTarget.js"
import { StoreDocuments } from "./StoreDocuments.js"
import { StoreError, TokenStore } from "./TokenStore.js"

/**
 * What the URL does not carry: secrets and TLS material from their own
 * variables (`REDIS_PASSWORD[_FILE]`, `REDIS_SENTINEL_PASSWORD[_FILE]`,
 * `REDIS_TLS`, `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`).
 * TLS material is PEM text, not paths.
 *
 * @since 0.3.0
 * @category models
 */
export interface Settings {
  /** The password when the URL carries none. */
  readonly password?: Redacted.Redacted<string> | undefined
  /** The sentinels' own password (`redis+sentinel://`). */
  readonly sentinelPassword?: Redacted.Redacted<string> | undefined
  /** TLS for `redis+sentinel://` and `redis+cluster://`; `rediss://` always uses TLS. */
  readonly tls?: boolean | undefined
  /** A private CA's certificate(s), PEM. */
  readonly ca?: string | undefined
  /** A client certificate and its key, PEM, for servers that ask for one. */
  readonly cert?: string | undefined
  readonly key?: Redacted.Redacted<string> | undefined
}

/**
 * The store at `url`. Fails with `StoreError` when the URL is malformed
 * (never quoting it) or Redis refuses the credentials or the certificate.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (url: string, settings: Settings = {}): Layer.Layer<TokenStore | StoreDocuments, StoreError> =>
  Layer.scopedContext(
    Effect.flatMap(
      Either.mapLeft(RedisTarget.parse(url), (detail) => new StoreError({ operation: "open", detail })),
      (target) =>
        Effect.map(
          RedisStore.make(target, settings),
          (store) => Context.make(TokenStore, store).pipe(Context.add(StoreDocuments, store.documents))
        )
    )
  )
