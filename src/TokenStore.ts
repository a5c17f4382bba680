/**
 * Where tokens survive restarts and are shared between replicas.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Config, ConfigError, Context, Data, Effect, Either, Layer, Option, Schema, Scope, Stream } from "effect"
import type { AppId } from "./AppId.js"
import * as FileStore from "./internal/fileStore.js"
import * as RedisStore from "./internal/redisStore.js"
import type { CredentialKind, TokenRecord } from "./Token.js"

/**
 * The store itself failed (Redis down, disk full). The engine keeps serving
 * the token it holds in memory while the store is unavailable.
 *
 * @since 0.1.0
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly operation: string
  readonly detail: string
}> {
  override get message() {
    return `token store ${this.operation} failed: ${this.detail}`
  }
}

/**
 * One record per app and kind.
 *
 * @since 0.1.0
 */
export interface RecordKey {
  readonly appId: AppId
  readonly kind: CredentialKind
}

/**
 * @since 0.1.0
 */
export interface TokenStoreShape {
  /** The stored record, if any. */
  readonly get: (key: RecordKey) => Effect.Effect<Option.Option<TokenRecord>, StoreError>
  /**
   * Compare-and-set by generation: writes `record` only when the store holds
   * nothing for its key or an older generation. Answers the record the store
   * holds afterwards (the winner), so a losing writer adopts the newer token.
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
   * Records written by other processes, as soon as the store learns of them,
   * so a replica never hands out a token another replica's refresh has
   * doomed. Single-process stores emit nothing.
   */
  readonly changes: Stream.Stream<TokenRecord, StoreError>
  /** Whether the store is reachable now: `/readyz` reports a degraded store. */
  readonly healthy: Effect.Effect<boolean>
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
 */
export const keyString = (key: RecordKey): string => `${key.appId}/${key.kind}`

/**
 * Compare-and-set rule shared by every store.
 *
 * @since 0.1.0
 */
export const isNewer = (candidate: TokenRecord, current: Option.Option<TokenRecord>): boolean =>
  Option.match(current, { onNone: () => true, onSome: (held) => candidate.generation > held.generation })

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
    set: (record) =>
      Effect.sync(() => {
        const key = keyString(record)
        const held = Option.fromNullable(records.get(key))
        if (isNewer(record, held)) records.set(key, record)
        return records.get(key) ?? record
      }),
    lease: () => Effect.succeed(true),
    changes: Stream.empty,
    healthy: Effect.succeed(true)
  })
})

/**
 * A store in one JSON file, for a single process that must keep its tokens
 * across restarts (a restart then neither burns quota nor kills the token
 * it handed out).
 *
 * - Document: `{"format":"effect-wechat-token/v1","records":{"<appId>/<kind>": record}}`,
 *   holding tokens and tickets only, never an app secret.
 * - Writes are serialized, compare-and-set by generation, and atomic: a
 *   temporary file in the same directory, fsync, rename over `path`. The file
 *   has mode 0600; a missing directory is created (mode 0700).
 * - A missing file is an empty store. A corrupt, truncated, foreign or
 *   wrong-format file is an empty store too (logged, never trusted), and the
 *   next write moves it aside to `path.corrupt` instead of destroying it. A
 *   single malformed record is dropped (logged); the others are kept.
 * - `lease` always grants, `changes` is empty, `healthy` is true: two
 *   processes sharing one file may lose each other's writes; share Redis instead.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (path: string): Layer.Layer<TokenStore, never, FileSystem.FileSystem> =>
  Layer.effect(TokenStore, FileStore.make(path))

/**
 * `layerFile` on Node's file system.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileNode = (path: string): Layer.Layer<TokenStore> =>
  layerFile(path).pipe(Layer.provide(NodeFileSystem.layer))

/**
 * A store in Redis (`redis://HOST:PORT[/DB]`), shared by every replica of
 * the token server.
 *
 * - Keys: `wechat-token:<appId>:<kind>` holds the record as JSON,
 *   `wechat-token:<appId>:<kind>:lease` the refresh lease. Neither ever holds a secret.
 * - `set` is one Lua compare-and-set by generation that also publishes the
 *   written record on `wechat-token:changes`; `changes` streams the records
 *   other store instances wrote (this instance's own writes are skipped).
 *   Messages published while this instance was disconnected are not replayed.
 * - `lease` is `SET NX PX` with a random owner, released on scope close only
 *   while still owned.
 * - Redis down: every operation fails at once with `StoreError` (no offline
 *   queue, 2 s command timeout), the connection is retried in the background,
 *   `healthy` is false until it is back. The layer itself never fails: it
 *   waits for the first connection attempt, then carries on either way.
 * - The connections close with the layer's scope.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (url: string): Layer.Layer<TokenStore> => Layer.scoped(TokenStore, RedisStore.make(url))

/**
 * Which store to use, as `TOKEN_STORE` names it: `memory`, `file:PATH` or
 * `redis://HOST:PORT[/DB]`.
 *
 * @since 0.1.0
 */
export const StoreSpec = Schema.Union(
  Schema.TaggedStruct("Memory", {}),
  Schema.TaggedStruct("File", { path: Schema.NonEmptyString }),
  Schema.TaggedStruct("Redis", { url: Schema.String })
)

/**
 * @since 0.1.0
 */
export type StoreSpec = typeof StoreSpec.Type

const storeSpecError = (detail: string) =>
  ConfigError.InvalidData(
    ["TOKEN_STORE"],
    `TOKEN_STORE: ${detail}; expected "memory", "file:PATH" or "redis://HOST:PORT[/DB]"`
  )

/**
 * Parses a `TOKEN_STORE` value. Messages name the variable and never echo
 * the value: a Redis URL may carry a password.
 *
 * @since 0.1.0
 */
export const parseStoreSpec = (raw: string): Either.Either<StoreSpec, ConfigError.ConfigError> => {
  const value = raw.trim()
  if (value === "memory") return Either.right({ _tag: "Memory" })
  if (value.startsWith("file:")) {
    const path = value.slice("file:".length)
    return path === "" ? Either.left(storeSpecError("file: needs a path")) : Either.right({ _tag: "File", path })
  }
  if (value.startsWith("redis://")) {
    const url = URL.canParse(value) ? new URL(value) : undefined
    if (url === undefined || url.hostname === "") return Either.left(storeSpecError("the Redis URL has no host"))
    if (!/^(\/\d*)?$/.test(url.pathname)) return Either.left(storeSpecError("the Redis database must be a number"))
    if (url.search !== "" || url.hash !== "") {
      return Either.left(storeSpecError("the Redis URL takes no query or fragment"))
    }
    return Either.right({ _tag: "Redis", url: value })
  }
  return Either.left(storeSpecError("unknown store"))
}

/**
 * `TOKEN_STORE` read with Effect `Config`; `memory` when unset.
 *
 * @since 0.1.0
 */
export const storeSpec: Config.Config<StoreSpec> = Config.string("TOKEN_STORE").pipe(
  Config.mapOrFail(parseStoreSpec),
  Config.withDefault<StoreSpec>({ _tag: "Memory" })
)

/**
 * The store a spec names; the file store on Node's file system.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSpec = (spec: StoreSpec): Layer.Layer<TokenStore> => {
  switch (spec._tag) {
    case "Memory":
      return layerMemory
    case "File":
      return layerFileNode(spec.path)
    case "Redis":
      return layerRedis(spec.url)
  }
}

/**
 * The store `TOKEN_STORE` names, from the current `ConfigProvider`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<TokenStore, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(storeSpec, layerFromSpec)
)
