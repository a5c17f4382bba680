/**
 * `StoreDocuments` on every store: compare-and-set by version, no lost
 * update between racing writers, and announcements reaching the other
 * instances (Redis: another connection; file: another writer of the file).
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Fiber, Layer, Option, Stream } from "effect"
import { Redis } from "ioredis"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as FileDocuments from "../src/internal/fileDocuments.js"
import { documentKey } from "../src/internal/redisDocuments.js"
import * as StoreDocuments from "../src/StoreDocuments.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"
import * as TokenStoreRedis from "../src/TokenStoreRedis.js"
import * as RedisServer from "./support/redisServer.js"

const documentsOf = <E>(layer: Layer.Layer<StoreDocuments.StoreDocuments, E>) =>
  Effect.map(Layer.build(layer), Context.get(StoreDocuments.StoreDocuments))

const filePath = () => NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "documents-")), "tokens.json")

// The contract every store keeps.
const contract = (documents: StoreDocuments.StoreDocumentsShape) =>
  Effect.gen(function*() {
    expect(yield* documents.get("registry")).toEqual(Option.none())
    expect(yield* documents.swap("registry", 0, "one")).toBe(true)
    expect(yield* documents.swap("registry", 0, "stale")).toBe(false)
    expect(yield* documents.get("registry")).toEqual(Option.some({ version: 1, body: "one" }))
    // Racing writers at the same version: exactly one wins, the others see it and may retry.
    const wins = yield* Effect.forEach(
      ["a", "b", "c", "d", "e", "f"],
      (body) => documents.swap("registry", 1, body),
      { concurrency: "unbounded" }
    )
    expect(wins.filter(Boolean)).toHaveLength(1)
    const held = Option.getOrThrow(yield* documents.get("registry"))
    expect(held.version).toBe(2)
    expect(["a", "b", "c", "d", "e", "f"][wins.indexOf(true)]).toBe(held.body)
    // Names are file names and key segments: nothing else is accepted.
    const refused = yield* Effect.flip(documents.swap("../escape", 0, "x"))
    expect(refused._tag).toBe("StoreError")
  })

describe("StoreDocuments", () => {
  it.scoped("memory: compare-and-set by version", () => Effect.flatMap(StoreDocuments.makeMemory, contract))

  it.scoped("file: compare-and-set by version, files of mode 0600 beside the store", () =>
    Effect.gen(function*() {
      const path = filePath()
      const documents = yield* documentsOf(TokenStoreFile.layerNode(path))
      yield* contract(documents)
      const { statSync } = yield* Effect.promise(() => import("node:fs"))
      const file = NodePath.join(FileDocuments.directoryOf(path), "registry.json")
      expect(statSync(file).mode & 0o777).toBe(0o600)
      // A second store on the same path (a restart) reads what the first wrote.
      const again = yield* documentsOf(TokenStoreFile.layerNode(path))
      expect(Option.getOrThrow(yield* again.get("registry")).version).toBe(2)
    }))

  // Real time: the directory is polled on the clock.
  it.scopedLive(
    "file: a document changed by someone else is announced; its own writes are not",
    () =>
      Effect.gen(function*() {
        const path = filePath()
        const documents = yield* FileDocuments.make(path).pipe(Effect.provide(NodeFileSystem.layer))
        const heard = yield* documents.changed.pipe(Stream.take(1), Stream.runCollect, Effect.fork)
        yield* documents.swap("ours", 0, "written here")
        // An operator restoring a backup of another document.
        writeFileSync(
          NodePath.join(FileDocuments.directoryOf(path), "restored.json"),
          JSON.stringify({ version: 7, body: "from a backup" })
        )
        expect(Chunk.toReadonlyArray(yield* Fiber.join(heard))).toEqual(["restored"])
      }),
    15_000
  )

  it.scoped("file: a document that is not one fails its reads with a StoreError", () =>
    Effect.gen(function*() {
      const path = filePath()
      const documents = yield* FileDocuments.make(path).pipe(Effect.provide(NodeFileSystem.layer))
      yield* documents.swap("registry", 0, "x")
      writeFileSync(NodePath.join(FileDocuments.directoryOf(path), "registry.json"), "{ not json")
      const error = yield* Effect.flip(documents.get("registry"))
      expect(error.detail).toContain("is not a document")
      expect(yield* Effect.flip(documents.swap("registry", 1, "y"))).toMatchObject({ _tag: "StoreError" })
    }))

  it.scoped("redis: compare-and-set by version, announced to the other replicas", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const one = yield* documentsOf(TokenStoreRedis.layer(server.url))
      const other = yield* documentsOf(TokenStoreRedis.layer(server.url))
      const heard = yield* other.changed.pipe(
        Stream.filter((name) => name !== StoreDocuments.ALL),
        Stream.take(2),
        Stream.runCollect,
        Effect.fork
      )
      yield* contract(one)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(heard))).toEqual(["registry", "registry"])
      expect(Option.getOrThrow(yield* other.get("registry")).version).toBe(2)
    }))

  it.scoped("redis: a key that does not hold a document is refused, never overwritten", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const documents = yield* documentsOf(TokenStoreRedis.layer(server.url))
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(server.url)),
        (client) => Effect.sync(() => client.disconnect())
      )
      yield* Effect.promise(() => client.set(documentKey("registry"), "someone else's"))
      expect((yield* Effect.flip(documents.get("registry"))).detail).toContain("does not hold a document")
      expect((yield* Effect.flip(documents.swap("registry", 0, "x"))).detail).toContain("does not hold a document")
      expect(yield* Effect.promise(() => client.get(documentKey("registry")))).toBe("someone else's")
    }))
})
