/**
 * The Redis store: records shared by every replica, a lease per record for
 * cross-replica single-flight, the live replicas (how they share the
 * refresh work), and a channel announcing each write.
 */
import { Duration, Effect, Either, Option, Random, Runtime, Schedule, Schema, type Scope, Stream } from "effect"
import type { Redis } from "ioredis"
import { createHash } from "node:crypto"
import type { OwnerId } from "../OwnerId.js"
import type { StoreDocumentsShape } from "../StoreDocuments.js"
import { type CredentialKind, TokenRecord } from "../Token.js"
import { CLOCK_SKEW, type RecordKey, StoreError, type TokenStoreShape } from "../TokenStore.js"
import * as RedisConnection from "./redisConnection.js"
import type { RedisSettings } from "./redisConnection.js"
import * as RedisDocuments from "./redisDocuments.js"
import type { RedisTarget } from "./redisTarget.js"
import * as StoredRecord from "./storedRecord.js"

/**
 * Every key of one owner: `wechat-token:{<owner>}:<parts…>`. The braces are
 * a Redis Cluster hash tag: all of one owner's keys hash to one slot, so a
 * script or transaction touching a record and its lease never fails with
 * `CROSSSLOT`. Owner ids are validated (`wx` + 16 hex, `corpid/agent`, …)
 * and never hold `{` or `}`, so the tag is exactly the owner; a key never
 * holds a secret.
 */
export const ownerKey = (owner: OwnerId, ...parts: ReadonlyArray<string>): string =>
  `wechat-token:{${owner}}:${parts.join(":")}`

/** Key of a record. */
export const recordKey = (key: RecordKey): string => ownerKey(key.appId, key.kind)

/** Key of the refresh lease of a record. */
export const leaseKey = (key: RecordKey): string => ownerKey(key.appId, key.kind, "lease")

/**
 * Where 0.2.0 kept a record (no hash tag). Read when the record's key is
 * empty, then moved to `recordKey`.
 */
export const legacyRecordKey = (key: RecordKey): string => `wechat-token:${key.appId}:${key.kind}`

/**
 * Key of a claim. Its callers' keys name app ids and public signatures,
 * never a secret; the prefix keeps them apart from records (whose keys end
 * in a kind, which `list` matches on).
 */
export const claimKey = (key: string): string => `wechat-token:claim:${key}`

/** Every write is published here, so replicas adopt a new token without polling. */
export const CHANGES_CHANNEL = "wechat-token:changes"

/**
 * Counts the record writes (`INCR` in the write's own script), and each
 * change message carries the count its write reached: a replica that
 * received every count up to the one it reads missed no write. One key, so
 * not kept on a cluster, where it would sit in another slot than the record.
 */
export const MARK_KEY = "wechat-token:mark"

// `origin` names the writing store instance, so a store skips its own writes.
// `mark` is added by the script (absent on a cluster and from earlier versions).
const ChangeJson = Schema.parseJson(
  Schema.Struct({ origin: Schema.String, record: TokenRecord, mark: Schema.optional(Schema.Number) })
)
const decodeChange = Schema.decodeEither(ChangeJson)

/**
 * A change message as a subscriber uses it: its mark, and the record unless
 * the message is `self`'s own write. Every replica reads every write's
 * message, so a plainly well-formed one is read by hand (the record by
 * `StoredRecord`'s direct path, not at all when it is ours); anything else
 * goes through `ChangeJson`, the judge of what a change message is.
 */
export const readChange = (
  message: string,
  self: string
): Either.Either<{ readonly mark: number | undefined; readonly record: TokenRecord | undefined }, unknown> => {
  let value: unknown
  try {
    value = JSON.parse(message)
  } catch (error) {
    return Either.left(error)
  }
  if (typeof value === "object" && value !== null) {
    const { mark, origin, record } = value as Record<string, unknown>
    if (typeof origin === "string" && (mark === undefined || typeof mark === "number")) {
      if (origin === self) return Either.right({ mark, record: undefined })
      const decoded = StoredRecord.decodeValue(record)
      if (Either.isRight(decoded)) return Either.right({ mark, record: decoded.right })
    }
  }
  return Either.map(decodeChange(message), ({ mark, origin, record }) => ({
    mark,
    record: origin === self ? undefined : record
  }))
}
// What `ChangeJson` encodes, the record written as `StoredRecord.encodeJson` writes it.
const changeJson = (origin: string, record: TokenRecord): string =>
  `{"origin":${JSON.stringify(origin)},"record":${StoredRecord.encodeJson(record)}}`

