/**
 * The file store: one JSON document holding every record, replaced whole by
 * an atomic rename so a reader (or a crash) never sees half a write.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Either, Option, Random, Schema, Stream } from "effect"
import * as NodePath from "node:path"
import { type CredentialKind, TokenRecord } from "../Token.js"
import { isNewer, keyString, type RecordKey, StoreError, type TokenStoreShape } from "../TokenStore.js"
import * as FifoPermits from "./fifoPermits.js"

/** Written into every document so a file of another program (or version) is never trusted. */
export const FORMAT = "effect-wechat-token/v1"

// Records stay `Unknown` here: one bad record must not cost the others.
const StoredDocument = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(FORMAT),
  records: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}))

const WrittenDocument = Schema.parseJson(
  Schema.Struct({
    format: Schema.Literal(FORMAT),
    records: Schema.Record({ key: Schema.String, value: TokenRecord })
  }),
  { space: 2 }
)

const decodeDocument = Schema.decodeEither(StoredDocument)
const decodeRecord = Schema.decodeUnknownEither(TokenRecord)
const encodeDocument = Schema.encode(WrittenDocument)

// Tokens are bearer credentials: only the owner may read them.
const FILE_MODE = 0o600
const DIRECTORY_MODE = 0o700

interface Loaded {
  readonly records: ReadonlyMap<string, TokenRecord>
  /** The file exists but is not a document of ours: moved aside, not overwritten, on the next write. */
  readonly unusable: boolean
}

const empty: Loaded = { records: new Map(), unusable: false }

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

const storeError = (operation: string) => (error: { readonly message: string }) =>
  new StoreError({ operation, detail: error.message })

/**
 * A store over the JSON document at `path`. Writers of this store are
 * serialized; two processes writing the same file may lose each other's
 * updates, which is why the file store is for a single process.
 */
export const make = (path: string): Effect.Effect<TokenStoreShape, StoreError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = NodePath.dirname(path)
    const writers = yield* FifoPermits.make(1)

    const parse = (text: string): Effect.Effect<Loaded> => {
      const document = decodeDocument(text)
      if (Either.isLeft(document)) {
        return Effect.logWarning("token store file is not a valid document; treating it as an empty store").pipe(
          Effect.annotateLogs({ reason: document.left.message.split("\n")[0] }),
          Effect.as({ records: new Map(), unusable: true })
        )
      }
      const records = new Map<string, TokenRecord>()
      const dropped: Array<string> = []
      for (const [key, value] of Object.entries(document.right.records)) {
        const record = decodeRecord(value)
        // A record filed under another key would answer for the wrong app: as bad as a malformed one.
        if (Either.isRight(record) && keyString(record.right) === key) records.set(key, record.right)
        else dropped.push(key)
      }
      const warn = dropped.length === 0
        ? Effect.void
        : Effect.logWarning("token store file holds malformed records; dropping them").pipe(
          Effect.annotateLogs({ records: dropped.join(", ") })
        )
      return Effect.as(warn, { records, unusable: false })
    }

    const load = (operation: string): Effect.Effect<Loaded, StoreError> =>
      fs.readFileString(path).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
        Effect.mapError(storeError(operation)),
        Effect.flatMap(Option.match({ onNone: () => Effect.succeed(empty), onSome: parse }))
      )

    // fsync of the directory makes the rename itself durable; platforms that
    // cannot open a directory still get the atomic rename.
    const syncDirectory = Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync)).pipe(
      Effect.ignore
    )

    const write = (records: ReadonlyMap<string, TokenRecord>) =>
      Effect.gen(function*() {
        const text = yield* encodeDocument({ format: FORMAT, records: Object.fromEntries(records) })
        const suffix = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)
        // Same directory as the target: rename is atomic only within one file system.
        const temp = NodePath.join(directory, `.${NodePath.basename(path)}.${suffix}.tmp`)
        yield* Effect.gen(function*() {
          const file = yield* fs.open(temp, { flag: "wx", mode: FILE_MODE })
          yield* file.writeAll(new TextEncoder().encode(text))
          yield* file.sync
        }).pipe(
          Effect.scoped,
          // The umask may have taken bits away; the mode must be exactly owner read/write.
          Effect.zipRight(fs.chmod(temp, FILE_MODE)),
          Effect.zipRight(fs.rename(temp, path)),
          Effect.onError(() => Effect.ignore(fs.remove(temp)))
        )
        yield* syncDirectory
      })

    const set = (record: TokenRecord): Effect.Effect<TokenRecord, StoreError> =>
      Effect.gen(function*() {
        const loaded = yield* load("set")
        const key = keyString(record)
        const held = Option.fromNullable(loaded.records.get(key))
        if (Option.isSome(held) && !isNewer(record, held)) return held.value
        yield* fs.makeDirectory(directory, { recursive: true, mode: DIRECTORY_MODE })
        if (loaded.unusable) {
          // Whatever the file was, it may matter to someone: keep it beside the store.
          const aside = `${path}.corrupt`
          yield* fs.rename(path, aside)
          yield* Effect.logWarning("moved the unusable token store file aside").pipe(Effect.annotateLogs({ aside }))
        }
        yield* write(new Map(loaded.records).set(key, record))
        return record
      }).pipe(
        Effect.mapError((error) => error._tag === "StoreError" ? error : storeError("set")(error)),
        writers.withPermit
      )

    const get = (key: RecordKey): Effect.Effect<Option.Option<TokenRecord>, StoreError> =>
      Effect.map(load("get"), (loaded) => Option.fromNullable(loaded.records.get(keyString(key))))

    const list = (kind: CredentialKind): Effect.Effect<ReadonlyArray<TokenRecord>, StoreError> =>
      Effect.map(load("list"), (loaded) => Array.from(loaded.records.values()).filter((record) => record.kind === kind))

    // Read once up front: a path that cannot be read stops start-up here
    // rather than failing every request later.
    yield* Effect.annotateLogs(load("open"), { path })

    return {
      get: (key) => Effect.annotateLogs(get(key), { path }),
      list: (kind) => Effect.annotateLogs(list(kind), { path }),
      set: (record) => Effect.annotateLogs(set(record), { path }),
      lease: () => Effect.succeed(true),
      changes: Stream.empty,
      healthy: Effect.succeed(true)
    }
  })
