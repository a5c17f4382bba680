import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Exit, Layer, Logger, Option, Schedule, Schema, Scope, Stream } from "effect"
import { Redis } from "ioredis"
import * as AppId from "../src/AppId.js"
import type * as OwnerId from "../src/OwnerId.js"
import * as StoreSpec from "../src/StoreSpec.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenStore from "../src/TokenStore.js"
import * as TokenStoreRedis from "../src/TokenStoreRedis.js"
import * as RedisServer from "./support/redisServer.js"

const T0 = 1_750_000_000_000
let apps = 0
const freshApp = (): AppId.AppId => AppId.make(`wx${(++apps).toString(16).padStart(16, "0")}`)
const makeRecord = (appId: OwnerId.OwnerId, generation = 1, kind: TokenRecord["kind"] = "access_token"): TokenRecord =>
  new TokenRecord({
    appId,
    kind,
    value: `token-${appId}-${kind}-${generation}`,
    mode: "stable",
    fetchedAt: T0,
    expiresAt: T0 + 7_200_000,
    refreshAt: T0 + 6_900_000,
    generation
  })
const encoded = Schema.encodeSync(TokenRecord)

interface LogEntry {
  readonly level: string
  readonly message: string
}

/** A logger that keeps what it is given, and the layer installing it. */
const captureLogs = () => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ logLevel, message }) => {
    entries.push({ level: logLevel.label, message: Array.isArray(message) ? message.join(" ") : String(message) })
  })
  return { entries, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const storeAt = (url: string) => Effect.map(Layer.build(TokenStoreRedis.layer(url)), Context.get(TokenStore.TokenStore))

/** A plain client to look at what the store wrote. */
const inspector = (url: string) =>
  Effect.acquireRelease(Effect.sync(() => new Redis(url)), (client) => Effect.sync(() => client.disconnect()))

/** Retries `check` until it holds; connection state changes take a moment to be noticed. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => new Error(`never happened: ${what}`)),
    Effect.retry(Schedule.spaced(Duration.millis(20)).pipe(Schedule.upTo(Duration.seconds(10))))
  )

/** `operation` fails with StoreError, and fast: a caller must never wait on a dead Redis. */
const failsFast = <A, R>(operation: Effect.Effect<A, TokenStore.StoreError, R>) =>
  Effect.gen(function*() {
    const [took, error] = yield* Effect.timed(Effect.flip(operation))
    expect(error._tag).toBe("StoreError")
    expect(Duration.toMillis(took)).toBeLessThan(500)
  })

/** The first change `reader` reports for `appId`, while `writer` keeps writing newer generations. */
const changeArrives = (reader: TokenStore.TokenStoreShape, writer: TokenStore.TokenStoreShape, appId: AppId.AppId) => {
  const seen = reader.changes.pipe(Stream.filter((record) => record.appId === appId), Stream.runHead)
  // Writing repeatedly, and past failures: either connection may still be coming back after a restart.
  let generation = 0
  const keepWriting = Effect.suspend(() => Effect.ignore(writer.set(makeRecord(appId, ++generation)))).pipe(
    Effect.zipRight(Effect.sleep(Duration.millis(100))),
    Effect.forever
  )
  return Effect.race(seen, keepWriting).pipe(Effect.timeout(Duration.seconds(10)))
}

describe("TokenStoreRedis.layer", () => {
  it.scopedLive("keys follow wechat-token:{<appId>}:<kind>[:lease] and values hold only the record's fields", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const appId = freshApp()
      const token = makeRecord(appId, 1)
      const ticket = makeRecord(appId, 2, "jsapi_ticket")
      yield* store.set(token)
      yield* store.set(ticket)
      expect(yield* store.lease(token, 5_000)).toBe(true)

      const redis = yield* inspector(server.url)
      const keys = yield* Effect.promise(() => redis.keys("*"))
      expect(keys.sort()).toEqual(
        [
          `wechat-token:{${appId}}:access_token`,
          `wechat-token:{${appId}}:access_token:lease`,
          `wechat-token:{${appId}}:jsapi_ticket`,
          "wechat-token:mark"
        ]
          .sort()
      )
      for (const record of [token, ticket]) {
        const stored = yield* Effect.promise(() => redis.get(`wechat-token:{${appId}}:${record.kind}`))
        expect(JSON.parse(stored ?? "null")).toEqual(encoded(record))
      }
      const ttl = yield* Effect.promise(() => redis.pttl(`wechat-token:{${appId}}:access_token:lease`))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(5_000)
    }))

  it.scopedLive("changesMark stays put while every write is the store's own or delivered; moves for a missed one and an emptied store", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const [reader, writer] = [yield* storeAt(server.url), yield* storeAt(server.url)]
      const mark = reader.changesMark!
      const appId = freshApp()
      const first = yield* mark
      yield* reader.set(makeRecord(appId, 1))
      // Delivered on `changes`: seen.
      yield* changeArrives(reader, writer, appId)
      expect(yield* mark).toBe(first)
      // Written while nobody here followed `changes`: missed, once.
      yield* writer.set(makeRecord(appId, 100))
      const missed = yield* mark
      expect(missed).toBeGreaterThan(first)
      expect(yield* mark).toBe(missed)
      // Emptied (FLUSHALL, or restarted without its data): the mark moves again.
      const redis = yield* inspector(server.url)
      yield* Effect.promise(() => redis.flushall())
      expect(yield* mark).toBeGreaterThan(missed)
    }))

  it.scopedLive("scripts go by their SHA-1, and a Redis that forgot them (SCRIPT FLUSH, a restart) still takes writes", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const appId = freshApp()
      yield* store.set(makeRecord(appId, 1))
      yield* Effect.promise(() => redis.script("FLUSH"))
      yield* store.set(makeRecord(appId, 2))
      yield* store.set(makeRecord(appId, 3))
      expect(Option.map(yield* store.get({ appId, kind: "access_token" }), (record) => record.generation)).toEqual(
        Option.some(3)
      )
      const stats = yield* Effect.promise(() => redis.info("commandstats"))
      const calls = (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
      // One EVAL after each flush (the first write and the one after SCRIPT FLUSH), EVALSHA for every write.
      expect(calls("eval")).toBe(2)
      expect(calls("evalsha")).toBe(3)
    }))

  it.scopedLive("a miss reads the 0.2.0 key too, until a listing of the kind found none: then one GET", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const gets = Effect.map(
        Effect.promise(() => redis.info("commandstats")),
        (stats) => Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      )
      const start = yield* gets
      yield* store.get({ appId: freshApp(), kind: "access_token" })
      expect((yield* gets) - start).toBe(2)
      yield* store.list("access_token")
      const listed = yield* gets
      yield* store.get({ appId: freshApp(), kind: "access_token" })
      expect((yield* gets) - listed).toBe(1)
      yield* store.get({ appId: freshApp(), kind: "jsapi_ticket" })
      expect((yield* gets) - listed).toBe(3)
    }))

  it.scopedLive("records 0.2.0 wrote without the hash tag are read by get and list, and moved to the tagged key", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const [read, listed, both] = [makeRecord(freshApp(), 4), makeRecord(freshApp(), 5), makeRecord(freshApp(), 6)]
      const legacy = (record: TokenRecord) => `wechat-token:${record.appId}:${record.kind}`
      const tagged = (record: TokenRecord) => `wechat-token:{${record.appId}}:${record.kind}`
      for (const record of [read, listed, both]) {
        yield* Effect.promise(() => redis.set(legacy(record), JSON.stringify(encoded(record))))
      }
      // Written since by this version: the newer tagged record wins over the old one.
      const newer = makeRecord(both.appId, 7)
      yield* store.set(newer)

      expect(Option.map(yield* store.get(read), encoded)).toEqual(Option.some(encoded(read)))
      const all = yield* store.list("access_token")
      expect(all.map((record) => encoded(record)).sort((a, b) => a.generation - b.generation)).toEqual(
        [read, listed, newer].map((record) => encoded(record))
      )
      for (const record of [read, listed]) {
        expect(yield* Effect.promise(() => redis.exists(legacy(record))), record.appId).toBe(0)
        expect(JSON.parse((yield* Effect.promise(() => redis.get(tagged(record)))) ?? "null")).toEqual(encoded(record))
      }
      // A legacy record never overrides a tagged one, even while both exist.
      expect(Option.map(yield* store.get(newer), encoded)).toEqual(Option.some(encoded(newer)))
    }))

  it.scopedLive("a record as 0.2.0 wrote it (no lineage) decodes, and its successor replaces it by generation", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const appId = freshApp()
      const written = `{"appId":"${appId}","kind":"access_token","value":"token-0.2.0","mode":"classic",` +
        `"fetchedAt":${T0},"expiresAt":${T0 + 7_200_000},"refreshAt":${T0 + 6_900_000},"generation":4}`
      yield* Effect.promise(() => redis.set(`wechat-token:${appId}:access_token`, written))
      const read = Option.getOrThrow(yield* store.get({ appId, kind: "access_token" }))
      expect(read.value).toBe("token-0.2.0")
      expect(read.generation).toBe(4)
      expect(read.lineage).toBeUndefined()
      const successor = new TokenRecord({ ...read, value: "token-0.3.0", generation: 5 })
      expect(encoded(yield* store.set(successor))).toEqual(encoded(successor))
    }))

  it.scopedLive("a listing reads the values of each SCAN step with one MGET, skipping what is no record of the kind", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const records = Array.from({ length: 25_000 }, () => makeRecord(freshApp()))
      for (let from = 0; from < records.length; from += 5_000) {
        const pipeline = redis.pipeline()
        for (const record of records.slice(from, from + 5_000)) {
          pipeline.set(`wechat-token:{${record.appId}}:access_token`, JSON.stringify(encoded(record)))
        }
        yield* Effect.promise(() => pipeline.exec())
      }
      const other = makeRecord(freshApp(), 1, "jsapi_ticket")
      yield* Effect.promise(() =>
        redis.pipeline()
          .set(`wechat-token:{${freshApp()}}:access_token`, "not json")
          .set(`wechat-token:{${freshApp()}}:access_token`, JSON.stringify({ ...encoded(other), generation: -1 }))
          .set(`wechat-token:{${other.appId}}:access_token`, JSON.stringify(encoded(other)))
          .hset(`wechat-token:{${freshApp()}}:access_token`, "not", "a string")
          .exec()
      )
      const commands = Effect.map(Effect.promise(() => redis.info("commandstats")), (stats) => ({
        mget: Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0),
        get: Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0),
        scan: Number(/cmdstat_scan:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      }))
      const before = yield* commands
      const listed = yield* store.list("access_token")
      const after = yield* commands
      expect(listed.map((record) => record.value).sort()).toEqual(records.map((record) => record.value).sort())
      expect(listed.every((record) => record instanceof TokenRecord)).toBe(true)
      expect(after.get).toBe(before.get)
      expect(after.mget - before.mget).toBeLessThanOrEqual(after.scan - before.scan)
      // 25,004 keys at 10,000 a step: a few steps, not one per thousand keys.
      expect(after.scan - before.scan).toBeLessThan(10)
    }))

  it.scopedLive("getMany answers what get answers for each key, with one MGET for the batch", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const [held, legacy, malformed] = [makeRecord(freshApp(), 3), makeRecord(freshApp(), 4), makeRecord(freshApp())]
      const absent = makeRecord(freshApp())
      yield* store.set(held)
      yield* Effect.promise(() =>
        redis.pipeline()
          .set(`wechat-token:${legacy.appId}:access_token`, JSON.stringify(encoded(legacy)))
          .set(`wechat-token:{${malformed.appId}}:access_token`, "not json")
          .exec()
      )
      const commands = Effect.map(Effect.promise(() => redis.info("commandstats")), (stats) => ({
        mget: Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0)
      }))
      const before = yield* commands
      const keys = [held, legacy, malformed, absent].map(({ appId, kind }) => ({ appId, kind }))
      const many = yield* store.getMany!(keys)
      expect((yield* commands).mget - before.mget).toBe(1)
      expect(many.map(Option.map(encoded))).toEqual([
        Option.some(encoded(held)),
        Option.some(encoded(legacy)),
        Option.none(),
        Option.none()
      ])
      // The 0.2.0 record was moved, as get moves it; get agrees on every key.
      expect(yield* Effect.promise(() => redis.exists(`wechat-token:${legacy.appId}:access_token`))).toBe(0)
      for (const [index, key] of keys.entries()) {
        expect(Option.map(yield* store.get(key), encoded)).toEqual(Option.map(many[index]!, encoded))
      }
      expect(yield* store.getMany!([])).toEqual([])
    }))

  it.scopedLive("a malformed stored value is absent to get (logged) and overwritten by set", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const logs = captureLogs()
      const store = yield* storeAt(server.url)
      const redis = yield* inspector(server.url)
      const record = makeRecord(freshApp(), 1)
      const key = `wechat-token:{${record.appId}}:access_token`
      for (
        const garbage of ["not json", "{\"value\":\"x\"}", JSON.stringify({ ...encoded(record), generation: "9" })]
      ) {
        yield* Effect.promise(() => redis.set(key, garbage))
        expect(yield* store.get(record).pipe(Effect.provide(logs.layer)), garbage).toEqual(Option.none())
        expect(encoded(yield* store.set(record)), garbage).toEqual(encoded(record))
        expect(Option.map(yield* store.get(record), encoded), garbage).toEqual(Option.some(encoded(record)))
      }
      expect(logs.entries.filter((entry) => entry.level === "WARN").map((entry) => entry.message)).toEqual(
        Array(3).fill("token store holds a malformed record; treating it as absent")
      )
      // A broken value claiming a newer generation is neither trusted nor silently destroyed.
      yield* Effect.promise(() => redis.set(key, JSON.stringify({ generation: 99 })))
      const refused = yield* Effect.flip(store.set(makeRecord(record.appId, 2)))
      expect(refused.message).toContain("malformed")
    }))

  it.scopedLive("Redis down: operations fail fast with StoreError, healthy is false; after a restart all works again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const logs = captureLogs()
      const [store, peer] = yield* Effect.all([storeAt(server.url), storeAt(server.url)]).pipe(
        Effect.provide(logs.layer)
      )
      const record = makeRecord(freshApp(), 1)
      yield* store.set(record)
      expect(yield* store.healthy).toBe(true)

      yield* server.stop
      yield* eventually(Effect.map(store.healthy, (healthy) => !healthy), "healthy turns false")
      yield* failsFast(store.get(record))
      yield* failsFast(store.set(makeRecord(record.appId, 2)))
      yield* failsFast(Effect.scoped(store.lease(record, 1_000)))

      yield* server.start
      // Each instance reconnects on its own schedule.
      yield* eventually(Effect.map(Effect.all([store.healthy, peer.healthy]), ([a, b]) => a && b), "healthy again")
      // The restarted server kept nothing (no persistence): the store starts over.
      expect(yield* store.get(record)).toEqual(Option.none())
      const next = makeRecord(record.appId, 2)
      expect(encoded(yield* store.set(next))).toEqual(encoded(next))
      expect(Option.map(yield* peer.get(next), encoded)).toEqual(Option.some(encoded(next)))
      expect(yield* Effect.scoped(store.lease(next, 1_000))).toBe(true)
      expect(Option.isSome(yield* changeArrives(store, peer, freshApp()))).toBe(true)

      const messages = logs.entries.map((entry) => `${entry.level} ${entry.message}`)
      // The warning names the variable and the address it points at.
      expect(messages).toContainEqual(
        expect.stringMatching(
          /^WARN TOKEN_STORE unreachable at 127\.0\.0\.1:\d+ \(.+\); reconnecting in the background$/
        )
      )
      expect(messages).toContain("INFO token store reconnected")
    }))

  it.scopedLive("starting while Redis is unreachable: the layer is built at once, and connects when Redis appears", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      yield* server.stop
      const logs = captureLogs()
      const [took, [store, peer]] = yield* Effect.timed(Effect.all([storeAt(server.url), storeAt(server.url)])).pipe(
        Effect.provide(logs.layer)
      )
      expect(Duration.toMillis(took)).toBeLessThan(2_500)
      expect(yield* store.healthy).toBe(false)
      expect(logs.entries.map((entry) => `${entry.level} ${entry.message}`)).toEqual(
        Array(2).fill(
          expect.stringMatching(
            /^WARN TOKEN_STORE unreachable at 127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); reconnecting in the background$/
          )
        )
      )
      yield* failsFast(store.get({ appId: freshApp(), kind: "access_token" }))

      yield* server.start
      yield* eventually(store.healthy, "healthy turns true")
      const record = makeRecord(freshApp(), 1)
      yield* store.set(record)
      expect(Option.map(yield* store.get(record), encoded)).toEqual(Option.some(encoded(record)))
      // The subscription queued while offline is made once connected.
      expect(Option.isSome(yield* changeArrives(store, peer, freshApp()))).toBe(true)
    }))

  it.scopedLive("both connections close with the layer's scope", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const redis = yield* inspector(server.url)
      const clients = Effect.map(Effect.promise(() => redis.client("LIST")), (list) =>
        String(list).trim().split("\n").length)
      const scope = yield* Scope.make()
      yield* Effect.flatMap(Scope.extend(storeAt(server.url), scope), (store) =>
        store.set(makeRecord(freshApp())))
      expect(yield* clients).toBe(3)
      yield* Scope.close(scope, Exit.void)
      yield* eventually(Effect.map(clients, (count) => count === 1), "only the inspector remains")
    }))

  it.scopedLive("layerFromSpec honours the database in redis://HOST:PORT/DB", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make
      const spec = Either.getOrThrow(StoreSpec.parse(`${server.url}/3`))
      const record = makeRecord(freshApp())
      yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.set(record)).pipe(
        Effect.provide(StoreSpec.layer(spec))
      )
      const redis = yield* inspector(server.url)
      const key = `wechat-token:{${record.appId}}:access_token`
      expect(yield* Effect.promise(() => redis.exists(key))).toBe(0)
      yield* Effect.promise(() => redis.select(3))
      expect(yield* Effect.promise(() => redis.exists(key))).toBe(1)
    }))
})
