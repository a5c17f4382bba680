/**
 * The run-time registry: sealed at rest, changed by compare-and-set without
 * lost updates, seen by every replica on the same store, intact across a
 * restart, and refused whole when the key does not open it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Fiber, Layer, Option, Redacted, Stream } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as AppId from "../src/AppId.js"
import * as CredentialRegistry from "../src/CredentialRegistry.js"
import * as FileDocuments from "../src/internal/fileDocuments.js"
import * as OwnerId from "../src/OwnerId.js"
import * as StoreDocuments from "../src/StoreDocuments.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"
import * as TokenStoreRedis from "../src/TokenStoreRedis.js"
import * as RedisServer from "./support/redisServer.js"

const KEY = Redacted.make("0123456789abcdef".repeat(4))
const OTHER_KEY = Redacted.make("fedcba9876543210".repeat(4))
const SECRET = "app-secret-that-must-never-be-stored-in-clear"
const appOf = (n: number) => AppId.make(`wx${n.toString(16).padStart(16, "0")}`)

const withApp = (n: number, secret = SECRET) => (registry: CredentialRegistry.Registry) =>
  Either.right(
    [
      undefined,
      {
        ...registry,
        apps: new Map(registry.apps).set(appOf(n), {
          appId: appOf(n),
          secret: Redacted.make(secret),
          mode: "stable" as const,
          updatedAt: 1
        })
      }
    ] as const
  )

const registryOn = (documents: Layer.Layer<StoreDocuments.StoreDocuments, unknown>, key = KEY) =>
  Effect.map(
    Layer.build(CredentialRegistry.layer(key).pipe(Layer.provide(documents))),
    Context.get(CredentialRegistry.CredentialRegistry)
  )

describe("CredentialRegistry", () => {
  it.scoped("keeps secrets sealed in the store and open in memory", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      const layer = Layer.succeed(StoreDocuments.StoreDocuments, documents)
      const registry = yield* registryOn(layer)
      yield* registry.update(withApp(1))
      const held = yield* registry.current
      expect(held.version).toBe(1)
      expect(Redacted.value(held.apps.get(appOf(1))!.secret)).toBe(SECRET)
      const stored = Option.getOrThrow(yield* documents.get("registry"))
      expect(stored.body).not.toContain(SECRET)
      expect(stored.body).toContain("enc1:")
      // Another instance (a restart) opens what the first sealed.
      const again = yield* registryOn(layer)
      expect(Redacted.value((yield* again.current).apps.get(appOf(1))!.secret)).toBe(SECRET)
    }))

  it.scoped("a change refused by its function stores nothing", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      const registry = yield* registryOn(Layer.succeed(StoreDocuments.StoreDocuments, documents))
      const refused = yield* Effect.flip(registry.update(() => Either.left("secret rejected by WeChat (40125)")))
      expect(refused).toBe("secret rejected by WeChat (40125)")
      expect(yield* documents.get("registry")).toEqual(Option.none())
    }))

  it.scoped("a wrong or malformed STORE_ENCRYPTION_KEY stops it with one line that holds no secret", () =>
    Effect.gen(function*() {
      const documents = Layer.succeed(StoreDocuments.StoreDocuments, yield* StoreDocuments.makeMemory)
      yield* Effect.flatMap(registryOn(documents), (registry) => registry.update(withApp(1)))
      const wrong = yield* Effect.flip(registryOn(documents, OTHER_KEY))
      expect(wrong).toMatchObject({ _tag: "StoreError" })
      expect((wrong as { detail: string }).detail).toContain("does not open with STORE_ENCRYPTION_KEY")
      expect(JSON.stringify(wrong)).not.toContain(SECRET)
      expect(JSON.stringify(wrong)).not.toContain(Redacted.value(OTHER_KEY))
      const malformed = yield* Effect.flip(registryOn(documents, Redacted.make("too-short")))
      expect((malformed as { detail: string }).detail).toBe(
        "STORE_ENCRYPTION_KEY must be 32 bytes given as 64 hex characters"
      )
    }))

  it.scoped("a sealed secret moved to another entry does not open there", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      const layer = Layer.succeed(StoreDocuments.StoreDocuments, documents)
      const registry = yield* registryOn(layer)
      yield* registry.update(withApp(1, "secret-one"))
      yield* registry.update(withApp(2, "secret-two"))
      const stored = Option.getOrThrow(yield* documents.get("registry"))
      const body = JSON.parse(stored.body)
      body.apps[appOf(2)].secret = body.apps[appOf(1)].secret
      expect(yield* documents.swap("registry", stored.version, JSON.stringify(body))).toBe(true)
      const refused = yield* Effect.flip(registryOn(layer))
      expect((refused as { detail: string }).detail).toContain(`app:${appOf(2)}:secret`)
    }))

  it.effect("keeps the last AUDIT_LIMIT audit entries", () =>
    Effect.sync(() => {
      let registry: CredentialRegistry.Registry = {
        version: 0,
        apps: new Map(),
        agents: new Map(),
        components: new Map(),
        keys: new Map(),
        audit: []
      }
      for (let at = 0; at < CredentialRegistry.AUDIT_LIMIT + 5; at++) {
        registry = CredentialRegistry.audited(registry, { at, actor: "admin", action: "put-app", outcome: "ok" })
      }
      expect(registry.audit).toHaveLength(CredentialRegistry.AUDIT_LIMIT)
      expect(registry.audit[0]!.at).toBe(5)
    }))

  it.effect("keys: 256 random bits, kept by hash", () =>
    Effect.gen(function*() {
      const one = yield* CredentialRegistry.generateKey
      const two = yield* CredentialRegistry.generateKey
      expect(Redacted.value(one.key)).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(Redacted.value(one.key)).not.toBe(Redacted.value(two.key))
      expect(CredentialRegistry.hashKey(one.key)).toMatch(/^[0-9a-f]{64}$/)
      expect(CredentialRegistry.hashKey(one.key)).not.toContain(Redacted.value(one.key))
    }))

  it.scoped("file: intact across a restart, no secret in the files", () =>
    Effect.gen(function*() {
      const path = NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "registry-")), "tokens.json")
      const first = yield* registryOn(TokenStoreFile.layerNode(path))
      yield* first.update(withApp(1))
      yield* first.update((registry) =>
        Either.right(
          [undefined, {
            ...registry,
            agents: new Map(registry.agents).set(
              OwnerId.weCom(OwnerId.CorpId.make("ww0123456789abcdef"), OwnerId.AgentKey.make("1000002")),
              {
                id: OwnerId.weCom(OwnerId.CorpId.make("ww0123456789abcdef"), OwnerId.AgentKey.make("1000002")),
                secret: Redacted.make(`${SECRET}-wecom`),
                updatedAt: 2
              }
            )
          }] as const
        )
      )
      const text = readFileSync(NodePath.join(FileDocuments.directoryOf(path), "registry.json"), "utf8")
      expect(text).not.toContain(SECRET)
      const restarted = yield* registryOn(TokenStoreFile.layerNode(path))
      const held = yield* restarted.current
      expect([held.version, held.apps.size, held.agents.size]).toEqual([2, 1, 1])
    }))

  // Real time: replicas learn of changes over Redis's channel.
  it.scopedLive("redis: every replica sees each change, and concurrent changes are all kept", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const replicas = yield* Effect.forEach([0, 1, 2], () => registryOn(TokenStoreRedis.layer(server.url)))
      const [a, b, c] = replicas as [
        CredentialRegistry.CredentialRegistryShape,
        CredentialRegistry.CredentialRegistryShape,
        CredentialRegistry.CredentialRegistryShape
      ]
      const seenByC = yield* c.changes.pipe(
        Stream.filter((registry) => registry.apps.has(appOf(1))),
        Stream.take(1),
        Stream.runCollect,
        Effect.fork
      )
      yield* a.update(withApp(1))
      const [seen] = Chunk.toReadonlyArray(yield* Fiber.join(seenByC).pipe(Effect.timeout("2 seconds")))
      expect(Redacted.value(seen!.apps.get(appOf(1))!.secret)).toBe(SECRET)
      // Twenty changes at once from two replicas: none lost.
      yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i + 10),
        (n) => (n % 2 === 0 ? a : b).update(withApp(n)),
        { concurrency: "unbounded" }
      )
      const final = yield* b.update((registry) => Either.right([registry, registry] as const))
      expect(final.apps.size).toBe(21)
    }))
})
