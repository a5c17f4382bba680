import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer, TestClock } from "effect"
import * as CredentialFamily from "../src/CredentialFamily.js"
import * as OfficialAccount from "../src/families/officialAccount/OfficialAccount.js"
import * as WeChatApi from "../src/families/officialAccount/WeChatApi.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../src/TokenConfig.js"
import * as Engine from "../src/TokenEngine.js"
import * as TokenStore from "../src/TokenStore.js"
import { InvalidCredential, WeChatApiError } from "../src/WeChatError.js"

// A family added in a test only, next to the official account, with no edit
// to the engine: a vendor token (20 minutes, a new one per call) and a
// ticket issued on it, against a fake vendor that counts its calls.

const APP = "wx0123456789abcdef"
const SECRET = "emulated-secret"

const makeVendor = () => {
  const alive = new Map<string, number>()
  const calls = { token: 0, ticket: 0 }
  let next = 0
  let failing: WeChatApiError | undefined
  const mint = (prefix: string, now: number) => {
    const value = `${prefix}-${++next}`
    alive.set(value, now + 1_200_000)
    return { value, expiresInSeconds: 1_200 }
  }
  const isAlive = (value: string, now: number) => (alive.get(value) ?? 0) > now
  return {
    calls,
    isAlive: (value: string) => Clock.currentTimeMillis.pipe(Effect.map((now) => isAlive(value, now))),
    fail: (error: WeChatApiError | undefined) => Effect.sync(() => (failing = error)),
    revoke: (value: string) => Effect.sync(() => alive.delete(value)),
    token: Effect.flatMap(Clock.currentTimeMillis, (now) => {
      calls.token++
      return failing === undefined ? Effect.succeed(mint("token", now)) : Effect.fail(failing)
    }),
    ticket: (token: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        calls.ticket++
        return isAlive(token, now)
          ? Effect.succeed(mint("ticket", now))
          : Effect.fail(new InvalidCredential({ errcode: 40014, errmsg: "invalid token" }))
      })
  }
}

const demoFamily = (vendor: ReturnType<typeof makeVendor>) =>
  CredentialFamily.make({
    name: "demo-vendor",
    owners: [TokenConfig.app(APP, SECRET).appId],
    // The vendor's 61005 means "fix the configuration", not "retry soon".
    classify: (error) => error._tag === "WeChatApiError" && error.errcode === 61005 ? "configuration" : "transient",
    kinds: [
      {
        kind: "demo_token",
        overlap: "classic",
        storage: "cache",
        start: "eager",
        issue: () => vendor.token
      },
      {
        // An input that cannot be fetched twice (as a refresh token): kept in the store before it is answered.
        kind: "demo_grant",
        overlap: "none",
        storage: "durable",
        start: "on-demand",
        issue: () => vendor.token
      },
      {
        kind: "demo_ticket",
        overlap: "classic",
        storage: "cache",
        start: "on-demand",
        // The ticket is issued on the token; a token the vendor rejects is
        // replaced by the engine (compare-and-refresh), and the ticket asked once more.
        inputs: [{ kind: "demo_token" }],
        issue: ({ inputs: [token] }) =>
          vendor.ticket(token!.value).pipe(
            Effect.catchTag("InvalidCredential", (error) => new CredentialFamily.InputRejected({ input: 0, error }))
          )
      }
    ]
  })

const withEngine = <A, E>(
  vendor: ReturnType<typeof makeVendor>,
  body: Effect.Effect<A, E, Engine.TokenEngine | Emulator.WeChatEmulator>,
  store: Layer.Layer<TokenStore.TokenStore> = TokenStore.layerMemory
) =>
  body.pipe(
    Effect.provide(
      Engine.layerView.pipe(Layer.provideMerge(
        Engine.layerFamilies(Effect.map(OfficialAccount.family, (official) => [official, demoFamily(vendor)] as const))
      ))
        .pipe(
          Layer.provide(WeChatApi.layer({ baseUrl: "http://wechat.test" })),
          Layer.provide(TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], mode: "classic" })),
          Layer.provide(store),
          Layer.provide(Emulator.layerClient)
        )
    ),
    Effect.provide(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] }))
  )

