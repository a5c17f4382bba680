import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option, Schema } from "effect"
import * as AppId from "../src/AppId.js"
import * as StoreSpec from "../src/StoreSpec.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenStore from "../src/TokenStore.js"

describe("StoreSpec (TOKEN_STORE)", () => {
  const load = (env: Record<string, string>) =>
    StoreSpec.config.pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
      Effect.either
    )

  it.effect("unset means memory", () =>
    Effect.gen(function*() {
      expect(yield* load({})).toEqual(Either.right({ _tag: "Memory" }))
    }))

  it.effect("reads memory, file:PATH and redis://HOST:PORT[/DB]", () =>
    Effect.gen(function*() {
      expect(yield* load({ TOKEN_STORE: "memory" })).toEqual(Either.right({ _tag: "Memory" }))
      expect(yield* load({ TOKEN_STORE: "file:/var/lib/tokens.json" })).toEqual(
        Either.right({ _tag: "File", path: "/var/lib/tokens.json" })
      )
      expect(yield* load({ TOKEN_STORE: "file:relative/tokens.json" })).toEqual(
        Either.right({ _tag: "File", path: "relative/tokens.json" })
      )
      for (const url of ["redis://127.0.0.1:6379", "redis://redis.internal:6380/2", "redis://localhost:6379/"]) {
        expect(yield* load({ TOKEN_STORE: url })).toEqual(Either.right({ _tag: "Redis", url }))
      }
    }))

  it.effect("bad values name TOKEN_STORE and never echo the value", () =>
    Effect.gen(function*() {
      for (
        const bad of [
          "",
          "memroy",
          "file:",
          "postgres://db:5432",
          "redis://",
          "redis://:hunter2secret@host:6379/zero",
          "redis://host:6379/1?password=hunter2secret"
        ]
      ) {
        const result = yield* load({ TOKEN_STORE: bad })
        expect(Either.isLeft(result), bad).toBe(true)
        const message = Either.isLeft(result) ? String(result.left) : ""
        expect(message).toContain("TOKEN_STORE")
        expect(message).not.toContain("hunter2secret")
      }
    }))

  it.effect("reads rediss://, redis+sentinel:// and redis+cluster:// with users, and refuses malformed ones", () =>
    Effect.gen(function*() {
      for (
        const url of [
          "rediss://tokens:hunter2secret@redis.internal:6380/1",
          "redis+sentinel://s1:26379,s2:26379,[::1]:26379/mymaster",
          "redis+sentinel://tokens:hunter2secret@s1:26379/mymaster/2",
          "redis+cluster://tokens:hunter2secret@n1:7000,n2:7001,n3:7002"
        ]
      ) {
        expect(yield* load({ TOKEN_STORE: url }), url).toEqual(Either.right({ _tag: "Redis", url }))
      }
      for (
        const [bad, reason] of [
          ["redis+sentinel://:hunter2secret@s1:26379", "master's name"],
          ["redis+sentinel://s1:26379/mymaster/x", "database must be a number"],
          ["redis+cluster://:hunter2secret@n1:7000/2", "takes no database"],
          ["rediss://:hunter2secret@a:1,b:2", "one HOST:PORT"],
          ["redis+cluster://:hunter2secret@n1:7000,:7001", "malformed HOST:PORT"]
        ]
      ) {
        const message = String(Either.flip(yield* load({ TOKEN_STORE: bad })).pipe(Either.getOrThrow))
        expect(message, bad).toContain(reason)
        expect(message, bad).not.toContain("hunter2secret")
      }
    }))

  it.effect("REDIS_* variables go with the Redis forms they apply to", () =>
    Effect.gen(function*() {
      const cluster = "redis+cluster://n1:7000"
      expect(yield* load({ TOKEN_STORE: cluster, REDIS_TLS: "true", REDIS_TLS_CA_FILE: "/ca.pem" })).toEqual(
        Either.right({ _tag: "Redis", url: cluster, tls: true, caFile: "/ca.pem" })
      )
      for (
        const [env, reason] of [
          [{ TOKEN_STORE: "redis://h:1", REDIS_TLS_CA_FILE: "/ca.pem" }, "need rediss://"],
          [{ TOKEN_STORE: "redis://:hunter2secret@h:1", REDIS_PASSWORD: "other" }, "set one"],
          [{ TOKEN_STORE: "redis://h:1", REDIS_SENTINEL_PASSWORD: "hunter2secret" }, "needs redis+sentinel://"],
          [{ TOKEN_STORE: "rediss://h:1", REDIS_TLS_CERT_FILE: "/c.pem" }, "go together"]
        ] as const
      ) {
        const message = String(Either.flip(yield* load(env)).pipe(Either.getOrThrow))
        expect(message, reason).toContain(reason)
        expect(message, reason).not.toContain("hunter2secret")
      }
    }))

  it("the parsed spec is a StoreSpec", () => {
    const spec = StoreSpec.parse("file:/tmp/x.json")
    expect(Either.map(spec, Schema.is(StoreSpec.StoreSpec))).toEqual(Either.right(true))
  })

  it.scoped("layer builds the store a spec names", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const path = `${dir}/tokens.json`
      const record = new TokenRecord({
        appId: AppId.make("wx00000000000000a1"),
        kind: "access_token",
        value: "T".repeat(512),
        mode: "stable",
        fetchedAt: 0,
        expiresAt: 7_200_000,
        refreshAt: 6_900_000,
        generation: 1
      })
      const fromSpec = Either.getOrThrow(StoreSpec.parse(`file:${path}`))
      yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.set(record)).pipe(
        Effect.provide(StoreSpec.layer(fromSpec))
      )
      expect(yield* fs.exists(path)).toBe(true)
      const memory = yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.get(record)).pipe(
        Effect.provide(StoreSpec.layer({ _tag: "Memory" }))
      )
      expect(memory).toEqual(Option.none())
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
