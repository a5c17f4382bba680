/**
 * Pushed authorization codes live in the store's `authorization-codes`
 * document, not among the token records: a code pushed and not yet
 * exchanged survives a restart (Redis here; the file store in a real
 * process, `test/reliability/ComponentCrash.test.ts`), and a store 0.2.0 wrote,
 * its code journaled as a token record, is migrated once at start-up and
 * the code still redeems. Real servers over loopback, the emulator as
 * WeChat; the store is looked at as written (files, Redis keys).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, type Scope, TestClock } from "effect"
import { Redis } from "ioredis"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Component from "../../../src/families/component/Component.js"
import * as AuthorizationCodes from "../../../src/families/component/internal/authorizationCodes.js"
import * as FileDocuments from "../../../src/internal/fileDocuments.js"
import * as RedisDocuments from "../../../src/internal/redisDocuments.js"
import * as OwnerId from "../../../src/OwnerId.js"
import * as StoreDocuments from "../../../src/StoreDocuments.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import type * as TokenStore from "../../../src/TokenStore.js"
import * as TokenStoreFile from "../../../src/TokenStoreFile.js"
import * as TokenStoreRedis from "../../../src/TokenStoreRedis.js"
import * as ComponentStack from "../../support/componentStack.js"
import { COMPONENT, MERCHANT } from "../../support/fixtures.js"
import * as RedisServer from "../../support/redisServer.js"
import { auth } from "../../support/serverStack.js"

const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
const HOUR = 3_600_000

/** A record as 0.2.0 wrote it: no lineage, `mode` the kind's overlap. */
interface Record020 {
  readonly appId: string
  readonly kind: string
  readonly value: string
  readonly mode: string
  readonly fetchedAt: number
  readonly expiresAt: number
  readonly refreshAt: number
  readonly generation: number
  readonly retired?: boolean
}

/** One store, as a server uses it and as a test reads and writes it underneath. */
interface Variant {
  readonly layer: () => Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments>
  /** Writes `records` as 0.2.0's adapter did. */
  readonly write020: (records: ReadonlyArray<Record020>) => Effect.Effect<void>
  /** The stored record of `owner`'s `authorization_code` kind, if any. */
  readonly legacyCode: Effect.Effect<Record020 | undefined>
  /** The `authorization-codes` document's codes, as stored. */
  readonly pending: Effect.Effect<Readonly<Record<string, StoredCode>>>
}

interface StoredCode {
  readonly code: string
  readonly exchangedAt?: number
}

const codesOf = (stored: string | null | undefined) =>
  stored === null || stored === undefined
    ? {}
    : (JSON.parse((JSON.parse(stored) as { body: string }).body) as { codes: Record<string, StoredCode> }).codes

const fileVariant: Effect.Effect<Variant> = Effect.sync(() => {
  const path = NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "authorization-codes-")), "store.json")
  const document = NodePath.join(FileDocuments.directoryOf(path), `${AuthorizationCodes.NAME}.json`)
  const records = () =>
    (JSON.parse(NodeFs.readFileSync(path, "utf8")) as { records: Record<string, Record020> }).records
  return {
    layer: () => TokenStoreFile.layerNode(path).pipe(Layer.orDie),
    write020: (written) =>
      Effect.sync(() =>
        NodeFs.writeFileSync(
          path,
          JSON.stringify({
            format: "effect-wechat-token/v1",
            records: Object.fromEntries(written.map((record) => [`${record.appId}/${record.kind}`, record]))
          })
        )
      ),
    legacyCode: Effect.sync(() => records()[`${owner}/${AuthorizationCodes.LEGACY_KIND}`]),
    pending: Effect.sync(() => codesOf(NodeFs.existsSync(document) ? NodeFs.readFileSync(document, "utf8") : null))
  }
})