describe("CredentialFamily: a demo family plugs into the engine unchanged", () => {
  it.scoped("its eager kind starts with the engine and is refreshed ahead of expiry; the official account is untouched", () => {
    const vendor = makeVendor()
    return withEngine(
      vendor,
      Effect.gen(function*() {
        const engine = yield* Engine.TokenEngine
        yield* engine.get(APP, "demo_token")
        expect(vendor.calls.token).toBe(1)
        const served = new Set<string>()
        for (let minute = 0; minute < 120; minute++) {
          const token = yield* engine.get(APP, "demo_token")
          served.add(token.value)
          expect(yield* vendor.isAlive(token.value)).toBe(true)
          yield* TestClock.adjust(Duration.minutes(1))
        }
        // 1,200 s tokens with the 300 s margin (jitter up to 150 s): a fetch every 900–1,050 s.
        expect(vendor.calls.token).toBeGreaterThanOrEqual(1 + Math.floor(7_200 / 1_050))
        expect(vendor.calls.token).toBeLessThanOrEqual(1 + Math.floor(7_200 / 900))
        // Every token fetched was handed out, but perhaps one fetched at the very end.
        expect(served.size).toBeGreaterThanOrEqual(vendor.calls.token - 1)
        // The first family's first kind is still the default.
        const token = yield* engine.get(APP)
        const emulator = yield* Emulator.WeChatEmulator
        expect(yield* emulator.isValidToken(token.value)).toBe(true)
        expect((yield* engine.status).map((status) => status.kind).sort()).toEqual(["access_token", "demo_token"])
      })
    )
  })

  it.scoped("a dependent kind: 50 callers, one ticket; a revoked token is replaced once by compare-and-refresh", () => {
    const vendor = makeVendor()
    return withEngine(
      vendor,
      Effect.gen(function*() {
        const engine = yield* Engine.TokenEngine
        const tickets = yield* Effect.all(Array.from({ length: 50 }, () => engine.get(APP, "demo_ticket")), {
          concurrency: "unbounded"
        })
        expect(new Set(tickets.map((ticket) => ticket.value)).size).toBe(1)
        expect(vendor.calls).toEqual({ token: 1, ticket: 1 })
        // The vendor revokes the token; the next ticket fetch finds out.
        yield* vendor.revoke((yield* engine.get(APP, "demo_token")).value)
        const fresh = yield* Effect.all(
          Array.from({ length: 50 }, () => engine.refresh(APP, tickets[0]!.value, "demo_ticket")),
          {
            concurrency: "unbounded"
          }
        )
        expect(new Set(fresh.map((ticket) => ticket.value)).size).toBe(1)
        expect(yield* vendor.isAlive(fresh[0]!.value)).toBe(true)
        expect(vendor.calls).toEqual({ token: 2, ticket: 3 })
      })
    )
  })

  it.scoped("a durable kind is answered only once the store holds it; a cache kind is served from memory meanwhile", () => {
    const vendor = makeVendor()
    const unwritable = Layer.map(TokenStore.layerMemory, (context) => {
      const memory = Context.get(context, TokenStore.TokenStore)
      return Context.make(TokenStore.TokenStore, {
        ...memory,
        set: () => Effect.fail(new TokenStore.StoreError({ operation: "set", detail: "disk full" }))
      })
    })
    return withEngine(
      vendor,
      Effect.gen(function*() {
        const engine = yield* Engine.TokenEngine
        expect(yield* vendor.isAlive((yield* engine.get(APP, "demo_token")).value)).toBe(true)
        const refused = yield* Effect.flip(engine.get(APP, "demo_grant"))
        expect(refused).toMatchObject({ _tag: "StoreError", detail: "disk full" })
      }),
      unwritable
    )
  })

  it.scoped("its own errcode classes drive the engine: a configuration error fails fast for the 5-minute cooldown", () => {
    const vendor = makeVendor()
    return withEngine(
      vendor,
      Effect.gen(function*() {
        const engine = yield* Engine.TokenEngine
        const held = yield* engine.get(APP, "demo_token")
        yield* vendor.fail(new WeChatApiError({ errcode: 61005, errmsg: "component ticket is expired" }))
        // Past the token's end: callers have nothing usable and must not storm the vendor.
        yield* TestClock.adjust(Duration.seconds(1_200))
        const callsBefore = vendor.calls.token
        for (let second = 0; second < 240; second += 10) {
          const failure = yield* Effect.flip(engine.get(APP, "demo_token"))
          expect(failure).toMatchObject({ _tag: "WeChatApiError", errcode: 61005 })
          yield* TestClock.adjust(Duration.seconds(10))
        }
        expect(vendor.calls.token - callsBefore).toBeLessThanOrEqual(1)
        const [status] = (yield* engine.status).filter((status) => status.kind === "demo_token")
        expect(status!.valid).toBe(false)
        expect(held.value).toMatch(/^token-/)
      })
    )
  })
})
