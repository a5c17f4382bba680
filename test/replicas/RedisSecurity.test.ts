import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Option, Schema } from "effect"
import { Redis } from "ioredis"
import { readFileSync, writeFileSync } from "node:fs"
import * as AppId from "../../src/AppId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import { TokenRecord } from "../../src/Token.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as RedisServer from "../support/redisServer.js"
import { launchReplica, replicaEnv, upstreams } from "../support/replicas.js"

const PASSWORD = "acl-password-never-logged-0123"
const record = (generation: number) =>
  new TokenRecord({
    appId: AppId.make("wx00000000000000aa"),
    kind: "access_token",
    value: `token-${generation}`,
    mode: "stable",
    fetchedAt: 1_750_000_000_000,
    expiresAt: 1_750_007_200_000,
    refreshAt: 1_750_006_900_000,
    generation
  })
const encoded = Schema.encodeSync(TokenRecord)

/** The store `env` names, as the server builds it. */
const storeFrom = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const spec = yield* StoreSpec.config
    return Context.get(yield* Layer.build(StoreSpec.layer(spec)), TokenStore.TokenStore)
  }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

/** A server process's start-up with `env` against `redisUrl`: the line it stops with. */
const startupLine = (redisUrl: string, env: Record<string, string>) =>
  Effect.gen(function*() {
    const upstream = yield* upstreams(1)
    const launched = yield* launchReplica(0, {
      ...replicaEnv({ upstream: upstream.urlOf(0), redisUrl, mode: "stable" }),
      ...env
    })
    const failed = yield* Effect.flip(launched.ready)
    return failed.message
  })

// An ACL user that may touch only the store's keys and channel.
const ACL_USER = [
  "--user",
  ..."default off".split(" "),
  "--user",
  ..."tokens on >PASSWORD ~wechat-token:* &wechat-token:* +@read +@write +@scripting +@pubsub +@connection +info +scan"
    .replace("PASSWORD", PASSWORD)
    .split(" ")
]

describe("Redis with TLS and ACL users", () => {
  it.scopedLive(
    "rediss:// with REDIS_TLS_CA_FILE reaches a server whose certificate the private CA signed",
    () =>
      Effect.gen(function*() {
        const tls = yield* RedisServer.certificates(["127.0.0.1", "localhost"])
        const server = yield* RedisServer.makeWith({ tls })
        const store = yield* storeFrom({ TOKEN_STORE: server.url, REDIS_TLS_CA_FILE: tls.ca })
        expect(yield* store.healthy).toBe(true)
        expect(encoded(yield* store.set(record(1)))).toEqual(encoded(record(1)))
        expect(Option.map(yield* store.get(record(1)), encoded)).toEqual(Option.some(encoded(record(1))))
      }),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "a server whose certificate does not match its address stops start-up with one line",
    () =>
      Effect.gen(function*() {
        const tls = yield* RedisServer.certificates(["redis.other.example"])
        const server = yield* RedisServer.makeWith({ tls })
        const refused = yield* Effect.flip(storeFrom({ TOKEN_STORE: server.url, REDIS_TLS_CA_FILE: tls.ca }))
        expect(refused.message).toMatch(/TLS certificate was refused .*(altnames|IP)/)

        // The same from a real server process: one line, naming TOKEN_STORE.
        const output = yield* startupLine(server.url, { REDIS_TLS_CA_FILE: tls.ca })
        const lines = output.split("\n").filter((line) => line.trim() !== "").slice(1)
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(
          /^cannot start: TOKEN_STORE: token store open failed: the Redis server's TLS certificate was refused/
        )
      }),
    { timeout: 60_000 }
  )

  it.scopedLive("a certificate from another CA is refused too", () =>
    Effect.gen(function*() {
      const tls = yield* RedisServer.certificates(["127.0.0.1"])
      const other = yield* RedisServer.certificates(["127.0.0.1"])
      const server = yield* RedisServer.makeWith({ tls })
      const refused = yield* Effect.flip(storeFrom({ TOKEN_STORE: server.url, REDIS_TLS_CA_FILE: other.ca }))
      expect(refused.message).toContain("TLS certificate was refused")
    }), { timeout: 30_000 })

  it.scopedLive(
    "an ACL user limited to the store's key prefix works, from the URL or REDIS_PASSWORD_FILE",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.makeWith({ args: ACL_USER })
        const address = server.url.slice("redis://".length)
        const fromUrl = yield* storeFrom({ TOKEN_STORE: `redis://tokens:${PASSWORD}@${address}` })
        yield* fromUrl.set(record(1))
        const dir = server.dir
        const passwordFile = `${dir}/redis-password`
        yield* Effect.sync(() => writeFileSync(passwordFile, `${PASSWORD}\n`))
        const fromFile = yield* storeFrom({
          TOKEN_STORE: `redis://tokens@${address}`,
          REDIS_PASSWORD_FILE: passwordFile
        })
        expect(Option.map(yield* fromFile.get(record(1)), encoded)).toEqual(Option.some(encoded(record(1))))
        expect(encoded(yield* fromFile.set(record(2)))).toEqual(encoded(record(2)))
        expect(yield* Effect.scoped(fromFile.lease(record(2), 1_000))).toBe(true)
        expect((yield* fromFile.list("access_token")).map((held) => held.generation)).toEqual([2])

        // The user really is limited: a key outside the prefix is refused.
        const limited = yield* Effect.acquireRelease(
          Effect.sync(() => new Redis(`redis://tokens:${PASSWORD}@${address}`)),
          (client) => Effect.sync(() => client.disconnect())
        )
        const outside = yield* Effect.flip(Effect.tryPromise(() => limited.set("other:key", "x")))
        expect(String(outside.cause)).toContain("NOPERM")
        expect(readFileSync(passwordFile, "utf8")).toBe(`${PASSWORD}\n`)
      }),
    { timeout: 30_000 }
  )

  it.scopedLive("a wrong password stops start-up with one line that does not quote it", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.makeWith({ args: ACL_USER })
      const url = `redis://tokens:wrong-password-0123@${server.url.slice("redis://".length)}`
      const refused = yield* Effect.flip(storeFrom({ TOKEN_STORE: url }))
      expect(refused.message).toMatch(/refused the user or password \(WRONGPASS/)
      expect(refused.message).not.toContain("wrong-password-0123")

      const output = yield* startupLine(url, {})
      const lines = output.split("\n").filter((line) => line.trim() !== "").slice(1)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /^cannot start: TOKEN_STORE: token store open failed: Redis refused the user or password/
      )
      expect(output).not.toContain("wrong-password-0123")
    }), { timeout: 60_000 })
})
