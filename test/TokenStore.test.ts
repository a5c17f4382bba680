import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import * as AppId from "../src/AppId.js"
import * as OwnerId from "../src/OwnerId.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenStore from "../src/TokenStore.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"
import * as TokenStoreRedis from "../src/TokenStoreRedis.js"
import * as RedisServer from "./support/redisServer.js"

const T0 = 1_750_000_000_000
let apps = 0

/** A fresh app per test, so tests sharing one store never see each other's records. */
const freshApp = (): AppId.AppId => AppId.make(`wx${(++apps).toString(16).padStart(16, "0")}`)

/** A fresh WeCom corp per test: its apps are owners `corpid/agent`. */
const freshCorp = (): OwnerId.CorpId =>
  Schema.decodeSync(OwnerId.CorpId)(`ww${(++apps).toString(16).padStart(16, "0")}`)
const agentOf = (corp: OwnerId.CorpId, agent: string) => OwnerId.weCom(corp, Schema.decodeSync(OwnerId.AgentKey)(agent))

const makeRecord = (
  appId: OwnerId.OwnerId,
  overrides: Partial<ConstructorParameters<typeof TokenRecord>[0]> = {}
): TokenRecord => {
  const generation = overrides.generation ?? 1
  return new TokenRecord({
    appId,
    kind: "access_token",
    // WeChat reserves at least 512 characters for a token.
    value: `${"T".repeat(512)}-${appId}-${generation}`,
    mode: "stable",
    fetchedAt: T0,
    expiresAt: T0 + 7_200_000,
    refreshAt: T0 + 6_900_000,
    generation,
    ...overrides
  })
}

const encoded = Schema.encodeSync(TokenRecord)

interface Behaviour {
  /** A shared store keeps a second lease out while the first is held; a single-process store grants every lease. */
  readonly exclusiveLease: boolean
  /** A shared store tells one instance about another's writes; a single-process store's `changes` is empty. */
  readonly announcesChanges: boolean
}

/**
 * The contract every store honours. `store` is built afresh wherever a test
 * needs an instance; `environment` is built once for the block (a temporary
 * directory, a redis-server).
 */