const redisVariant: Effect.Effect<Variant, RedisServer.RedisServerError, Scope.Scope> = Effect.gen(function*() {
  const server = yield* RedisServer.make
  const redis = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(server.url)),
    (client) => Effect.sync(() => client.disconnect())
  )
  const read = (key: string) => Effect.promise(() => redis.get(key))
  return {
    layer: () => TokenStoreRedis.layer(server.url).pipe(Layer.orDie),
    // 0.2.0's keys carried no hash tag.
    write020: (written) =>
      Effect.promise(() =>
        Promise.all(
          written.map((record) => redis.set(`wechat-token:${record.appId}:${record.kind}`, JSON.stringify(record)))
        )
      ),
    legacyCode: Effect.map(
      Effect.all([
        read(`wechat-token:{${owner}}:${AuthorizationCodes.LEGACY_KIND}`),
        read(`wechat-token:${owner}:${AuthorizationCodes.LEGACY_KIND}`)
      ]),
      ([tagged, untagged]) => {
        const held = tagged ?? untagged
        return held === null ? undefined : JSON.parse(held) as Record020
      }
    ),
    pending: Effect.map(read(RedisDocuments.documentKey(AuthorizationCodes.NAME)), codesOf)
  }
})

const variants = { "file store": fileVariant, "Redis store": redisVariant }

const served = (url: string) =>
  Effect.map(ComponentStack.call(url, { headers: auth() }), (answer) => answer.status === 200)

// Waits until the server at `base` serves MERCHANT's token, and checks WeChat takes it.
const servesValidToken = (base: string, controls: Emulator.ComponentControls) =>
  Effect.gen(function*() {
    const route = ComponentStack.authorizerRoute(base, MERCHANT, "/access-token")
    yield* ComponentStack.eventually(served(route))
    const token = yield* ComponentStack.call(route, { headers: auth() })
    expect(yield* controls.isValidAuthorizerToken(token.json.access_token, MERCHANT)).toBe(true)
  })

describe.each(Object.entries(variants))("authorization codes in the store's document: %s", (_, makeVariant) => {
  it.scopedLive(
    "a store 0.2.0 wrote (its code a token record) is migrated once, and the code still redeems",
    () =>
      Effect.gen(function*() {
        const variant = yield* makeVariant
        const wechat = yield* ComponentStack.serveWeChat()
        const controls = wechat.emulator.component
        // No push URL: WeChat only logs its pushes; the 0.2.0 server took them.
        const ticket = yield* controls.pushTicket(COMPONENT)
        const code = yield* controls.authorize(COMPONENT, MERCHANT)
        const now = Date.now()
        yield* variant.write020([
          {
            appId: COMPONENT,
            kind: Component.verifyTicket,
            value: ticket,
            mode: "stable",
            fetchedAt: now,
            expiresAt: now + 12 * HOUR,
            refreshAt: now + 12 * HOUR,
            generation: 1
          },
          {
            appId: owner,
            kind: AuthorizationCodes.LEGACY_KIND,
            value: code,
            mode: "none",
            fetchedAt: now,
            expiresAt: now + HOUR,
            refreshAt: now + HOUR,
            generation: 1
          }
        ])

        yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* ComponentStack.serveComponentServer(wechat.url, variant.layer())
          yield* servesValidToken(server.base, controls)
          yield* ComponentStack.eventually(
            Effect.map(variant.pending, (codes) => codes[owner]?.exchangedAt !== undefined)
          )
        }))
        // The old record is tombstoned, so no later start takes it up again.
        expect(yield* variant.legacyCode).toMatchObject({ value: code, retired: true })
        const exchanged = yield* controls.stats(COMPONENT)
        expect(exchanged.queryAuthCalls).toBe(1)

        const again = yield* ComponentStack.serveComponentServer(wechat.url, variant.layer())
        yield* ComponentStack.eventually(served(ComponentStack.authorizerRoute(again.base, MERCHANT, "/access-token")))
        expect(yield* variant.pending).toEqual({
          [owner]: expect.objectContaining({ code, exchangedAt: expect.any(Number) })
        })
        expect((yield* controls.stats(COMPONENT)).queryAuthCalls).toBe(1)
      }),
    { timeout: 120_000 }
  )
})