// Compare-and-set in one step, so two replicas racing cannot both win; the
// rule is `TokenStore.replaces` (ARGV[2]: `CLOCK_SKEW` in milliseconds). A
// held value that is not a record with a numeric generation counts as
// absent. Answers the held value when not written, else nil.
const SKEW_MILLIS = Duration.toMillis(CLOCK_SKEW)

const COMPARE_HELD = `
local held = redis.call('GET', KEYS[1])
if held then
  local ok, record = pcall(cjson.decode, held)
  if ok and type(record) == 'table' and type(record.generation) == 'number' then
    local candidate = cjson.decode(ARGV[1])
    local replaces
    if candidate.lineage == record.lineage then
      replaces = candidate.generation > record.generation
    else
      replaces = type(record.fetchedAt) == 'number' and candidate.fetchedAt - record.fetchedAt > tonumber(ARGV[2])
    end
    if not replaces then
      return held
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
`

const SET_IF_NEWER = `${COMPARE_HELD}
redis.call('PUBLISH', ARGV[3], ARGV[4])
return false
`

// The same with the write counted in KEYS[2] (`MARK_KEY`): the count
// reached goes into the change message (ARGV[4], a JSON object, gains a
// leading "mark" field, which earlier versions ignore) and is answered in
// place of nil.
const SET_IF_NEWER_MARKED = `${COMPARE_HELD}
local mark = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], '{"mark":' .. mark .. ',' .. string.sub(ARGV[4], 2))
return mark
`

// Deletes the lease only while we still own it: after it lapsed, another
// replica may hold it, and that lease is not ours to end.
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`

/**
 * The replicas sharing the refresh work: a sorted set of replica ids scored
 * by the time each stays alive until. One key, so one slot in a cluster.
 */
export const REPLICAS_KEY = "wechat-token:replicas"

// One step: forget the lapsed replicas (score before ARGV[1], now), mark
// this one alive until ARGV[2], answer the live ones.
const HEARTBEAT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))

// A script sent by its SHA-1 (`EVALSHA`): each write then carries its
// arguments, not the script's kilobyte, for Redis to hash again. A server
// that does not know it yet (restarted, failed over, another cluster
// master) answers NOSCRIPT, and the script itself goes once (`EVAL` loads it).
const script = (lua: string) => {
  const sha = createHash("sha1").update(lua).digest("hex")
  return (client: RedisConnection.RedisConnection["client"], keys: number, ...args: Array<string | number>) =>
    client.evalsha(sha, keys, ...args).catch((error: unknown) =>
      errorMessage(error).startsWith("NOSCRIPT") ? client.eval(lua, keys, ...args) : Promise.reject(error)
    )
}
const setIfNewer = script(SET_IF_NEWER)
const setIfNewerMarked = script(SET_IF_NEWER_MARKED)
const releaseLease = script(RELEASE_LEASE)
const heartbeatScript = script(HEARTBEAT)

// Marks seen past the last one read, kept at most this many: a store whose
// mark nobody reads (no engine re-validating) stops keeping them.
const SEEN_MAX = 100_000

// Keys a listing's SCAN step looks at (see `list`).
const SCAN_COUNT = 10_000

const randomId = Effect.map(
  Effect.all([Random.nextInt, Random.nextInt]),
  (parts) => parts.map((part) => part.toString(36)).join("-")
)

// Errors no reconnect can fix: the password or the server's certificate is
// wrong. Start-up stops on them instead of retrying in the background forever.
const AUTH_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM|ERR AUTH|ERR invalid password)/
const isTlsError = (error: unknown): boolean => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  return /^(ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_|SELF_SIGNED/.test(code)
}
const refusal = (error: unknown): string | undefined => {
  if (isTlsError(error)) return `the Redis server's TLS certificate was refused (${errorMessage(error)})`
  if (AUTH_REFUSED.test(errorMessage(error))) return `Redis refused the user or password (${errorMessage(error)})`
  return undefined
}

// During a failover the old master is gone and the new one not yet known:
// a write waits for it, polling, up to this long (a Sentinel failover takes
// `down-after-milliseconds` plus an election; a cluster `cluster-node-timeout`
// plus one). Meanwhile callers are answered from the tokens held in memory.
const FAILOVER_WAIT = Duration.seconds(30)
const FAILING_OVER =
  /^Redis unreachable|READONLY|CLUSTERDOWN|Too many Cluster redirections|TRYAGAIN|MASTERDOWN|LOADING|Connection is closed|isn't ready|isn't writeable|timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/
