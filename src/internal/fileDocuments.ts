/**
 * `StoreDocuments` in a directory beside the file store: `PATH.documents/NAME.json`,
 * each `{"version":n,"body":"…"}`, written atomically (mode 0600).
 *
 * A file store serves one process, but an operator may still edit or
 * restore a document while it runs: the directory is polled every second
 * and a file whose inode, size or modification time changed is announced.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option, Schedule, Stream } from "effect"
import * as NodePath from "node:path"
import { checkName, type StoredDocument, type StoreDocumentsShape } from "../StoreDocuments.js"
import { StoreError } from "../TokenStore.js"
import * as AtomicFile from "./atomicFile.js"
import * as FifoPermits from "./fifoPermits.js"
import { decodeStored, encodeStored } from "./storedDocument.js"

/** How often the directory is looked at for documents changed by someone else. */
export const POLL = "1 second"

/** The directory holding the documents of the file store at `path`. */
export const directoryOf = (path: string): string => `${path}.documents`

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

export const make = (path: string): Effect.Effect<StoreDocumentsShape, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = directoryOf(path)
    const writers = yield* FifoPermits.make(1)
    const fileOf = (name: string) => NodePath.join(directory, `${name}.json`)
    const fail = (operation: string) => (error: { readonly message: string }) =>
      new StoreError({ operation, detail: error.message })

    const read = (operation: string, name: string): Effect.Effect<Option.Option<StoredDocument>, StoreError> =>
      fs.readFileString(fileOf(name)).pipe(
        Effect.map(Option.some<string>),
        Effect.catchIf(isNotFound, () => Effect.succeedNone),
        Effect.mapError(fail(operation)),
        Effect.flatMap((text): Effect.Effect<Option.Option<StoredDocument>, StoreError> => {
          if (Option.isNone(text)) return Effect.succeedNone
          const document = decodeStored(text.value)
          return Option.isSome(document)
            ? Effect.succeed(document)
            : Effect.fail(new StoreError({ operation, detail: `${fileOf(name)} is not a document` }))
        })
      )

    // Signatures as this instance last wrote or announced them: its own
    // writes are not announced back to it.
    const seen = new Map<string, string>()
    const signature = (file: string) => Effect.map(fs.stat(file), AtomicFile.signature)

    const swap: StoreDocumentsShape["swap"] = (name, expected, body) =>
      Effect.zipRight(
        checkName("swap", name),
        writers.withPermit(
          Effect.gen(function*() {
            const held = yield* read("swap", name)
            if (Option.match(held, { onNone: () => 0, onSome: (document) => document.version }) !== expected) {
              return false
            }
            yield* fs.makeDirectory(directory, { recursive: true, mode: AtomicFile.DIRECTORY_MODE })
            yield* AtomicFile.write(fs, fileOf(name), encodeStored({ version: expected + 1, body }), (temp) =>
              Effect.map(signature(temp), (written) => {
                seen.set(name, written)
              }))
            return true
          }).pipe(Effect.mapError((error) =>
            error._tag === "StoreError" ? error : fail("swap")(error)
          ))
        )
      )

    const look = fs.readDirectory(directory).pipe(
      Effect.catchAll(() => Effect.succeed([] as ReadonlyArray<string>)),
      Effect.flatMap((entries) =>
        Effect.filter(
          entries.flatMap((entry) => entry.endsWith(".json") ? [entry.slice(0, -".json".length)] : []),
          (name) =>
            signature(fileOf(name)).pipe(
              Effect.map((now) => {
                if (seen.get(name) === now) return false
                seen.set(name, now)
                return true
              }),
              Effect.orElseSucceed(() => false)
            )
        )
      )
    )
    // What is on disk at start-up is not a change.
    yield* look

    return {
      get: (name) => Effect.zipRight(checkName("get", name), read("get", name)),
      swap,
      changed: Stream.repeatEffectWithSchedule(look, Schedule.spaced(POLL)).pipe(Stream.flattenIterables)
    }
  })
