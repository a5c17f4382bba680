/**
 * Secret kinds sealed at rest: the file and Redis stores hold ciphertext,
 * reads answer the value, a value stored in clear by 0.2.0 still reads, and
 * a sealed value moved to another owner's record does not open there.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Option, Redacted } from "effect"
import { Redis } from "ioredis"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as AppId from "../../src/AppId.js"
import { recordKey } from "../../src/internal/redisStore.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import { TokenRecord } from "../../src/Token.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as RedisServer from "../support/redisServer.js"

const KEY = Option.some(Redacted.make("00112233445566778899aabbccddeeff".repeat(2)))
const SECRET_KIND = "authorizer_refresh_token"
const COMPONENT = AppId.make("wx00000000000000c1")
const ownerOf = (n: number) => OwnerId.authorizer(COMPONENT, AppId.make(`wx${n.toString(16).padStart(16, "0")}`))
const REFRESH = "refreshtoken@@@that-mints-tokens-for-months"
const OLD_REFRESH = "refreshtoken@@@written-in-clear-by-0.2.0"

const recordOf = (owner: OwnerId.OwnerId, kind: string, value: string, generation = 1) =>
  new TokenRecord({
    appId: owner,
    kind,
    value,
    mode: "none",
    fetchedAt: 1_750_000_000_000,
    expiresAt: 1_760_000_000_000,
    refreshAt: 1_760_000_000_000,
    generation
  })

const storeOf = (spec: StoreSpec.StoreSpec, encryptionKey = KEY) =>
  Effect.map(
    Layer.build(StoreSpec.layer(spec, { encryptionKey, sealedKinds: [SECRET_KIND] })),
    Context.get(TokenStore.TokenStore)
  )

// What every store keeps: sealed in the backing store, clear to its readers.
const roundTrip = (store: TokenStore.TokenStoreShape, raw: () => Effect.Effect<string>) =>
  Effect.gen(function*() {
    const written = yield* store.set(recordOf(ownerOf(1), SECRET_KIND, REFRESH))
    expect(written.value).toBe(REFRESH)
    yield* store.set(recordOf(ownerOf(1), "authorizer_access_token", "plain-access-token"))
    expect(Option.getOrThrow(yield* store.get({ appId: ownerOf(1), kind: SECRET_KIND })).value).toBe(REFRESH)
    expect((yield* store.list(SECRET_KIND)).map((record) => record.value)).toContain(REFRESH)
    // A store that reads many at once answers them opened too.
    if (store.getMany !== undefined) {
      const many = yield* store.getMany([
        { appId: ownerOf(1), kind: SECRET_KIND },
        { appId: ownerOf(1), kind: "authorizer_access_token" },
        { appId: ownerOf(9), kind: SECRET_KIND }
      ])
      expect(many.map(Option.map((record) => record.value))).toEqual([
        Option.some(REFRESH),
        Option.some("plain-access-token"),
        Option.none()
      ])
    }
    // A losing write answers the held record, opened.
    const held = yield* store.set(recordOf(ownerOf(1), SECRET_KIND, "older", 0))
    expect(held.value).toBe(REFRESH)
    const text = yield* raw()
    expect(text).not.toContain(REFRESH)
    expect(text).toContain("enc1:")
    // Tokens live two hours and are read on every request: not sealed.
    expect(text).toContain("plain-access-token")
  })

describe("sealed store", () => {
  it.scoped("file: refresh tokens sealed on disk, open to readers; 0.2.0's clear values sealed at start, still read", () =>
    Effect.gen(function*() {
      const path = NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "sealed-")), "tokens.json")
      // A store written by 0.2.0: no key, the value in clear.
      const plain = yield* storeOf({ _tag: "File", path }, Option.none())
      yield* plain.set(recordOf(ownerOf(2), SECRET_KIND, OLD_REFRESH))
      expect(readFileSync(path, "utf8")).toContain(OLD_REFRESH)
      // Sealed when a store with the key opens it, and still read.
      const store = yield* storeOf({ _tag: "File", path })
      expect(readFileSync(path, "utf8")).not.toContain(OLD_REFRESH)
      expect(Option.getOrThrow(yield* store.get({ appId: ownerOf(2), kind: SECRET_KIND })).value).toBe(OLD_REFRESH)
      yield* roundTrip(store, () => Effect.sync(() => readFileSync(path, "utf8")))
    }))

  it.scoped("redis: refresh tokens sealed in Redis; a sealed value moved to another owner does not open", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeOf({ _tag: "Redis", url: server.url })
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(server.url)),
        (client) => Effect.sync(() => client.disconnect())
      )
      const dump = () =>
        Effect.promise(async () => {
          const keys = await client.keys("wechat-token:*")
          return (await Promise.all(keys.map((key) => client.get(key).catch(() => "")))).join("\n")
        })
      expect(store.getMany).toBeDefined()
      yield* roundTrip(store, dump)
      // Someone with write access to Redis copies one authorizer's sealed token to another.
      const sealed = yield* Effect.promise(() => client.get(recordKey({ appId: ownerOf(1), kind: SECRET_KIND })))
      const moved = JSON.parse(sealed!)
      moved.appId = ownerOf(3)
      yield* Effect.promise(() =>
        client.set(recordKey({ appId: ownerOf(3), kind: SECRET_KIND }), JSON.stringify(moved))
      )
      const refused = yield* Effect.flip(store.get({ appId: ownerOf(3), kind: SECRET_KIND }))
      expect(refused.detail).toContain("does not open with STORE_ENCRYPTION_KEY")
    }))

  it.effect("STORE_ENCRYPTION_KEY must be 64 hex characters; the message never quotes it", () =>
    Effect.gen(function*() {
      const given = "not-a-key-but-maybe-someones-password"
      const error = yield* Effect.flip(
        Effect.withConfigProvider(
          StoreSpec.encryptionKey,
          ConfigProvider.fromMap(new Map([["STORE_ENCRYPTION_KEY", given]]))
        )
      )
      expect(String(error)).toContain("STORE_ENCRYPTION_KEY must be 32 bytes given as 64 hex characters")
      expect(String(error)).not.toContain(given)
      const unset = yield* Effect.withConfigProvider(StoreSpec.encryptionKey, ConfigProvider.fromMap(new Map()))
      expect(unset).toEqual(Option.none())
    }))
})