const failoverRetry = Schedule.spaced(Duration.millis(100)).pipe(Schedule.upTo(FAILOVER_WAIT))

/**
 * A store over the Redis `target` names. Two connections, closed with the
 * scope: one for commands, one subscribed to the changes channel. The command
 * connection reconnects in the background forever; `healthy` says whether it
 * is up now. Fails only when Redis refuses the password or the certificate.
 */
export const make = (
  target: RedisTarget,
  settings: RedisSettings = {}
): Effect.Effect<TokenStoreShape & { readonly documents: StoreDocumentsShape }, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    const origin = yield* randomId
    const { client, failsOver, masters, secrets, subscriber } = RedisConnection.make(target, settings)
    // ioredis and Redis may quote what they were given; a password never leaves here.
    const scrub = (text: string) => secrets.reduce((clean, secret) => clean.split(secret).join("<redacted>"), text)

    // Connection events arrive outside any fiber; only the transitions are
    // logged, not every failed reconnect attempt.
    let down = false
    let closing = false
    let lastError = "not connected"
    const address = target.nodes.map((node) => `${node.host}:${node.port}`).join(",")
    let refused: string | undefined
    client.on("error", (error: Error) => {
      lastError = scrub(error.message)
      refused ??= Option.getOrUndefined(Option.map(Option.fromNullable(refusal(error)), scrub))
    })
    subscriber.on("error", () => {
      // Reported through the command connection; a listener keeps ioredis from printing it.
    })
    client.on("close", () => {
      if (down || closing || refused !== undefined) return
      down = true
      // Once per outage, naming the variable to check and where it points: not once per reconnect attempt.
      log(Effect.logWarning(`TOKEN_STORE unreachable at ${address} (${lastError}); reconnecting in the background`))
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
      client.connect().catch((error: unknown) => {
        // Failure is reported by the "close" event and retried in the background.
        refused ??= Option.getOrUndefined(Option.map(Option.fromNullable(refusal(error)), scrub))
        if (refused !== undefined) settle()
      })
      return Effect.sync(() => {
        client.off("ready", settle).off("close", settle)
      })
    })
    yield* connected
    if (refused !== undefined) return yield* new StoreError({ operation: "open", detail: refused })
    const subscribed = Effect.async<void>((resume) => {
      const settle = () => resume(Effect.void)
      subscriber.once("close", settle)
      subscriber.subscribe(CHANGES_CHANNEL, RedisDocuments.DOCUMENTS_CHANNEL).then(settle, (error: unknown) => {
        log(Effect.logWarning("token store changes unavailable", scrub(errorMessage(error))))
        settle()
      })
      return Effect.sync(() => {
        subscriber.off("close", settle)
      })
    })
    yield* subscribed

    const command = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, StoreError> =>
      Effect.tryPromise({
        try: run,
        catch: (error) =>
          new StoreError({
            operation,
            detail: client.status === "ready" ? scrub(errorMessage(error)) : `Redis unreachable (${lastError})`
          })
      })

    // A write while the topology fails over waits for the new master; one
    // Redis alone fails at once (nothing will take its place).
    const write = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, StoreError> =>
      failsOver
        ? command(operation, run).pipe(
          Effect.retry({ schedule: failoverRetry, while: (error) => FAILING_OVER.test(error.detail) })
        )
        : command(operation, run)

    // A held value that does not decode is logged and treated as absent.
    const decodeHeld = (key: string, held: string | null): Effect.Effect<Option.Option<TokenRecord>> => {
      if (held === null) return Effect.succeedNone
      const record = StoredRecord.decodeJson(held)
      return Either.isRight(record)
        ? Effect.succeedSome(record.right)
        : Effect.logWarning("token store holds a malformed record; treating it as absent").pipe(
          Effect.annotateLogs({ key }),
          Effect.as(Option.none())
        )
    }

    // A record 0.2.0 wrote is moved under its hash-tagged key (compare-and-set,
    // so a newer record written meanwhile wins), then its old key is deleted:
    // left behind, it would come back as a stale record if the new key were
    // ever lost. Moving is best effort: the record read is answered either way.
    const migrate = (record: TokenRecord): Effect.Effect<TokenRecord> =>
      set(record).pipe(
        Effect.tap(() => command("migrate", () => client.del(legacyRecordKey(record)))),
        Effect.catchAll(() => Effect.succeed(record))
      )

    // Kinds a full listing found no 0.2.0 key of (those it found, it moved):
    // 0.2.0 replicas are stopped before this version starts, so none comes
    // later, and a miss of such a kind needs no second read. In a cold start
    // every fetch misses once.
    const legacyFree = new Set<CredentialKind>()

    const get = (key: RecordKey): Effect.Effect<Option.Option<TokenRecord>, StoreError> =>
      Effect.gen(function*() {
        const held = yield* Effect.flatMap(
          command("get", () => client.get(recordKey(key))),
          (held) => decodeHeld(recordKey(key), held)
        )
        if (Option.isSome(held) || legacyFree.has(key.kind)) return held
        const legacy = yield* Effect.flatMap(
          command("get", () => client.get(legacyRecordKey(key))),
          (held) => decodeHeld(legacyRecordKey(key), held)
        )
        return Option.isSome(legacy) ? Option.some(yield* migrate(legacy.value)) : legacy
      })

    // The values of `keys` on `node`, in one round trip: one MGET on a
    // single Redis; in a cluster keys of different owners hash to different
    // slots, which MGET refuses, so there a GET per key, pipelined.
    const values = (node: Redis, keys: ReadonlyArray<string>): Promise<ReadonlyArray<unknown>> => {
      if (keys.length === 0) return Promise.resolve([])
      if (target.mode !== "cluster") return node.mget(...keys)
      return node.pipeline(keys.map((key) => ["get", key])).exec().then((replies) =>
        (replies ?? []).map(([, value]) => value)
      )
    }

    // A command sent now and awaited later (`command`), while other work
    // goes on; if that work fails first, its failure is not left unhandled.
    const sent = <A>(promise: Promise<A>): Promise<A> => {
      promise.catch(() => undefined)
      return promise
    }

    // One MGET on a single Redis. A cluster refuses MGET across slots, and
    // each owner is a slot of its own: there every GET is sent at once, one
    // round trip's wait for the batch all the same.
    const getMany = (
      keys: ReadonlyArray<RecordKey>
    ): Effect.Effect<ReadonlyArray<Option.Option<TokenRecord>>, StoreError> =>
      Effect.gen(function*() {
        if (keys.length === 0) return []
        const names = keys.map(recordKey)
        const held = yield* command(
          "get",
          () => target.mode === "cluster" ? Promise.all(names.map((name) => client.get(name))) : client.mget(...names)
        )
        // A miss may still be a record 0.2.0 wrote: `get` reads (and moves) it.
        return yield* Effect.forEach(keys, (key, index) =>
          Effect.flatMap(
            decodeHeld(names[index]!, held[index] ?? null),
            (record) => Option.isNone(record) && !legacyFree.has(key.kind) ? get(key) : Effect.succeed(record)
          ))
      })

    // SCAN walks the key space in batches without blocking Redis (KEYS
    // would, on a store holding hundreds of thousands of authorizers); in a
    // cluster, each master holds its own slots and is scanned in turn. The
    // pattern matches both key layouts (and no lease: those end in `:lease`).
    // A step looks at `SCAN_COUNT` keys, a few milliseconds of Redis's time:
    // a million authorizers (two million keys and more) are then 200 round
    // trips a kind, not 2,000.
    const list = (kind: CredentialKind): Effect.Effect<ReadonlyArray<TokenRecord>, StoreError> =>
      Effect.gen(function*() {
        const current = new Map<string, TokenRecord>()
        const legacy: Array<TokenRecord> = []
        for (const node of masters()) {
          const scan = (cursor: string) =>
            sent(node.scan(cursor, "MATCH", `wechat-token:*:${kind}`, "COUNT", SCAN_COUNT))
          let step = scan("0")
          for (;;) {
            const [next, keys] = yield* command("list", () => step)
            // The values first, then the next step: Redis walks on while the values are decoded here.
            const read = sent(values(node, keys))
            if (next !== "0") step = scan(next)
            for (const [index, value] of (yield* command("list", () => read)).entries()) {
              const record = typeof value === "string" ? StoredRecord.decodeJson(value) : undefined
              // A malformed value is no record of this kind.
              if (record === undefined || Either.isLeft(record) || record.right.kind !== kind) continue
              if (keys[index]?.startsWith("wechat-token:{") === true) current.set(record.right.appId, record.right)
              else legacy.push(record.right)
            }
            if (next === "0") break
          }
        }
        for (const record of legacy) {
          if (!current.has(record.appId)) current.set(record.appId, yield* migrate(record))
        }
        if (legacy.length === 0) legacyFree.add(kind)
        return Array.from(current.values())
      })

    const set = (record: TokenRecord): Effect.Effect<TokenRecord, StoreError> =>
      Effect.gen(function*() {
        const json = StoredRecord.encodeJson(record)
        const change = changeJson(origin, record)
        const held = yield* write("set", () =>
          marked
            ? setIfNewerMarked(client, 2, recordKey(record), MARK_KEY, json, SKEW_MILLIS, CHANGES_CHANNEL, change)
            : setIfNewer(client, 1, recordKey(record), json, SKEW_MILLIS, CHANGES_CHANNEL, change))
        if (held === null) return record
        if (typeof held === "number") {
          saw(held)
          return record
        }
        const winner = typeof held === "string" ? StoredRecord.decodeJson(held) : Either.left(held)
        if (Either.isRight(winner)) return winner.right
        // A value the script read as a newer record that is not a valid one:
        // neither ours to overwrite nor usable. Someone wrote it by hand; say so.
        return yield* new StoreError({
          operation: "set",
          detail: `${recordKey(record)} holds a malformed record with a newer generation; delete the key`
        })
      })

    const lease = (key: RecordKey, leaseMillis: number) =>
      Effect.gen(function*() {
        const owner = yield* randomId
        const leaseAt = leaseKey(key)
        // PX takes whole milliseconds, at least one.
        const millis = Math.max(1, Math.ceil(leaseMillis))
        return yield* Effect.acquireRelease(
          Effect.map(write("lease", () => client.set(leaseAt, owner, "PX", millis, "NX")), (reply) => reply === "OK"),
          (taken) =>
            taken
              // If Redis is down now, the lease lapses by itself after `leaseMillis`.
              ? Effect.ignore(command("release", () => releaseLease(client, 1, leaseAt, owner)))
              : Effect.void
        )
      })

    const heartbeat = (replica: string, now: number, until: number) =>
      Effect.map(
        write("heartbeat", () => heartbeatScript(client, 1, REPLICAS_KEY, Math.floor(now), Math.ceil(until), replica)),
        (replicas) => (Array.isArray(replicas) ? replicas.filter((id): id is string => typeof id === "string") : [])
      )

    const leave = (replica: string) => Effect.asVoid(command("leave", () => client.zrem(REPLICAS_KEY, replica)))

    // The changes mark: how many writes this instance missed. Writes are
    // counted by Redis (`MARK_KEY`); each one this instance made (the
    // script answers its count) or delivered on `changes` (the message
    // carries it) is seen; reading the mark counts every write up to it
    // that was not seen as missed. A mark lower than the last one read means
    // the store lost its data (emptied, or restored from a snapshot): one
    // miss more, and counting starts over from it. On a cluster the mark
    // would sit in another slot than the records, so there is none.
    const marked = target.mode !== "cluster"
    let seenUpTo: number | undefined
    const seen = new Set<number>()
    let missed = 0
    const saw = (mark: number) => {
      if (seenUpTo === undefined || mark <= seenUpTo) return
      seen.add(mark)
      if (seen.size > SEEN_MAX) {
        seenUpTo = undefined
        seen.clear()
        missed += 1
      }
    }
    const changesMark = Effect.map(command("changesMark", () => client.get(MARK_KEY)), (value) => {
      const mark = Number(value ?? 0)
      if (seenUpTo === undefined || mark < seenUpTo) {
        if (seenUpTo !== undefined) missed += 1
        seen.clear()
      } else {
        let counted = 0
        for (const at of seen) {
          if (at > mark) continue
          seen.delete(at)
          counted += 1
        }
        missed += mark - seenUpTo - counted
      }
      seenUpTo = mark
      return missed
    })

    const changes = Stream.asyncPush<TokenRecord>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const listener = (channel: string, message: string) => {
            if (channel !== CHANGES_CHANNEL) return
            const change = readChange(message, origin)
            if (Either.isLeft(change)) {
              log(Effect.logWarning("skipping a malformed token store change message"))
              return
            }
            if (change.right.mark !== undefined) saw(change.right.mark)
            if (change.right.record !== undefined) emit.single(change.right.record)
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
      getMany,
      list,
      set,
      lease,
      heartbeat,
      leave,
      ...(marked ? { changesMark } : {}),
      changes,
      healthy: Effect.sync(() => client.status === "ready"),
      claim,
      isClaimed,
      documents: RedisDocuments.make({
        client,
        subscriber,
        command,
        write,
        fail: (operation, detail) => new StoreError({ operation, detail })
      })
    }
  })
