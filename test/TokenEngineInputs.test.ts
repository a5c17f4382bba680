import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Layer, Option, Scope, TestClock } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as CredentialFamily from "../src/CredentialFamily.js"
import * as OwnerId from "../src/OwnerId.js"
import * as Engine from "../src/TokenEngine.js"
import * as TokenStore from "../src/TokenStore.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"
import { InvalidCredential, MissingInput, WeChatApiError } from "../src/WeChatError.js"

// The engine's durable inputs and dynamic owners, with a tiny family shaped
// like a third-party platform, against a fake vendor that counts its calls:
// a platform token issued from the latest pushed grant, and per member (an
// owner that appears at runtime) a token issued with the platform token and
// the member's durable refresh token, which every answer rotates.

const PLATFORM = "wx00000000000000aa"
const MEMBER = `${PLATFORM}:wx00000000000000bb` as OwnerId.AuthorizerId
const OTHER_MEMBER = `${PLATFORM}:wx00000000000000cc` as OwnerId.AuthorizerId

const makeVendor = () => {
  const calls = { platformToken: 0, memberToken: 0, askedToPush: 0 }
  const refreshTokens = new Map<string, string>()
  let next = 0
  return {
    calls,
    refreshTokens,
    platformToken: (grant: string) =>
      Effect.sync(() => {
        calls.platformToken++
        return { value: `platform-token-${++next}-from-${grant}`, expiresInSeconds: 7_200 }
      }),
    askToPush: Effect.sync(() => {
      calls.askedToPush++
    }),
    memberToken: (member: string, refreshToken: string) =>
      Effect.suspend(() => {
        calls.memberToken++
        if (refreshTokens.get(member) !== refreshToken) {
          return Effect.fail(new WeChatApiError({ errcode: 61023, errmsg: "invalid refresh token" }))
        }
        const rotated = `refresh-${++next}`
        refreshTokens.set(member, rotated)
        return Effect.succeed({ token: { value: `member-token-${next}`, expiresInSeconds: 7_200 }, rotated })
      })
  }
}

type Vendor = ReturnType<typeof makeVendor>

const families = (vendor: Vendor) =>
  [
    CredentialFamily.make({
      name: "platform",
      owners: [PLATFORM as OwnerId.OwnerId],
      classify: () => "transient",
      kinds: [
        {
          kind: "platform_token",
          overlap: "classic",
          storage: "cache",
          start: "on-demand",
          inputs: [{ kind: "platform_grant" }],
          issue: ({ inputs: [grant] }) => vendor.platformToken(grant!.value)
        },
        {
          // Pushed every 10 minutes, valid 12 hours: when none is held, ask for it again.
          kind: "platform_grant",
          overlap: "stable",
          storage: "durable",
          start: "eager",
          issue: ({ owner }) =>
            Effect.zipRight(
              vendor.askToPush,
              Effect.fail(new MissingInput({ appId: owner, kind: "platform_grant", detail: "asked to push" }))
            )
        }
      ]
    }),
    CredentialFamily.make({
      name: "member",
      owners: [],
      dynamic: { accepts: (owner) => owner.startsWith(`${PLATFORM}:`), presence: "member_refresh" },
      classify: () => "configuration",
      kinds: [
        {
          kind: "member_token",
          overlap: "classic",
          storage: "cache",
          start: "eager",
          inputs: [
            { kind: "platform_token", ownerOf: () => PLATFORM as OwnerId.OwnerId },
            { kind: "member_refresh" }
          ],
          issue: ({ inputs: [platformToken, refresh], owner }) => {
            expect(platformToken!.value).toMatch(/^platform-token-/)
            return Effect.map(vendor.memberToken(owner, refresh!.value), (answer) => ({
              issued: answer.token,
              alongside: [{
                kind: "member_refresh",
                issued: { value: answer.rotated, expiresInSeconds: 10 * 365 * 86_400 }
              }]
            }))
          }
        },
        {
          kind: "member_refresh",
          overlap: "stable",
          storage: "durable",
          start: "on-demand",
          issue: ({ owner }) =>
            Effect.fail(new MissingInput({ appId: owner, kind: "member_refresh", detail: "authorize again" }))
        }
      ]
    })
  ] as const

const engineOn = (vendor: Vendor, store: Layer.Layer<TokenStore.TokenStore>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(store, scope)
    const engine = yield* Engine.makeFamilies(families(vendor)).pipe(
      Effect.provide(context),
      Scope.extend(scope)
    )
    return { engine, store: Context.get(context, TokenStore.TokenStore), scope }
  })

const LONG = 10 * 365 * 86_400

// The vendor remembers which refresh token a member holds: authorizing issues one.
const authorize = (vendor: Vendor, engine: Engine.TokenEngineShape, member: string, value: string) =>
  Effect.suspend(() => {
    vendor.refreshTokens.set(member, value)
    return engine.put(member, "member_refresh", { value, expiresInSeconds: LONG })
  })

const tempFile = () => NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "inputs-")), "store.json")

