import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import * as PlatformError from "@effect/platform/Error"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Logger, Option, Schema } from "effect"
import * as AppId from "../src/AppId.js"
import * as FileStore from "../src/internal/fileStore.js"
import type * as OwnerId from "../src/OwnerId.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenStore from "../src/TokenStore.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"

const T0 = 1_750_000_000_000
let apps = 0
const freshApp = (): AppId.AppId => AppId.make(`wx${(++apps).toString(16).padStart(16, "0")}`)
const makeRecord = (appId: OwnerId.OwnerId, generation = 1): TokenRecord =>
  new TokenRecord({
    appId,
    kind: "access_token",
    value: `token-${appId}-${generation}`,
    mode: "stable",
    fetchedAt: T0,
    expiresAt: T0 + 7_200_000,
    refreshAt: T0 + 6_900_000,
    generation,
    lineage: "lineage-1"
  })
const encoded = Schema.encodeSync(TokenRecord)

interface LogEntry {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/** A logger that keeps what it is given, and the layer installing it. */
const captureLogs = () => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    entries.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.join(" ") : String(message),
      annotations: Object.fromEntries(annotations)
    })
  })
  return { entries, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const warnings = (entries: ReadonlyArray<LogEntry>) => entries.filter((entry) => entry.level === "WARN")

/** A store instance over `path`, built in the test's scope. */
const storeAt = (path: string) =>
  Effect.map(Layer.build(TokenStoreFile.layer(path)), Context.get(TokenStore.TokenStore))

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "token-file-" }))

const validDocument = (records: ReadonlyArray<TokenRecord>) =>
  JSON.stringify({
    format: "effect-wechat-token/v1",
    records: Object.fromEntries(records.map((record) => [TokenStore.keyString(record), encoded(record)]))
  })

/**
 * Node's file system, except that the first rename (the first write's)
 * waits until `open` is called, and renames fail while `failing` is set.
 * `renames` counts the writes that completed.
 */
const gatedFileSystem = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const entered = yield* Deferred.make<void>()
  const gate = yield* Deferred.make<void>()
  const state = { renames: 0, failing: false, first: true }
  const rename = (from: string, to: string) =>
    Effect.gen(function*() {
      if (state.first) {
        state.first = false
        yield* Deferred.succeed(entered, undefined)
        yield* Deferred.await(gate)
      }
      if (state.failing) {
        return yield* new PlatformError.SystemError({
          reason: "Unknown",
          module: "FileSystem",
          method: "rename",
          pathOrDescriptor: to,
          description: "the disk went away"
        })
      }
      yield* fs.rename(from, to)
      state.renames += 1
    })
  return {
    layer: Layer.succeed(FileSystem.FileSystem, { ...fs, rename }),
    state,
    /** The first write is under way, stopped before its rename. */
    entered: Deferred.await(entered),
    open: Deferred.succeed(gate, undefined)
  }
})

/** Waits until every fiber is blocked (here: queued behind the write in flight). */
const allSuspended = (fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>) =>
  Effect.gen(function*() {
    for (;;) {
      const statuses = yield* Effect.forEach(fibers, (fiber) => fiber.status)
      if (statuses.every((status) => status._tag === "Suspended")) return
      yield* Effect.yieldNow()
    }
  })

// A file store in a fresh directory, and two records of two new apps.
const freshStore = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* tempDir
  const path = `${dir}/tokens.json`
  return { a: makeRecord(freshApp()), b: makeRecord(freshApp(), 3), dir, fs, path, store: yield* storeAt(path) }
})

