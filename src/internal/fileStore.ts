/**
 * The file store: one JSON document holding every record, replaced whole by
 * an atomic rename so a reader (or a crash) never sees half a write.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Cause, Deferred, Effect, Either, Exit, Option, Schema, Stream } from "effect"
import * as NodePath from "node:path"
import { type CredentialKind, TokenRecord } from "../Token.js"
import { claimsInMemory, isNewer, keyString, type RecordKey, StoreError, type TokenStoreShape } from "../TokenStore.js"
import * as AtomicFile from "./atomicFile.js"
import * as FifoPermits from "./fifoPermits.js"
import * as StoredRecord from "./storedRecord.js"

/** Written into every document so a file of another program (or version) is never trusted. */
export const FORMAT = "effect-wechat-token/v1"

// Records stay `Unknown` here: one bad record must not cost the others.
const StoredDocument = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(FORMAT),
  records: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}))

const decodeDocument = Schema.decodeEither(StoredDocument)
const decodeRecord = StoredRecord.decodeValue

// Each record as it sits in the document (its key and body, indented, in
// UTF-8), made once per record: a group commit rewrites the whole document,
// and with thousands of records held, stringifying and encoding every one
// of them again for each commit took a cold start's herd a third of its
// CPU. Records are immutable, so the bytes made for one stay true while it
// is held.
const entries = new WeakMap<TokenRecord, Buffer>()
const entryOf = (record: TokenRecord): Buffer => {
  const known = entries.get(record)
  if (known !== undefined) return known
  const entry = Buffer.from(
    `    ${JSON.stringify(keyString(record))}: ${JSON.stringify(record, null, 2).replaceAll("\n", "\n    ")}`
  )
  entries.set(record, entry)
  return entry
}

const HEAD = Buffer.from(`{\n  "format": ${JSON.stringify(FORMAT)},\n  "records": {\n`)
const BETWEEN = Buffer.from(",\n")
const TAIL = Buffer.from("\n  }\n}")
const EMPTY = Buffer.from(`{\n  "format": ${JSON.stringify(FORMAT)},\n  "records": {}\n}`)

/**
 * The document holding `records` (one per key), in UTF-8, as the store
 * writes it (the bench writes warm stores with it): what `JSON.stringify` of
 * `{ format, records }` with a two-space indent gives, keyed by `keyString`.
 * A `TokenRecord`'s own properties are exactly its encoded fields (strings,
 * numbers, a boolean), so `JSON.stringify` writes what
 * `Schema.encode(TokenRecord)` would, about four times faster: the 200,000
 * records of 100,000 authorizers took 13 s through the schema.
 */
export const render = (records: Iterable<TokenRecord>): Buffer => {
  const parts: Array<Buffer> = [HEAD]
  for (const record of records) {
    if (parts.length > 1) parts.push(BETWEEN)
    parts.push(entryOf(record))
  }
  if (parts.length === 1) return EMPTY
  parts.push(TAIL)
  return Buffer.concat(parts)
}

interface Loaded {
  readonly records: ReadonlyMap<string, TokenRecord>
  /** The file exists but is not a document of ours: moved aside, not overwritten, on the next write. */
  readonly unusable: boolean
}

const empty: Loaded = { records: new Map(), unusable: false }

// A document as read or written, and the file's signature then.
interface Cached {
  readonly signature: string
  readonly loaded: Loaded
  /** Logged by every read of it, as each read of the file logged it. */
  readonly warn: Effect.Effect<void>
}