describe("authorization codes in the store's document across a restart: Redis store", () => {
  it.scopedLive(
    "a code pushed but not yet exchanged survives a restart and is exchanged by the next start",
    () =>
      Effect.gen(function*() {
        const variant = yield* redisVariant
        const wechat = yield* ComponentStack.serveWeChat()
        const controls = wechat.emulator.component
        const code = yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* ComponentStack.serveComponentServer(wechat.url, variant.layer())
          yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(server.base))
          yield* controls.pushTicket(COMPONENT)
          yield* ComponentStack.eventually(served(ComponentStack.componentRoute(server.base, "/access-token")))
          // WeChat busy: the exchange keeps retrying until the server stops.
          yield* wechat.emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["api_query_auth"] })
          // Returns once the push was answered `success`: the code is stored by then.
          const code = yield* controls.authorize(COMPONENT, MERCHANT)
          expect(yield* variant.pending).toEqual({ [owner]: expect.objectContaining({ code }) })
          expect(yield* variant.legacyCode).toBeUndefined()
          return code
        }))
        expect((yield* controls.stats(COMPONENT)).authorizerTokensIssued).toBe(0)
        expect(yield* variant.pending).toEqual({ [owner]: expect.objectContaining({ code }) })

        yield* wechat.emulator.clearFaults
        yield* controls.setPushUrl(COMPONENT, undefined)
        const server = yield* ComponentStack.serveComponentServer(wechat.url, variant.layer())
        yield* servesValidToken(server.base, controls)
        // Exchanged: the code is marked so, kept until it expires for the gateway's api_query_auth.
        yield* ComponentStack.eventually(
          Effect.map(variant.pending, (codes) => codes[owner]?.exchangedAt !== undefined)
        )
      }),
    { timeout: 120_000 }
  )
})

describe("authorization codes: the document", () => {
  it.effect("a duplicate push keeps the code journaled; a newer code replaces it; only the same code is marked exchanged", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      const first = { code: "code-1", receivedAt: 1_000, expiresAt: HOUR }
      expect(yield* AuthorizationCodes.put(documents, owner, first)).toEqual(first)
      expect(yield* AuthorizationCodes.put(documents, owner, { ...first, receivedAt: 2_000 })).toEqual(first)
      const second = { code: "code-2", receivedAt: 3_000, expiresAt: HOUR }
      expect(yield* AuthorizationCodes.put(documents, owner, second)).toEqual(second)
      yield* AuthorizationCodes.markExchanged(documents, owner, "code-1", 4_000)
      expect((yield* AuthorizationCodes.list(documents)).get(owner)).toEqual(second)
      yield* AuthorizationCodes.markExchanged(documents, owner, "code-2", 5_000)
      expect((yield* AuthorizationCodes.list(documents)).get(owner)).toEqual({ ...second, exchangedAt: 5_000 })
      // A duplicate push of an exchanged code answers it exchanged: not exchanged again.
      expect(yield* AuthorizationCodes.put(documents, owner, { ...second, receivedAt: 6_000 })).toEqual({
        ...second,
        exchangedAt: 5_000
      })
    }))

  it.effect("an expired code is dropped at the next write", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      const other = OwnerId.authorizer(COMPONENT as never, "wx00bb00bb00bb00bb" as never)
      yield* AuthorizationCodes.put(documents, owner, { code: "old", receivedAt: 0, expiresAt: 1_000 })
      yield* TestClock.adjust(Duration.seconds(2))
      yield* AuthorizationCodes.put(documents, other, { code: "new", receivedAt: 2_000, expiresAt: HOUR })
      expect(Array.from((yield* AuthorizationCodes.list(documents)).keys())).toEqual([other])
    }))

  it.effect("a document this version cannot read is refused with a StoreError, never overwritten", () =>
    Effect.gen(function*() {
      const documents = yield* StoreDocuments.makeMemory
      expect(yield* documents.swap(AuthorizationCodes.NAME, 0, "{\"format\":\"something else\"}")).toBe(true)
      const refused = yield* Effect.flip(
        AuthorizationCodes.put(documents, owner, { code: "code", receivedAt: 0, expiresAt: HOUR })
      )
      expect(refused).toMatchObject({ _tag: "StoreError", operation: AuthorizationCodes.NAME })
      expect(Option.map(yield* documents.get(AuthorizationCodes.NAME), (held) => held.version)).toEqual(Option.some(1))
    }))
})