describe("TokenStoreFile.layer", () => {
  it.scoped("writes one document of records only, mode 0600, and leaves no temporary file behind", () =>
    Effect.gen(function*() {
      const { a, b, dir, fs, path, store } = yield* freshStore
      yield* store.set(a)
      yield* store.set(b)
      yield* store.set(makeRecord(a.appId, 2))

      expect(yield* fs.readDirectory(dir)).toEqual(["tokens.json"])
      expect((yield* fs.stat(path)).mode & 0o777).toBe(0o600)
      const document = JSON.parse(yield* fs.readFileString(path))
      expect(Object.keys(document).sort()).toEqual(["format", "records"])
      expect(document.format).toBe("effect-wechat-token/v1")
      expect(Object.keys(document.records).sort()).toEqual(
        [`${a.appId}/access_token`, `${b.appId}/access_token`].sort()
      )
      // Each record as its schema encodes it.
      expect(document.records[`${b.appId}/access_token`]).toEqual(encoded(b))
      expect(document.records[`${a.appId}/access_token`]).toEqual(encoded(makeRecord(a.appId, 2)))
      // Exactly the record's fields: nothing else (no secret) ever lands in the file.
      for (const record of Object.values(document.records)) {
        // (`retired` is written only on a retired owner's tombstone.)
        expect(Object.keys(record as object).sort()).toEqual(
          Object.keys(TokenRecord.fields).filter((field) => field !== "retired").sort()
        )
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("writes the document JSON.stringify would with a two-space indent, records in the order written", () =>
    Effect.gen(function*() {
      const { a, b, fs, path, store } = yield* freshStore
      const retired = new TokenRecord({ ...makeRecord(freshApp(), 2), retired: true, lineage: undefined })
      const document = (records: ReadonlyArray<TokenRecord>) =>
        JSON.stringify(
          {
            format: "effect-wechat-token/v1",
            records: Object.fromEntries(records.map((record) => [TokenStore.keyString(record), encoded(record)]))
          },
          null,
          2
        )
      yield* store.set(a)
      expect(yield* fs.readFileString(path)).toBe(document([a]))
      const a2 = makeRecord(a.appId, 2)
      yield* store.set(b)
      yield* store.set(retired)
      // A record replaced keeps its place; its text is the new record's.
      yield* store.set(a2)
      expect(yield* fs.readFileString(path)).toBe(document([a2, b, retired]))
      expect(FileStore.render([]).toString("utf8")).toBe(document([]))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a document as 0.2.0 wrote it (records without lineage) loads, and a successor replaces its record", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/tokens.json`
      const appId = freshApp()
      yield* fs.writeFileString(
        path,
        `{"format":"effect-wechat-token/v1","records":{"${appId}/access_token":{"appId":"${appId}",` +
          `"kind":"access_token","value":"token-0.2.0","mode":"classic","fetchedAt":${T0},` +
          `"expiresAt":${T0 + 7_200_000},"refreshAt":${T0 + 6_900_000},"generation":4}}}`
      )
      const store = yield* storeAt(path)
      const read = Option.getOrThrow(yield* store.get({ appId, kind: "access_token" }))
      expect(read.value).toBe("token-0.2.0")
      expect(read.lineage).toBeUndefined()
      const successor = new TokenRecord({ ...read, value: "token-0.3.0", generation: 5 })
      expect(encoded(yield* store.set(successor))).toEqual(encoded(successor))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("the file ends up 0600 whatever the old file's mode or the process umask", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      const permissive = `${dir}/permissive.json`
      yield* fs.writeFileString(permissive, validDocument([]), { mode: 0o644 })
      yield* fs.chmod(permissive, 0o644)
      yield* Effect.flatMap(storeAt(permissive), (store) => store.set(makeRecord(freshApp())))
      expect((yield* fs.stat(permissive)).mode & 0o777).toBe(0o600)

      // A umask that takes the owner's write bit away too: only the chmod restores 0600.
      yield* Effect.acquireRelease(Effect.sync(() => process.umask(0o277)), (old) =>
        Effect.sync(() => process.umask(old)))
      const strict = `${dir}/strict.json`
      yield* Effect.flatMap(storeAt(strict), (store) =>
        store.set(makeRecord(freshApp())))
      expect((yield* fs.stat(strict)).mode & 0o777).toBe(0o600)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a missing file is an empty store, said quietly; a missing directory is created", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const logs = captureLogs()
      const path = `${yield* tempDir}/nested/deeper/tokens.json`
      const store = yield* storeAt(path)
      const record = makeRecord(freshApp())
      expect(yield* store.get(record).pipe(Effect.provide(logs.layer))).toEqual(Option.none())
      expect(warnings(logs.entries)).toEqual([])
      yield* store.set(record)
      expect(yield* fs.exists(path)).toBe(true)
      expect(Option.map(yield* store.get(record), encoded)).toEqual(Option.some(encoded(record)))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a corrupt, truncated, foreign or wrong-format file is an empty store, logged, and kept aside on write", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      const held = makeRecord(freshApp(), 5)
      const valid = validDocument([held])
      const cases: Record<string, string> = {
        corrupt: "{\"format\": effect-wechat-token",
        truncated: valid.slice(0, Math.floor(valid.length / 2)),
        empty: "",
        foreign: JSON.stringify({ name: "my-app", version: "1.0.0" }),
        array: JSON.stringify([encoded(held)]),
        "wrong format": valid.replace("effect-wechat-token/v1", "effect-wechat-token/v2"),
        "records not an object": JSON.stringify({ format: "effect-wechat-token/v1", records: [encoded(held)] })
      }
      for (const [name, content] of Object.entries(cases)) {
        const path = `${dir}/${name.replace(/ /g, "-")}.json`
        yield* fs.writeFileString(path, content)
        const logs = captureLogs()
        const store = yield* storeAt(path)
        expect(yield* store.get(held).pipe(Effect.provide(logs.layer)), name).toEqual(Option.none())
        expect(warnings(logs.entries).map((entry) => entry.message), name).toEqual([
          "token store file is not a valid document; treating it as an empty store"
        ])
        // A lower generation than the untrusted file held still wins: nothing of it is trusted.
        const written = makeRecord(held.appId, 1)
        expect(encoded(yield* store.set(written).pipe(Effect.provide(logs.layer))), name).toEqual(encoded(written))
        expect(yield* fs.readFileString(`${path}.corrupt`), name).toBe(content)
        expect(Option.map(yield* store.get(held), encoded), name).toEqual(Option.some(encoded(written)))
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a malformed or misfiled record is dropped and logged; the others are kept", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/tokens.json`
      const good = makeRecord(freshApp(), 2)
      const [negative, misfiled, notObject] = [freshApp(), freshApp(), freshApp()]
      yield* fs.writeFileString(
        path,
        JSON.stringify({
          format: "effect-wechat-token/v1",
          records: {
            [TokenStore.keyString(good)]: encoded(good),
            [`${negative}/access_token`]: { ...encoded(makeRecord(negative)), generation: -1 },
            // A valid record under another app's key would answer for the wrong app.
            [`${misfiled}/access_token`]: encoded(good),
            [`${notObject}/access_token`]: "token"
          }
        })
      )
      const logs = captureLogs()
      const store = yield* storeAt(path)
      expect(Option.map(yield* store.get(good).pipe(Effect.provide(logs.layer)), encoded)).toEqual(
        Option.some(encoded(good))
      )
      for (const appId of [negative, misfiled, notObject]) {
        expect(yield* store.get({ appId, kind: "access_token" })).toEqual(Option.none())
      }
      const [warning] = warnings(logs.entries)
      expect(warning?.message).toBe("token store file holds malformed records; dropping them")
      expect(String(warning?.annotations.records).split(", ").sort()).toEqual(
        [negative, misfiled, notObject].map((appId) => `${appId}/access_token`).sort()
      )

      // The next write keeps the good record and leaves the bad ones out; the file was ours, so nothing is moved aside.
      const other = makeRecord(freshApp())
      yield* store.set(other)
      const document = JSON.parse(yield* fs.readFileString(path))
      expect(Object.keys(document.records).sort()).toEqual(
        [TokenStore.keyString(good), TokenStore.keyString(other)].sort()
      )
      expect(yield* fs.exists(`${path}.corrupt`)).toBe(false)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("two layers on the same file see each other's writes and keep compare-and-set", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/shared.json`
      const [one, two] = [yield* storeAt(path), yield* storeAt(path)]
      const appId = freshApp()
      yield* one.set(makeRecord(appId, 1))
      expect(Option.map(yield* two.get({ appId, kind: "access_token" }), (record) => record.generation)).toEqual(
        Option.some(1)
      )
      const newer = makeRecord(appId, 2)
      yield* two.set(newer)
      expect(encoded(yield* one.set(makeRecord(appId, 1)))).toEqual(encoded(newer))
      expect(Option.map(yield* one.get(newer), encoded)).toEqual(Option.some(encoded(newer)))
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("changesMark stays put over the store's own writes; moves when the file is written by another or removed", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/tokens.json`
      const [one, two] = [yield* storeAt(path), yield* storeAt(path)]
      const mark = one.changesMark!
      const appId = freshApp()
      yield* one.set(makeRecord(appId, 1))
      const before = yield* mark
      yield* one.set(makeRecord(appId, 2))
      expect(yield* mark).toBe(before)
      yield* two.set(makeRecord(appId, 3))
      const written = yield* mark
      expect(written).toBeGreaterThan(before)
      expect(yield* mark).toBe(written)
      yield* fs.remove(path)
      expect(yield* mark).toBeGreaterThan(written)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("concurrent writers in one process lose no update", () =>
    Effect.gen(function*() {
      const store = yield* storeAt(`${yield* tempDir}/tokens.json`)
      const records = Array.from({ length: 20 }, () => makeRecord(freshApp()))
      yield* Effect.forEach(records, (record) => store.set(record), { concurrency: "unbounded", discard: true })
      for (const record of records) {
        expect(Option.map(yield* store.get(record), encoded)).toEqual(Option.some(encoded(record)))
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a path that cannot be read fails at open with StoreError instead of passing for empty", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/is-a-directory`
      yield* fs.makeDirectory(path)
      const opened = yield* Effect.flip(storeAt(path))
      expect(opened._tag).toBe("StoreError")
      expect(opened.operation).toBe("open")
      expect(opened.message).toContain("EISDIR")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a path that stops being readable after open fails reads and writes with StoreError", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = `${yield* tempDir}/tokens.json`
      const store = yield* storeAt(path)
      yield* fs.makeDirectory(path)
      const record = makeRecord(freshApp())
      expect((yield* Effect.flip(store.get(record)))._tag).toBe("StoreError")
      expect((yield* Effect.flip(store.set(record)))._tag).toBe("StoreError")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("sets that arrive while a write is in flight go into the next single write, each durable when it returns", () =>
    Effect.gen(function*() {
      const path = `${yield* tempDir}/tokens.json`
      const gated = yield* gatedFileSystem
      const store = yield* Effect.provide(storeAt(path), gated.layer)
      const first = makeRecord(freshApp())
      const firstSet = yield* Effect.fork(store.set(first))
      yield* gated.entered
      const queued = Array.from({ length: 20 }, () => makeRecord(freshApp()))
      const fibers = yield* Effect.forEach(queued, (record) => Effect.fork(store.set(record)))
      yield* allSuspended(fibers)
      yield* gated.open
      expect(encoded(yield* Fiber.join(firstSet))).toEqual(encoded(first))
      const answers = yield* Effect.forEach(fibers, Fiber.join)
      expect(answers.map((answer) => encoded(answer))).toEqual(queued.map((record) => encoded(record)))
      // One write for the first set, one for the twenty that waited on it.
      expect(gated.state.renames).toBe(2)
      // Each is in the file: a store opened afresh reads them all.
      const reopened = yield* storeAt(path)
      for (const record of [first, ...queued]) {
        expect(Option.map(yield* reopened.get(record), encoded)).toEqual(Option.some(encoded(record)))
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a write that fails fails every set waiting on it, and the file keeps what it held", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      const path = `${dir}/tokens.json`
      const initial = makeRecord(freshApp())
      yield* (yield* storeAt(path)).set(initial)
      const gated = yield* gatedFileSystem
      const store = yield* Effect.provide(storeAt(path), gated.layer)
      const first = makeRecord(freshApp())
      const firstSet = yield* Effect.fork(store.set(first))
      yield* gated.entered
      const queued = Array.from({ length: 5 }, () => makeRecord(freshApp()))
      const fibers = yield* Effect.forEach(queued, (record) => Effect.fork(store.set(record)))
      yield* allSuspended(fibers)
      // The disk goes away under the write in flight: it fails, and so does the batch behind it.
      gated.state.failing = true
      yield* gated.open
      const failures = yield* Effect.forEach([firstSet, ...fibers], (fiber) => Effect.flip(Fiber.join(fiber)))
      expect(failures.map((failure) => [failure._tag, failure.operation])).toEqual(
        [first, ...queued].map(() => ["StoreError", "set"])
      )
      expect(failures[0]!.message).toContain("the disk went away")
      expect(yield* fs.readDirectory(dir)).toEqual(["tokens.json"])
      // Nothing of the failed batch is served, by this store or a new one.
      const reopened = yield* storeAt(path)
      expect(Option.map(yield* reopened.get(initial), encoded)).toEqual(Option.some(encoded(initial)))
      for (const record of [first, ...queued]) {
        expect(yield* store.get(record)).toEqual(Option.none())
        expect(yield* reopened.get(record)).toEqual(Option.none())
      }
      // The store is not stuck: the next set is written.
      gated.state.failing = false
      const later = makeRecord(freshApp())
      yield* store.set(later)
      expect(Option.map(yield* reopened.get(later), encoded)).toEqual(Option.some(encoded(later)))
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
