/**
 * The Redis store: records shared by every replica, a lease per record for
 * cross-replica single-flight, and a channel announcing each write.
 */
import { Effect, Either, Option, Random, Runtime, Schema, type Scope, Stream } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { type CredentialKind, TokenRecord } from "../Token.js"
import { type RecordKey, StoreError, type TokenStoreShape } from "../TokenStore.js"
import * as StoredRecord from "./storedRecord.js"

/**
 * Key of a record. App ids are validated (`wx` + 16 hex) and kinds are
 * literals, so a key never holds anything but these two, and never a secret.
 */
export const recordKey = (key: RecordKey): string => `wechat-token:${key.appId}:${key.kind}`

/** Key of the refresh lease of a record. */
export const leaseKey = (key: RecordKey): string => `${recordKey(key)}:lease`

/**
 * Key of a claim. Its callers' keys name app ids and public signatures,
 * never a secret; the prefix keeps them apart from records (whose keys end
 * in a kind, which `list` matches on).
 */
export const claimKey = (key: string): string => `wechat-token:claim:${key}`

/** Every write is published here, so replicas adopt a new token without polling. */
export const CHANGES_CHANNEL = "wechat-token:changes"

const RecordJson = Schema.parseJson(TokenRecord)
const decodeRecord = StoredRecord.decodeJson
const encodeRecord = Schema.encode(RecordJson)

/** A record's value as the store writes it under `recordKey` (the bench fills warm stores with it). */
export const recordJson = Schema.encodeSync(RecordJson)

// `origin` names the writing store instance, so a store skips its own writes.
const ChangeJson = Schema.parseJson(Schema.Struct({ origin: Schema.String, record: TokenRecord }))
const decodeChange = Schema.decodeEither(ChangeJson)
const encodeChange = Schema.encode(ChangeJson)

// Compare-and-set by generation in one step, so two replicas racing cannot
// both win. A held value that is not a record with a numeric generation
// counts as absent. Answers nil when written, else the held value.
const SET_IF_NEWER = `
local held = redis.call('GET', KEYS[1])
if held then
  local ok, record = pcall(cjson.decode, held)
  if ok and type(record) == 'table' and type(record.generation) == 'number'
    and record.generation >= tonumber(ARGV[2]) then
    return held
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return false
`

// Deletes the lease only while we still own it: after it lapsed, another
// replica may hold it, and that lease is not ours to end.
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