const conformance = <R, E>(
  name: string,
  store: Layer.Layer<TokenStore.TokenStore, TokenStore.StoreError, R>,
  environment: Layer.Layer<R, E>,
  behaviour: Behaviour
) =>
  layer(environment, { excludeTestServices: true, timeout: Duration.seconds(30) })(name, (it) => {
    const instance = Effect.map(Layer.build(store), Context.get(TokenStore.TokenStore))
    const leaseIn = (
      scope: Scope.Scope,
      store: TokenStore.TokenStoreShape,
      key: TokenStore.RecordKey,
      millis: number
    ) => Scope.extend(store.lease(key, millis), scope)

    it.scoped("get on an empty store answers none", () =>
      Effect.gen(function*() {
        const store = yield* instance
        expect(yield* store.get({ appId: freshApp(), kind: "access_token" })).toEqual(Option.none())
        expect(yield* store.healthy).toBe(true)
      }))

    it.scoped("set then get answers the same record, every field intact", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const record = makeRecord(freshApp(), {
          kind: "jsapi_ticket",
          mode: "classic",
          fetchedAt: T0 + 1,
          expiresAt: T0 + 7_200_001,
          refreshAt: T0 + 6_600_123,
          generation: 7
        })
        const written = yield* store.set(record)
        expect(encoded(written)).toEqual(encoded(record))
        const read = yield* store.get(record)
        expect(Option.isSome(read)).toBe(true)
        const held = Option.getOrThrow(read)
        expect(held).toBeInstanceOf(TokenRecord)
        expect(encoded(held)).toEqual(encoded(record))
      }))

    it.scoped("compare-and-set: an older or equal generation loses and the winner is answered", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const appId = freshApp()
        const second = makeRecord(appId, { generation: 2 })
        expect(encoded(yield* store.set(second))).toEqual(encoded(second))
        const older = makeRecord(appId, { generation: 1, value: "older" })
        expect(encoded(yield* store.set(older))).toEqual(encoded(second))
        const equal = makeRecord(appId, { generation: 2, value: "same-generation-other-value" })
        expect(encoded(yield* store.set(equal))).toEqual(encoded(second))
        expect(Option.map(yield* store.get(second), encoded)).toEqual(Option.some(encoded(second)))
        const third = makeRecord(appId, { generation: 3 })
        expect(encoded(yield* store.set(third))).toEqual(encoded(third))
        expect(Option.map(yield* store.get(second), encoded)).toEqual(Option.some(encoded(third)))
      }))

    it.scoped("compare-and-set across lineages (the store lost its data): the later fetch wins, beyond CLOCK_SKEW", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const appId = freshApp()
        const skew = Duration.toMillis(TokenStore.CLOCK_SKEW)
        // The replicas' line: generation 5, fetched at T0.
        const kept = makeRecord(appId, { generation: 5, lineage: "line-a", fetchedAt: T0 })
        yield* store.set(kept)
        // A new line counts from 1 again: within the skew nobody can say which fetch came last; the store keeps its own.
        const close = makeRecord(appId, { generation: 1, lineage: "line-b", fetchedAt: T0 + skew, value: "close" })
        expect(encoded(yield* store.set(close))).toEqual(encoded(kept))
        // Fetched later than that: it replaces the higher generation of the other line.
        const later = makeRecord(appId, { generation: 1, lineage: "line-b", fetchedAt: T0 + skew + 1, value: "later" })
        expect(encoded(yield* store.set(later))).toEqual(encoded(later))
        // A replica writing back its memory of the old line loses, whatever its generation.
        const stale = makeRecord(appId, { generation: 6, lineage: "line-a", fetchedAt: T0 + 1, value: "stale" })
        expect(encoded(yield* store.set(stale))).toEqual(encoded(later))
        // Within the new line, generations decide again, whatever the fetch times.
        const next = makeRecord(appId, { generation: 2, lineage: "line-b", fetchedAt: T0, value: "next" })
        expect(encoded(yield* store.set(next))).toEqual(encoded(next))
        expect(Option.map(yield* store.get(kept), encoded)).toEqual(Option.some(encoded(next)))
      }))

    it.scoped("a 0.2.0 record (no lineage) is read as written and replaced by its successors", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const appId = freshApp()
        const legacy = makeRecord(appId, { generation: 3 })
        expect(Object.keys(encoded(legacy))).not.toContain("lineage")
        yield* store.set(legacy)
        expect(Option.map(yield* store.get(legacy), encoded)).toEqual(Option.some(encoded(legacy)))
        // The engine's successor keeps the (absent) lineage: generations decide.
        const successor = makeRecord(appId, { generation: 4, fetchedAt: T0 - 1 })
        expect(encoded(yield* store.set(successor))).toEqual(encoded(successor))
      }))

    it.scoped("list answers every record of a kind, authorizer owners and tombstones included, nothing else", () =>
      Effect.gen(function*() {
        const store = yield* instance
        // A kind of this test only: the environment may be shared with other tests.
        const kind = `listed_${++apps}`
        const component = freshApp()
        const authorizers = [freshApp(), freshApp(), freshApp()].map((app) => OwnerId.authorizer(component, app))
        for (const [index, owner] of authorizers.entries()) {
          yield* store.set(
            makeRecord(owner, { kind, value: `refresh-${index}`, retired: index === 2 ? true : undefined })
          )
          yield* store.set(makeRecord(owner, { kind: `${kind}_other` }))
        }
        const listed = yield* store.list(kind)
        expect(listed.map((record) => record.appId).sort()).toEqual([...authorizers].sort())
        expect(listed.every((record) => record instanceof TokenRecord && record.kind === kind)).toBe(true)
        expect(listed.filter((record) => record.retired === true).map((record) => record.appId)).toEqual([
          authorizers[2]
        ])
        expect(yield* store.list(`${kind}_none`)).toEqual([])
      }))

    it.scoped("records are independent per app and per kind", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const [a, b] = [freshApp(), freshApp()]
        const records = [
          makeRecord(a, { kind: "access_token", value: "a-token" }),
          makeRecord(a, { kind: "jsapi_ticket", value: "a-ticket", generation: 5 }),
          makeRecord(a, { kind: "wx_card_ticket", value: "a-card" }),
          makeRecord(b, { kind: "access_token", value: "b-token", generation: 9 })
        ]
        for (const record of records) yield* store.set(record)
        for (const record of records) {
          expect(Option.map(yield* store.get(record), encoded)).toEqual(Option.some(encoded(record)))
        }
        expect(yield* store.get({ appId: b, kind: "jsapi_ticket" })).toEqual(Option.none())
      }))

    it.scoped("WeCom owners (corpid/agent): one record per agent of a corp, apart from app ids and from each other", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const corp = freshCorp()
        const [agent, contacts, other] = [agentOf(corp, "1000002"), agentOf(corp, "contacts"), agentOf(corp, "1000003")]
        const records = [
          makeRecord(agent, { kind: "wecom_access_token", value: "agent-token", generation: 2 }),
          makeRecord(agent, { kind: "wecom_agent_ticket", value: "agent-ticket" }),
          makeRecord(contacts, { kind: "wecom_access_token", value: "contacts-token", generation: 4 })
        ]
        for (const record of records) expect(encoded(yield* store.set(record))).toEqual(encoded(record))
        for (const record of records) {
          const held = Option.getOrThrow(yield* store.get(record))
          expect(held.appId).toBe(record.appId)
          expect(encoded(held)).toEqual(encoded(record))
        }
        expect(yield* store.get({ appId: other, kind: "wecom_access_token" })).toEqual(Option.none())
        // The compare-and-set rule holds per agent as for an app.
        const older = makeRecord(agent, { kind: "wecom_access_token", value: "older", generation: 1 })
        expect((yield* store.set(older)).value).toBe("agent-token")
      }))

    it.scoped("claim: true the first time, false while it holds, true again once lapsed", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const key = `push:${freshApp()}:${"a".repeat(40)}`
        expect(yield* store.isClaimed(key)).toBe(false)
        expect(yield* store.claim(key, 200)).toBe(true)
        expect(yield* store.isClaimed(key)).toBe(true)
        expect(yield* store.claim(key, 200)).toBe(false)
        expect(yield* store.isClaimed(`${key}-other`)).toBe(false)
        expect(yield* store.claim(`${key}-other`, 10_000)).toBe(true)
        yield* Effect.sleep(Duration.millis(350))
        expect(yield* store.isClaimed(key)).toBe(false)
        expect(yield* store.claim(key, 10_000)).toBe(true)
      }))

    it.scoped("changesMark stays put over the instance's own writes", () =>
      Effect.gen(function*() {
        const store = yield* instance
        const appId = freshApp()
        const before = yield* store.changesMark!
        yield* store.set(makeRecord(appId, { generation: 1 }))
        yield* store.set(makeRecord(appId, { generation: 2 }))
        expect(yield* store.changesMark!).toBe(before)
      }))

    if (behaviour.exclusiveLease) {
      it.scoped("a claim taken through one instance holds for every other instance", () =>
        Effect.gen(function*() {
          const [one, two] = [yield* instance, yield* instance]
          const key = `push:${freshApp()}:${"b".repeat(40)}`
          expect(yield* one.claim(key, 10_000)).toBe(true)
          expect(yield* two.isClaimed(key)).toBe(true)
          expect(yield* two.claim(key, 10_000)).toBe(false)
        }))

      it.scoped("a held lease keeps others out until its scope closes", () =>
        Effect.gen(function*() {
          const [one, two] = [yield* instance, yield* instance]
          const key = { appId: freshApp(), kind: "access_token" } as const
          const first = yield* Scope.make()
          expect(yield* leaseIn(first, one, key, 10_000)).toBe(true)
          expect(yield* Effect.scoped(two.lease(key, 10_000))).toBe(false)
          // The same instance is no exception: each lease has its own owner.
          expect(yield* Effect.scoped(one.lease(key, 10_000))).toBe(false)
          yield* Scope.close(first, Exit.void)
          expect(yield* Effect.scoped(two.lease(key, 10_000))).toBe(true)
        }))

      it.scoped("a lease lapses after leaseMillis, and its late release spares the next holder", () =>
        Effect.gen(function*() {
          const [one, two, three] = [yield* instance, yield* instance, yield* instance]
          const key = { appId: freshApp(), kind: "access_token" } as const
          const lapsing = yield* Scope.make()
          expect(yield* leaseIn(lapsing, one, key, 200)).toBe(true)
          expect(yield* Effect.scoped(two.lease(key, 200))).toBe(false)
          yield* Effect.sleep(Duration.millis(350))
          const next = yield* Scope.make()
          expect(yield* leaseIn(next, two, key, 10_000)).toBe(true)
          // The first holder (think: a paused process) closes its scope late.
          yield* Scope.close(lapsing, Exit.void)
          expect(yield* Effect.scoped(three.lease(key, 10_000))).toBe(false)
          yield* Scope.close(next, Exit.void)
          expect(yield* Effect.scoped(three.lease(key, 10_000))).toBe(true)
        }))
    } else {
      it.scoped("lease always grants: one process's single-flight is the engine's", () =>
        Effect.gen(function*() {
          const store = yield* instance
          const key = { appId: freshApp(), kind: "access_token" } as const
          const held = yield* Scope.make()
          expect(yield* leaseIn(held, store, key, 200)).toBe(true)
          expect(yield* Effect.scoped(store.lease(key, 200))).toBe(true)
          yield* Scope.close(held, Exit.void)
        }))
    }

    if (behaviour.announcesChanges) {
      it.scoped("changes delivers records written by another instance, not its own", () =>
        Effect.gen(function*() {
          const [writer, reader] = [yield* instance, yield* instance]
          const [own, other] = [freshApp(), freshApp()]
          const seen = yield* reader.changes.pipe(
            Stream.filter((record) => record.appId === own || record.appId === other),
            Stream.take(1),
            Stream.runCollect,
            Effect.fork
          )
          // Let the stream register its listener before anything is published.
          yield* Effect.sleep(Duration.millis(100))
          yield* reader.set(makeRecord(own))
          const written = makeRecord(other, { generation: 4 })
          yield* writer.set(written)
          const delivered = yield* Fiber.join(seen).pipe(Effect.timeout(Duration.seconds(5)))
          expect([...delivered].map((record) => encoded(record))).toEqual([encoded(written)])
        }))
    } else {
      it.scoped("changes is empty: no other process shares this store", () =>
        Effect.gen(function*() {
          const [writer, reader] = [yield* instance, yield* instance]
          yield* writer.set(makeRecord(freshApp()))
          const delivered = yield* Stream.runCollect(reader.changes.pipe(Stream.interruptAfter(Duration.millis(50))))
          expect(delivered.length).toBe(0)
        }))
    }
  })

class TempDir extends Context.Tag("test/TempDir")<TempDir, string>() {}

const tempDir = Layer.scoped(
  TempDir,
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "token-store-" }))
).pipe(Layer.provideMerge(NodeFileSystem.layer))

conformance("TokenStore.layerMemory", TokenStore.layerMemory, Layer.empty, {
  exclusiveLease: false,
  announcesChanges: false
})

conformance(
  "TokenStoreFile.layer",
  Layer.unwrapEffect(Effect.map(TempDir, (dir) => TokenStoreFile.layer(`${dir}/tokens.json`))),
  tempDir,
  { exclusiveLease: false, announcesChanges: false }
)

conformance(
  "TokenStoreRedis.layer",
  Layer.unwrapEffect(Effect.map(RedisServer.RedisServer, (server) => TokenStoreRedis.layer(server.url))),
  RedisServer.layer,
  { exclusiveLease: true, announcesChanges: true }
)