// An engine on a fresh file store: the platform's grant put, MEMBER authorized; `reopen` starts another on that file.
const memberOnFileStore = Effect.gen(function*() {
  const path = tempFile()
  const vendor = makeVendor()
  const onFile = engineOn(vendor, TokenStoreFile.layerNode(path).pipe(Layer.orDie))
  const first = yield* onFile
  yield* first.engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
  yield* authorize(vendor, first.engine, MEMBER, "refresh-a")
  return { first, reopen: onFile, vendor }
})

describe("TokenEngine: durable inputs and dynamic owners", () => {
  it.scoped("no grant yet: the dependent token fails with MissingInput and the issuer asked for a push; a put serves it", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const { engine } = yield* engineOn(vendor, TokenStore.layerMemory)
      const missing = yield* Effect.flip(engine.get(PLATFORM, "platform_token"))
      expect(missing).toMatchObject({ _tag: "MissingInput", kind: "platform_grant" })
      expect(vendor.calls.askedToPush).toBeGreaterThanOrEqual(1)
      expect(vendor.calls.platformToken).toBe(0)
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      // The put cleared the grant's failure: no cooldown to wait out.
      const tokens = yield* Effect.all(Array.from({ length: 100 }, () => engine.get(PLATFORM, "platform_token")), {
        concurrency: "unbounded"
      })
      expect(new Set(tokens.map((token) => token.value))).toEqual(new Set(["platform-token-1-from-grant-1"]))
      expect(vendor.calls.platformToken).toBe(1)
    }))

  it.scoped("a put is in the store when it returns; the same value again writes nothing; the latest put wins", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const { engine, store } = yield* engineOn(vendor, TokenStore.layerMemory)
      const key = { appId: PLATFORM as OwnerId.OwnerId, kind: "platform_grant" }
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      const first = Option.getOrThrow(yield* store.get(key))
      expect(first.value).toBe("grant-1")
      yield* TestClock.adjust(Duration.minutes(10))
      // A duplicate push: same record, same generation, same expiry.
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      expect(Option.getOrThrow(yield* store.get(key))).toEqual(first)
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-2", expiresInSeconds: 43_200 })
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-3", expiresInSeconds: 43_200 })
      const latest = Option.getOrThrow(yield* store.get(key))
      expect(latest).toMatchObject({ value: "grant-3", generation: first.generation + 2 })
      expect((yield* engine.get(PLATFORM, "platform_grant")).value).toBe("grant-3")
      // A put for a kind or owner the engine does not serve is refused.
      const unknown = yield* Effect.flip(
        engine.put("wx00000000000000dd", "platform_grant", { value: "x", expiresInSeconds: 60 })
      )
      expect(unknown._tag).toBe("UnknownApp")
    }))

  it.scoped("a put that the store refuses fails: nothing is answered that the store does not hold", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const refusing = Layer.map(TokenStore.layerMemory, (context) =>
        Context.make(TokenStore.TokenStore, {
          ...Context.get(context, TokenStore.TokenStore),
          set: () => Effect.fail(new TokenStore.StoreError({ operation: "set", detail: "disk full" }))
        }))
      const { engine } = yield* engineOn(vendor, refusing)
      const refused = yield* Effect.flip(
        engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      )
      expect(refused).toMatchObject({ _tag: "StoreError", detail: "disk full" })
      expect((yield* Effect.flip(engine.get(PLATFORM, "platform_token")))._tag).toBe("MissingInput")
    }))

  it.scoped("a member appears with its refresh token, is refreshed on schedule, and every rotated refresh token is stored", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const { engine, store } = yield* engineOn(vendor, TokenStore.layerMemory)
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      expect(Exit.isFailure(yield* Effect.exit(engine.get(MEMBER, "member_token")))).toBe(true)
      yield* authorize(vendor, engine, MEMBER, "refresh-initial")
      // Admitted: its token kind is eager, fetched without a caller.
      yield* TestClock.adjust(Duration.millis(10))
      expect(vendor.calls.memberToken).toBe(1)
      const token = yield* engine.get(MEMBER, "member_token")
      expect(token.value).toMatch(/^member-token-/)
      const stored = Option.getOrThrow(yield* store.get({ appId: MEMBER, kind: "member_refresh" }))
      expect(stored.value).toBe(vendor.refreshTokens.get(MEMBER))
      // A simulated day: 2-hour tokens, the 300 s margin: at most ⌈86400 / 6900⌉ + 1 fetches.
      for (let minute = 0; minute < 24 * 60; minute += 5) {
        yield* TestClock.adjust(Duration.minutes(5))
        // The platform keeps pushing a new grant every 10 minutes.
        if (minute % 10 === 0) {
          yield* engine.put(PLATFORM, "platform_grant", { value: `grant-${minute}`, expiresInSeconds: 43_200 })
        }
        const held = yield* engine.get(MEMBER, "member_token")
        expect(held.expiresAt).toBeGreaterThan(yield* Clock.currentTimeMillis)
      }
      expect(vendor.calls.memberToken).toBeLessThanOrEqual(Math.ceil(86_400 / 6_900) + 1)
      expect(vendor.calls.memberToken).toBeGreaterThanOrEqual(Math.floor(86_400 / 7_200))
      // The platform token too, however many grants were pushed.
      expect(vendor.calls.platformToken).toBeLessThanOrEqual(Math.ceil(86_400 / 6_900) + 1)
      const latest = Option.getOrThrow(yield* store.get({ appId: MEMBER, kind: "member_refresh" }))
      expect(latest.value).toBe(vendor.refreshTokens.get(MEMBER))
    }))

  it.scoped("a restart on the file store admits members from their stored records and fetches nothing", () =>
    Effect.gen(function*() {
      const { first, reopen, vendor } = yield* memberOnFileStore
      yield* authorize(vendor, first.engine, OTHER_MEMBER, "refresh-b")
      const tokenA = yield* first.engine.get(MEMBER, "member_token")
      const tokenB = yield* first.engine.get(OTHER_MEMBER, "member_token")
      yield* Scope.close(first.scope, Exit.void)
      const calls = { ...vendor.calls }

      const second = yield* reopen
      yield* TestClock.adjust(Duration.millis(10))
      expect((yield* second.engine.get(MEMBER, "member_token")).value).toBe(tokenA.value)
      expect((yield* second.engine.get(OTHER_MEMBER, "member_token")).value).toBe(tokenB.value)
      expect((yield* second.engine.get(PLATFORM, "platform_grant")).value).toBe("grant-1")
      expect(vendor.calls).toEqual(calls)
      // The admitted members are in the status before anyone asked for them.
      const owners = new Set((yield* second.engine.status).map((status) => status.appId))
      expect(owners.has(MEMBER) && owners.has(OTHER_MEMBER)).toBe(true)
    }))

  it.scoped("a retired member stops: no refresh, not served, retired in the status, across a restart; a new authorization brings it back", () =>
    Effect.gen(function*() {
      const { first, reopen, vendor } = yield* memberOnFileStore
      yield* first.engine.get(MEMBER, "member_token")
      yield* first.engine.retire(MEMBER)
      const calls = vendor.calls.memberToken
      yield* TestClock.adjust(Duration.hours(6))
      expect(vendor.calls.memberToken).toBe(calls)
      expect((yield* Effect.flip(first.engine.get(MEMBER, "member_token")))._tag).toBe("UnknownApp")
      const retired = (yield* first.engine.status).filter((status) => status.appId === MEMBER)
      expect(retired).toMatchObject([{ kind: "member_refresh", valid: false, retired: true }])
      // Retiring twice, or one never seen, is harmless.
      yield* first.engine.retire(MEMBER)
      yield* first.engine.retire(OTHER_MEMBER)
      yield* Scope.close(first.scope, Exit.void)

      const second = yield* reopen
      yield* TestClock.adjust(Duration.millis(10))
      expect((yield* Effect.flip(second.engine.get(MEMBER, "member_token")))._tag).toBe("UnknownApp")
      expect((yield* second.engine.status).filter((status) => status.appId === MEMBER)).toMatchObject([{
        retired: true
      }])
      expect(vendor.calls.memberToken).toBe(calls)
      yield* authorize(vendor, second.engine, MEMBER, "refresh-again")
      expect((yield* second.engine.get(MEMBER, "member_token")).value).toMatch(/^member-token-/)
      expect((yield* second.engine.status).filter((status) => status.retired)).toEqual([])
    }))

  it.scoped("an owner another replica admitted is found in the store on first use", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const shared = yield* Layer.build(TokenStore.layerMemory)
      const sharedStore = Layer.succeedContext(shared)
      const writer = yield* engineOn(vendor, sharedStore)
      const reader = yield* engineOn(vendor, sharedStore)
      yield* writer.engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      yield* authorize(vendor, writer.engine, MEMBER, "refresh-a")
      const token = yield* writer.engine.get(MEMBER, "member_token")
      // The reader's memory store has no change feed: only the stored records tell it.
      expect((yield* reader.engine.get(MEMBER, "member_token")).value).toBe(token.value)
      expect((yield* Effect.flip(reader.engine.get(OTHER_MEMBER, "member_token")))._tag).toBe("UnknownApp")
    }))

  it.scoped("a lost refresh token: the durable kind's issuer is asked, its failure is the member's", () =>
    Effect.gen(function*() {
      const vendor = makeVendor()
      const { engine } = yield* engineOn(vendor, TokenStore.layerMemory)
      yield* engine.put(PLATFORM, "platform_grant", { value: "grant-1", expiresInSeconds: 43_200 })
      yield* authorize(vendor, engine, MEMBER, "refresh-a")
      yield* engine.get(MEMBER, "member_token")
      // The vendor forgets it (the merchant re-authorized elsewhere): 61023 on the next refresh.
      vendor.refreshTokens.set(MEMBER, "someone-else")
      const failed = yield* Effect.flip(engine.refresh(MEMBER, undefined, "member_token"))
      expect(failed).toEqual(new WeChatApiError({ errcode: 61023, errmsg: "invalid refresh token" }))
      expect(failed).not.toBeInstanceOf(InvalidCredential)
    }))
})