const options: RedisOptions = {
  // While Redis is unreachable a command fails at once instead of queueing:
  // the engine then serves the token it holds rather than waiting.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // A Redis that accepts connections but does not answer must not hang callers either.
  commandTimeout: 2_000,
  connectTimeout: 2_000
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const randomId = Effect.map(
  Effect.all([Random.nextInt, Random.nextInt]),
  (parts) => parts.map((part) => part.toString(36)).join("-")
)

/**
 * A store over the Redis at `url`. Two connections, closed with the scope:
 * one for commands, one subscribed to the changes channel (a subscribed
 * connection accepts no other command). The command connection reconnects in
 * the background forever; `healthy` says whether it is up now.
 */
export const make = (url: string): Effect.Effect<TokenStoreShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    const origin = yield* randomId

    const client = new Redis(url, { ...options, lazyConnect: true })
    // The subscription waits offline for the connection (no timeout) and is
    // renewed by ioredis after every reconnect.
    const subscriber = client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined
    })

    // Connection events arrive outside any fiber; only the transitions are
    // logged, not every failed reconnect attempt.
    let down = false
    let closing = false
    let lastError = "not connected"
    client.on("error", (error: Error) => {
      lastError = error.message
    })
    subscriber.on("error", () => {
      // Reported through the command connection; a listener keeps ioredis from printing it.
    })
    client.on("close", () => {
      if (down || closing) return
      down = true
      log(Effect.logWarning("token store unreachable; reconnecting in the background"))
    })
    client.on("ready", () => {
      if (!down) return
      down = false
      log(Effect.logInfo("token store reconnected"))
    })

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closing = true
        client.disconnect()
        subscriber.disconnect()
      })
    )

    // Start-up waits until the first connection attempts settle either way
    // (bounded by `connectTimeout`), so the first reads do not fail merely
    // because the connection is still being made, and a write right after
    // start-up already reaches this instance's `changes`.
    const connected = Effect.async<void>((resume) => {
      const settle = () => resume(Effect.void)
      client.once("ready", settle).once("close", settle)
      client.connect().catch(() => {
        // Failure is reported by the "close" event and retried in the background.
      })
      return Effect.sync(() => {
        client.off("ready", settle).off("close", settle)
      })
    })
    const subscribed = Effect.async<void>((resume) => {
      const settle = () => resume(Effect.void)
      subscriber.once("close", settle)
      subscriber.subscribe(CHANGES_CHANNEL).then(settle, (error: unknown) => {
        log(Effect.logWarning("token store changes unavailable", errorMessage(error)))
        settle()
      })
      return Effect.sync(() => {
        subscriber.off("close", settle)
      })
    })
    yield* Effect.all([connected, subscribed], { concurrency: "unbounded", discard: true })

    const command = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, StoreError> =>
      Effect.tryPromise({
        try: run,
        catch: (error) =>
          new StoreError({
            operation,
            detail: client.status === "ready" ? errorMessage(error) : `Redis unreachable (${lastError})`
          })
      })

    const get = (key: RecordKey): Effect.Effect<Option.Option<TokenRecord>, StoreError> =>
      Effect.flatMap(command("get", () => client.get(recordKey(key))), (held) => {
        if (held === null) return Effect.succeedNone
        const record = decodeRecord(held)
        return Either.isRight(record)
          ? Effect.succeedSome(record.right)
          : Effect.logWarning("token store holds a malformed record; treating it as absent").pipe(
            Effect.annotateLogs({ key: recordKey(key) }),
            Effect.as(Option.none())
          )
      })

    // SCAN walks the key space in batches without blocking Redis (KEYS
    // would, on a store holding hundreds of thousands of authorizers).
    const list = (kind: CredentialKind): Effect.Effect<ReadonlyArray<TokenRecord>, StoreError> =>
      Effect.gen(function*() {
        const keys = new Set<string>()
        let cursor = "0"
        do {
          const [next, batch] = yield* command(
            "list",
            () => client.scan(cursor, "MATCH", `wechat-token:*:${kind}`, "COUNT", 1000)
          )
          for (const key of batch) keys.add(key)
          cursor = next
        } while (cursor !== "0")
        const records: Array<TokenRecord> = []
        const all = Array.from(keys)
        for (let start = 0; start < all.length; start += 500) {
          const values = yield* command("list", () => client.mget(...all.slice(start, start + 500)))
          for (const value of values) {
            const record = value === null ? undefined : decodeRecord(value)
            // A lease key or a malformed value is no record of this kind.
            if (record !== undefined && Either.isRight(record) && record.right.kind === kind) records.push(record.right)
          }
        }
        return records
      })

    const set = (record: TokenRecord): Effect.Effect<TokenRecord, StoreError> =>
      Effect.gen(function*() {
        const json = yield* encodeRecord(record)
        const change = yield* encodeChange({ origin, record })
        const held = yield* command(
          "set",
          () => client.eval(SET_IF_NEWER, 1, recordKey(record), json, record.generation, CHANGES_CHANNEL, change)
        )
        if (held === null) return record
        const winner = typeof held === "string" ? decodeRecord(held) : Either.left(held)
        if (Either.isRight(winner)) return winner.right
        // A value with a newer generation that is not a valid record: neither
        // ours to overwrite nor usable. Someone wrote it by hand; say so.
        return yield* new StoreError({
          operation: "set",
          detail: `${recordKey(record)} holds a malformed record with a newer generation; delete the key`
        })
      }).pipe(
        Effect.catchTag(
          "ParseError",
          (error) => Effect.fail(new StoreError({ operation: "set", detail: error.message }))
        )
      )

    const lease = (key: RecordKey, leaseMillis: number) =>
      Effect.gen(function*() {
        const owner = yield* randomId
        const leaseAt = leaseKey(key)
        // PX takes whole milliseconds, at least one.
        const millis = Math.max(1, Math.ceil(leaseMillis))
        return yield* Effect.acquireRelease(
          Effect.map(command("lease", () => client.set(leaseAt, owner, "PX", millis, "NX")), (reply) => reply === "OK"),
          (taken) =>
            taken
              // If Redis is down now, the lease lapses by itself after `leaseMillis`.
              ? Effect.ignore(command("release", () => client.eval(RELEASE_LEASE, 1, leaseAt, owner)))
              : Effect.void
        )
      })

    const changes = Stream.asyncPush<TokenRecord>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const listener = (channel: string, message: string) => {
            if (channel !== CHANGES_CHANNEL) return
            const change = decodeChange(message)
            if (Either.isLeft(change)) {
              log(Effect.logWarning("skipping a malformed token store change message"))
            } else if (change.right.origin !== origin) {
              emit.single(change.right.record)
            }
          }
          subscriber.on("message", listener)
          return listener
        }),
        (listener) => Effect.sync(() => subscriber.off("message", listener))
      ), { bufferSize: "unbounded" })

    // One step on the server, so two replicas given the same push cannot both take it.
    const claim = (key: string, ttlMillis: number) =>
      Effect.map(
        command("claim", () => client.set(claimKey(key), "1", "PX", Math.max(1, Math.ceil(ttlMillis)), "NX")),
        (reply) => reply === "OK"
      )

    const isClaimed = (key: string) =>
      Effect.map(command("isClaimed", () => client.exists(claimKey(key))), (count) => count > 0)

    return {
      get,
      list,
      set,
      lease,
      changes,
      healthy: Effect.sync(() => client.status === "ready"),
      claim,
      isClaimed
    }
  })