// A set waiting for the write that holds its record.
interface Waiter {
  readonly record: TokenRecord
  readonly done: Deferred.Deferred<TokenRecord, StoreError>
}

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

    // The document, and the warning every read of it logs while the file stays as it is.
    const parse = (text: string): { readonly loaded: Loaded; readonly warn: Effect.Effect<void> } => {
      const document = decodeDocument(text)
      if (Either.isLeft(document)) {
        return {
          loaded: { records: new Map(), unusable: true },
          warn: Effect.logWarning("token store file is not a valid document; treating it as an empty store").pipe(
            Effect.annotateLogs({ reason: document.left.message.split("\n")[0] })
          )
        }
      }
      const records = new Map<string, TokenRecord>()
      const dropped: Array<string> = []
      for (const [key, value] of Object.entries(document.right.records)) {
        const record = decodeRecord(value)
        // A record filed under another key would answer for the wrong app: as bad as a malformed one.
        if (Either.isRight(record) && keyString(record.right) === key) records.set(key, record.right)
        else dropped.push(key)
      }
      return {
        loaded: { records, unusable: false },
        warn: dropped.length === 0
          ? Effect.void
          : Effect.logWarning("token store file holds malformed records; dropping them").pipe(
            Effect.annotateLogs({ records: dropped.join(", ") })
          )
      }
    }

    // The document as last read or written, and what the file looked like
    // then. With 100,000 authorizers the file is tens of MB: parsing it for
    // every read and write would cost each a second. A file whose inode,
    // size and modification time are unchanged is taken as unchanged; any
    // other writer (another layer on the same path, an operator's edit, an
    // atomic replacement) changes at least one of them and is read again.
    let cached: Cached | undefined
    // Documents read that this instance did not write (the first one, a file
    // replaced or removed under it): the changes mark.
    let foreign = 0
    // The document a write is renaming into place, known by its temporary
    // file's signature (a rename keeps inode, size and mtime): a read that
    // sees the new file before the write has noted it finds it here instead
    // of parsing it.
    let renaming: Cached | undefined
    const known = (signature: string): Cached | undefined =>
      cached?.signature === signature ? cached : renaming?.signature === signature ? renaming : undefined
    // Reads of a changed file wait for one another: concurrent gets parse it once.
    const readers = yield* FifoPermits.make(1)

    const signatureOf = AtomicFile.signature

    // The signature of the file now; `undefined` when there is none.
    const currentSignature = (operation: string): Effect.Effect<string | undefined, StoreError> =>
      fs.stat(path).pipe(
        Effect.map(signatureOf),
        Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
        Effect.mapError(storeError(operation))
      )

    const load = (operation: string): Effect.Effect<Loaded, StoreError> =>
      Effect.gen(function*() {
        const signature = yield* currentSignature(operation)
        if (signature === undefined) {
          if (cached !== undefined) foreign += 1
          cached = undefined
          return empty
        }
        const hit = known(signature)
        if (hit !== undefined) return yield* Effect.as(hit.warn, hit.loaded)
        return yield* readers.withPermit(Effect.suspend(() => {
          const read = known(signature)
          if (read !== undefined) return Effect.as(read.warn, read.loaded)
          return fs.readFileString(path).pipe(
            Effect.map(Option.some),
            // Removed between the stat and the read: an empty store, as a missing file is.
            Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
            Effect.mapError(storeError(operation)),
            Effect.flatMap((text) => {
              if (Option.isNone(text)) return Effect.succeed(empty)
              // Stamped with the signature seen before the read: if the file changed
              // in between, the next load sees a new signature and reads it again.
              const parsed: Cached = { signature, ...parse(text.value) }
              cached = parsed
              foreign += 1
              return Effect.as(parsed.warn, parsed.loaded)
            })
          )
        }))
      })

    const write = (records: ReadonlyMap<string, TokenRecord>) =>
      AtomicFile.write(fs, path, render(records.values()), (temp) =>
        Effect.map(fs.stat(temp), (info) => {
          // A rename keeps inode, size and mtime: a read that sees the new
          // file before `cached` is set finds it here instead of parsing it.
          renaming = { signature: signatureOf(info), loaded: { records, unusable: false }, warn: Effect.void }
        })).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              cached = renaming
            })
          ),
          Effect.ensuring(Effect.sync(() => {
            renaming = undefined
          }))
        )

    // Applies `batch` in arrival order, compare-and-set by generation, and
    // writes the document once if any record won. Answers each set's winner.
    const commit = (batch: ReadonlyArray<Waiter>): Effect.Effect<ReadonlyArray<TokenRecord>, StoreError> =>
      Effect.gen(function*() {
        const loaded = yield* load("set")
        const records = new Map(loaded.records)
        let changed = false
        const winners = batch.map(({ record }) => {
          const key = keyString(record)
          const held = Option.fromNullable(records.get(key))
          if (Option.isSome(held) && !isNewer(record, held)) return held.value
          records.set(key, record)
          changed = true
          return record
        })
        if (!changed) return winners
        yield* fs.makeDirectory(directory, { recursive: true, mode: AtomicFile.DIRECTORY_MODE })
        if (loaded.unusable) {
          // Whatever the file was, it may matter to someone: keep it beside the store.
          const aside = `${path}.corrupt`
          yield* fs.rename(path, aside)
          yield* Effect.logWarning("moved the unusable token store file aside").pipe(Effect.annotateLogs({ aside }))
        }
        // The cache describes the file on disk until the rename: reads during
        // the write see the old document (as they would read it), and a
        // failed write leaves both as they were.
        yield* write(records)
        return winners
      }).pipe(Effect.mapError((error) => error._tag === "StoreError" ? error : storeError("set")(error)))

    // Group commit. Each write replaces the whole file, which at 100,000
    // authorizers is tens of MB, and steady refreshes come about 14 times a
    // second: one write per set would rewrite the file that often and queue
    // sets behind each other for ever longer. Instead every set joins the
    // queue, and whoever holds the write permit writes everything queued in
    // one document: the sets that arrived while a write was in flight go
    // into the next single write. A set still returns only once the write
    // holding its record is fsynced and renamed into place; if that write
    // fails, every set in it fails.
    let queued: Array<Waiter> = []
    // Why the last write failed, until one succeeds: a store that cannot
    // write (no permission, a file where its directory should be) keeps
    // nothing across a restart, which `/readyz` must say.
    let writeFailure = Option.none<string>()

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (queued.length === 0) return Effect.void
      const batch = queued
      queued = []
      return Effect.flatMap(
        Effect.exit(commit(batch)),
        (exit) =>
          Effect.forEach(
            batch,
            (waiter, index) => Deferred.done(waiter.done, Exit.map(exit, (winners) => winners[index]!)),
            { discard: true }
          ).pipe(Effect.zipLeft(Effect.sync(() => {
            writeFailure = Exit.isFailure(exit)
              ? Option.some(
                `TOKEN_STORE file ${path} cannot be written: ${
                  Option.match(Cause.failureOption(exit.cause), {
                    onNone: () => Cause.pretty(exit.cause),
                    onSome: (error) => error.message
                  })
                }`
              )
              : Option.none()
          })))
      )
    })

    const set = (record: TokenRecord): Effect.Effect<TokenRecord, StoreError> =>
      Effect.gen(function*() {
        const waiter: Waiter = { record, done: yield* Deferred.make<TokenRecord, StoreError>() }
        queued.push(waiter)
        // Once a batch is taken it is written and answered whole, whoever was
        // interrupted; a set interrupted while still queued leaves the queue.
        yield* writers.withPermit(Effect.uninterruptible(flush)).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              queued = queued.filter((queuedWaiter) => queuedWaiter !== waiter)
            })
          )
        )
        return yield* Deferred.await(waiter.done)
      })

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
      changesMark: Effect.annotateLogs(Effect.map(load("changesMark"), () => foreign), { path }),
      changes: Stream.empty,
      healthy: Effect.sync(() => Option.isNone(writeFailure)),
      writeFailure: Effect.sync(() => writeFailure),
      // One process, as for the lease. Claims live minutes: rewriting the
      // whole document (tens of MB at scale) for each would cost far more
      // than the restart it would cover.
      ...claimsInMemory()
    }
  })
