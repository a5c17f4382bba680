import { FetchHttpClient, FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Fiber,
  Layer,
  Option,
  Queue,
  Random,
  Stream,
  TestClock
} from "effect"
import { AccessToken } from "../src/AccessToken.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenConfig from "../src/TokenConfig.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenLayer from "../src/TokenLayer.js"
import * as TokenStore from "../src/TokenStore.js"
import * as TokenStoreFile from "../src/TokenStoreFile.js"
import * as Harness from "./support/engine.js"
import { APP, engineLayer, isValid, OTHER, SECRET, tokenFetches, withEngine } from "./support/engine.js"

const emulatorLayer = Harness.emulatorLayer()

describe("TokenEngine", () => {
  it.scoped("1,000 concurrent get on a cold engine cause exactly one upstream fetch", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const fibers = yield* Effect.forEach(
          Array.from({ length: 1000 }),
          () => Effect.fork(tokens.get(APP)),
          { concurrency: "unbounded" }
        )
        const served = yield* Effect.forEach(fibers, Fiber.join)
        expect(new Set(served.map((token) => token.value)).size).toBe(1)
        expect(yield* tokenFetches()).toBe(1)
        expect(yield* isValid(served[0]!.value)).toBe(true)
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("answers from memory while the token is valid: no fetch per request", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const first = yield* tokens.get(APP)
        for (let i = 0; i < 100; i++) {
          yield* TestClock.adjust(Duration.seconds(30))
          expect((yield* tokens.get(APP)).value).toBe(first.value)
        }
        expect(yield* tokenFetches()).toBe(1)
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("refreshes early: before expiry, and every handed-out token is valid at the time", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const seen = new Set<string>()
        // Six simulated hours, one caller a minute.
        for (let minute = 0; minute < 6 * 60; minute++) {
          const token = yield* tokens.get(APP)
          seen.add(token.value)
          expect(yield* isValid(token.value)).toBe(true)
          yield* TestClock.adjust(Duration.minutes(1))
        }
        // 7,200 s tokens refreshed 150–300 s early: 4 fetches cover 6 hours.
        expect(yield* tokenFetches()).toBe(4)
        expect(seen.size).toBe(4)
      })
    ).pipe(Effect.provide(emulatorLayer)))

  for (const mode of ["classic", "stable"] as const) {
    it.scoped(`a simulated day in ${mode} mode costs exactly ⌈86400 / (7200 − margin)⌉ fetches`, () =>
      withEngine(
        engineLayer({ mode }),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          yield* tokens.get(APP)
          for (let hour = 0; hour < 24; hour++) yield* TestClock.adjust(Duration.hours(1))
          // The 24 h mark itself belongs to the next day.
          expect(yield* tokenFetches()).toBe(Math.ceil(86_400 / (7_200 - 300)))
        })
      ).pipe(Effect.provide(emulatorLayer)))
  }

  it.scoped("a wrong secret: a typed error, and no retry storm however many callers ask", () =>
    withEngine(
      engineLayer({ secret: "wrong" }),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const first = yield* tokens.get(APP).pipe(Effect.flip)
        expect(first._tag).toBe("InvalidAppSecret")
        // An hour of callers, 10 a second.
        for (let second = 0; second < 3_600; second += 10) {
          const results = yield* Effect.all(Array.from({ length: 100 }, () => Effect.either(tokens.get(APP))), {
            concurrency: "unbounded"
          })
          expect(results.every(Either.isLeft)).toBe(true)
          yield* TestClock.adjust(Duration.seconds(10))
        }
        // One fetch at start, then one per 5-minute pause.
        expect(yield* tokenFetches()).toBeLessThanOrEqual(1 + 12 + 1)
        const status = yield* Effect.flatMap(TokenEngine, (engine) => engine.status)
        expect(Option.map(status[0]!.lastError, (error) => error._tag)).toEqual(Option.some("InvalidAppSecret"))
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("a malformed upstream body is a typed transient error", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      yield* emulator.injectFault({ fault: Emulator.Fault.Malformed(), endpoints: ["token"] })
      const result = yield* withEngine(engineLayer(), Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))).pipe(
        Effect.flip
      )
      expect(result).toMatchObject({ _tag: "UpstreamUnavailable", reason: "malformed-body" })
    }).pipe(Effect.provide(emulatorLayer)))

  it.scoped("an unknown app id is a typed error and reaches no upstream", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const result = yield* tokens.get("wx../../etc/passwd").pipe(Effect.flip)
        expect(result._tag).toBe("UnknownApp")
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("compare-and-refresh: one fetch for 50 callers reporting the same stale token; a newer token is just returned", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        const stale = yield* tokens.get(APP)
        const refreshed = yield* Effect.all(Array.from({ length: 50 }, () => tokens.refresh(APP, stale.value)), {
          concurrency: "unbounded"
        })
        expect(new Set(refreshed.map((token) => token.value)).size).toBe(1)
        expect(refreshed[0]!.value).not.toBe(stale.value)
        expect(yield* tokenFetches()).toBe(2)
        // Reporting the old token again changes nothing.
        expect((yield* tokens.refresh(APP, stale.value)).value).toBe(refreshed[0]!.value)
        expect(yield* tokenFetches()).toBe(2)
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("classic overlap rule: no token is handed out after WeChat killed it", () =>
    withEngine(
      engineLayer({ marginSeconds: 900 }),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        // A 15-minute margin: the next fetch kills the current token 5 minutes
        // later, long before its own expiry; the served expiry says so. Every
        // token ever served must stay valid until the expiry it was served with.
        const served = new Map<string, number>()
        for (let minute = 0; minute < 12 * 60; minute++) {
          const token = yield* tokens.get(APP)
          served.set(token.value, token.expiresAt)
          const now = yield* TestClock.currentTimeMillis
          expect(token.expiresAt - now).toBeLessThanOrEqual((7_200 - 900 + 450 + 300) * 1000)
          for (const [value, expiresAt] of served) {
            if (expiresAt > now) expect(yield* isValid(value)).toBe(true)
          }
          yield* TestClock.adjust(Duration.minutes(1))
        }
        expect(served.size).toBeGreaterThanOrEqual(6)
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("several apps are independent: one failing app does not disturb the other", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      yield* emulator.injectFault({ fault: Emulator.Fault.Busy(), appId: OTHER })
      yield* withEngine(
        engineLayer({ apps: [APP, OTHER] }),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          expect(yield* isValid((yield* tokens.get(APP)).value)).toBe(true)
          const other = yield* tokens.get(OTHER).pipe(Effect.flip)
          expect(other._tag).toBe("UpstreamUnavailable")
        })
      )
    }).pipe(Effect.provide(emulatorLayer)))

  it.scoped("a hundred apps start in waves: at most 16 upstream calls in flight, every app served", () => {
    const apps = Array.from({ length: 100 }, (_, i) => `wx${i.toString(16).padStart(16, "0")}`)
    return Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      // Each answer takes a simulated second, so the start-up fetches overlap.
      yield* emulator.injectFault({ fault: Emulator.Fault.Slow("1 second"), times: apps.length })
      yield* withEngine(
        engineLayer({ apps }),
        Effect.gen(function*() {
          for (let second = 0; second < 10; second++) yield* TestClock.adjust(Duration.seconds(1))
          const tokens = yield* AccessToken
          for (const appId of apps) expect(yield* isValid((yield* tokens.get(appId)).value)).toBe(true)
          expect(yield* tokenFetches(apps[0])).toBe(1)
        })
      )
      expect((yield* emulator.stats).peakInFlight).toBe(16)
    }).pipe(Effect.provide(Emulator.layer({ apps: apps.map((appId) => ({ appId, secret: SECRET })) })))
  })

  // A configuration error (or the daily quota) at a *scheduled* refresh, with
  // a valid token held: callers keep the held token until it is unusable,
  // the status names the error the refresh hit, and retries keep their pace.
  const scheduledFailures = [
    {
      what: "40164 (the IP whitelist changed)",
      tag: "IpNotWhitelisted",
      pauseSeconds: 300,
      cause: (emulator: Emulator.WeChatEmulatorShape) =>
        emulator.registerApp({ appId: APP, secret: SECRET, ipWhitelist: ["10.0.0.1"] })
    },
    {
      what: "40125 (the secret was rotated)",
      tag: "InvalidAppSecret",
      pauseSeconds: 300,
      cause: (emulator: Emulator.WeChatEmulatorShape) => emulator.registerApp({ appId: APP, secret: "rotated-secret" })
    },
    {
      what: "45009 (the daily quota is spent)",
      tag: "QuotaExceeded",
      pauseSeconds: 3_600,
      cause: (emulator: Emulator.WeChatEmulatorShape) =>
        emulator.injectFault({
          fault: Emulator.Fault.Errcode(45009, "reach max api daily quota limit"),
          endpoints: ["token", "stable_token"]
        })
    }
  ] as const

  for (const mode of ["classic", "stable"] as const) {
    for (const failure of scheduledFailures) {
      it.scoped(`${mode}: ${failure.what} at a scheduled refresh keeps the held token until it is unusable`, () =>
        withEngine(
          engineLayer({ mode }),
          Effect.gen(function*() {
            const emulator = yield* Emulator.WeChatEmulator
            const tokens = yield* AccessToken
            const engine = yield* TokenEngine
            const held = yield* tokens.get(APP)
            // 100 s before the earliest refresh point (7,200 − 300 s).
            const faultAt = (7_200 - 300 - 100) * 1000
            yield* TestClock.adjust(Duration.millis(faultAt))
            yield* failure.cause(emulator)
            const before = yield* tokenFetches()
            const windowSeconds = 4_200
            for (let second = 0; second < windowSeconds; second += 15) {
              const now = yield* TestClock.currentTimeMillis
              const [status] = yield* engine.status
              if (now + 5_000 < held.expiresAt) {
                expect(yield* tokens.get(APP)).toEqual(held)
                expect(status!.valid).toBe(true)
                // Past the latest refresh point (7,200 − 150 s) the refresh has run and failed.
                if (now > (7_200 - 150) * 1000) {
                  expect(Option.map(status!.lastError, (error) => error._tag)).toEqual(Option.some(failure.tag))
                }
              } else {
                expect((yield* Effect.flip(tokens.get(APP)))._tag).toBe(failure.tag)
                expect(status!.valid).toBe(false)
              }
              yield* TestClock.adjust(Duration.seconds(15))
            }
            // First attempt at the refresh point (6,900–7,050 s), then one per
            // pause until the window closes (11,000 s), however many callers.
            const attempts = (yield* tokenFetches()) - before
            const windowEnd = faultAt + windowSeconds * 1000
            const fewest = Math.floor((windowEnd - 7_050_000) / (failure.pauseSeconds * 1000)) + 1
            const most = Math.floor((windowEnd - 6_900_000) / (failure.pauseSeconds * 1000)) + 1
            expect(attempts).toBeGreaterThanOrEqual(fewest)
            expect(attempts).toBeLessThanOrEqual(most)
          })
        ).pipe(Effect.provide(emulatorLayer)))
    }
  }

  it.scoped("stable mode caps the margin at WeChat's 5-minute renewal window: a longer one would only fetch the same token", () =>
    withEngine(
      engineLayer({ mode: "stable", marginSeconds: 900 }),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        yield* tokens.get(APP)
        const [status] = yield* Effect.flatMap(TokenEngine, (engine) => engine.status)
        const record = Option.getOrThrow(status!.record)
        expect(record.expiresAt - record.refreshAt).toBeLessThanOrEqual(300_000)
        for (let hour = 0; hour < 24; hour++) yield* TestClock.adjust(Duration.hours(1))
        expect(yield* tokenFetches()).toBe(Math.ceil(86_400 / (7_200 - 300)))
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("a held token is never handed out in its last 5 seconds, even while no new one can be fetched", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const emulator = yield* Emulator.WeChatEmulator
        const tokens = yield* AccessToken
        const held = yield* tokens.get(APP)
        yield* TestClock.adjust(Duration.seconds(6_800))
        yield* emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["token"] })
        yield* TestClock.adjust(Duration.seconds(394))
        expect((yield* tokens.get(APP)).value).toBe(held.value)
        yield* TestClock.adjust(Duration.seconds(2))
        const late = yield* Effect.flip(tokens.get(APP))
        expect(late._tag).toBe("UpstreamUnavailable")
      })
    ).pipe(Effect.provide(emulatorLayer)))

  it.scoped("tokens shorter-lived than the margin refresh at half their life, never in a loop", () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        for (let second = 0; second < 3_600; second += 10) {
          expect(yield* isValid((yield* tokens.get(APP)).value)).toBe(true)
          yield* TestClock.adjust(Duration.seconds(10))
        }
        // 120 s tokens, margin capped at 60 s, jitter up to 30 s: a fetch every 60–90 s.
        const fetches = yield* tokenFetches()
        expect(fetches).toBeGreaterThanOrEqual(3_600 / 90)
        expect(fetches).toBeLessThanOrEqual(3_600 / 60 + 1)
      })
    ).pipe(
      Effect.provide(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }], tokenLifetime: Duration.seconds(120) }))
    ))

  it.scoped("a slow answer: the lifetime counts from the request, since WeChat may have started it then", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      yield* emulator.injectFault({ fault: Emulator.Fault.Slow(Duration.seconds(3)), endpoints: ["token"], times: 1 })
      yield* withEngine(
        engineLayer(),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          const requestedAt = yield* TestClock.currentTimeMillis
          const pending = yield* Effect.fork(tokens.get(APP))
          yield* TestClock.adjust(Duration.seconds(3))
          const token = yield* Fiber.join(pending)
          expect(token.expiresAt).toBe(requestedAt + 7_200_000)
        })
      )
    }).pipe(Effect.provide(emulatorLayer)))

  it.scoped("jitter spreads the refresh points of apps that start together (seeded Random)", () => {
    const apps = Array.from({ length: 20 }, (_, i) => `wx${i.toString(16).padStart(16, "0")}`)
    return withEngine(
      engineLayer({ apps }),
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        for (const appId of apps) yield* tokens.get(appId)
        const records = Array.from(
          yield* Effect.flatMap(TokenEngine, (engine) => engine.status),
          (status) => Option.getOrThrow(status.record)
        )
        const offsets = records.map((record) => record.expiresAt - record.refreshAt)
        // Every refresh point lies in the first half of the 300 s margin...
        for (const offset of offsets) {
          expect(offset).toBeGreaterThanOrEqual(150_000)
          expect(offset).toBeLessThanOrEqual(300_000)
        }
        // ...and the twenty apps are spread over it, not refreshed in one burst.
        expect(new Set(offsets).size).toBeGreaterThanOrEqual(15)
        expect(Math.max(...offsets) - Math.min(...offsets)).toBeGreaterThan(75_000)
      })
    ).pipe(
      Effect.provide(Emulator.layer({ apps: apps.map((appId) => ({ appId, secret: SECRET })) })),
      Effect.withRandom(Random.make("jitter"))
    )
  })

  it.scoped("a cold herd's first refreshes spread over the lifetime, none within a margin of the fetch", () => {
    // 300 apps: past the engine's herd threshold (256).
    const apps = Array.from({ length: 300 }, (_, i) => `wx${i.toString(16).padStart(16, "0")}`)
    return withEngine(
      engineLayer({ apps }),
      Effect.gen(function*() {
        const engine = yield* TokenEngine
        yield* Effect.forEach(apps, (appId) => engine.get(appId), { concurrency: 16, discard: true })
        const records = Array.from(yield* engine.status, (status) => Option.getOrThrow(status.record))
        const ages = records.map((record) => (record.refreshAt - record.fetchedAt) / 1000)
        // Not before the margin (300 s, less at most half of it as jitter)...
        expect(Math.min(...ages)).toBeGreaterThanOrEqual(150)
        expect(Math.max(...ages)).toBeLessThanOrEqual(7_200 - 150)
        // ...and spread over the lifetime, not back as one burst: each tenth of it has some.
        const tenths = new Set(ages.map((age) => Math.floor(age / 720)))
        expect(tenths.size).toBe(10)
        // So the start-up fetched each app once, and nothing more in the next minutes.
        yield* TestClock.adjust(Duration.seconds(149))
        const fetches = yield* Effect.forEach(apps, (appId) => tokenFetches(appId))
        expect(fetches.every((count) => count === 1)).toBe(true)
      })
    ).pipe(
      Effect.provide(Emulator.layer({ apps: apps.map((appId) => ({ appId, secret: SECRET })) })),
      Effect.withRandom(Random.make("herd"))
    )
  })

  describe("stable mode", () => {
    it.scoped("normal calls never force; a rejected token is replaced by a budgeted forced refresh", () =>
      withEngine(
        engineLayer({ mode: "stable" }),
        Effect.gen(function*() {
          const emulator = yield* Emulator.WeChatEmulator
          const engine = yield* TokenEngine
          const first = yield* engine.get(APP)
          yield* TestClock.adjust(Duration.hours(5))
          let stats = yield* emulator.stats
          expect(stats.apps[APP]!.forceRefreshes).toBe(0)
          const current = yield* engine.get(APP)
          expect(current.value).not.toBe(first.value)
          // A business server reports the current token as rejected.
          const replaced = yield* engine.refresh(APP, current.value)
          expect(replaced.value).not.toBe(current.value)
          stats = yield* emulator.stats
          expect(stats.apps[APP]!.forceRefreshes).toBe(1)
          const budget = yield* engine.forceRefreshBudget(APP)
          expect(budget.usedToday).toBe(1)
          expect(budget.remainingToday).toBe(19)
          // Within 30 s another forced refresh is refused by the budget, not sent.
          const again = yield* engine.refresh(APP, replaced.value).pipe(Effect.flip)
          expect(again._tag).toBe("ForceRefreshBudgetExhausted")
          expect((yield* emulator.stats).apps[APP]!.forceRefreshes).toBe(1)
        })
      ).pipe(Effect.provide(emulatorLayer)))
  })

  // Another replica's classic fetch, stored with `generation`: the token it got.
  const otherReplicaStores = (
    emulator: Emulator.WeChatEmulatorShape,
    memory: TokenStore.TokenStoreShape,
    generation: number
  ) =>
    Effect.gen(function*() {
      const answer = yield* emulator.handle({
        method: "GET",
        path: "/cgi-bin/token",
        query: new URLSearchParams({ grant_type: "client_credential", appid: APP, secret: SECRET }),
        body: ""
      })
      const value: string = answer._tag === "Respond" ? JSON.parse(answer.body).access_token : ""
      const now = yield* TestClock.currentTimeMillis
      yield* memory.set(
        new TokenRecord({
          appId: TokenConfig.app(APP, SECRET).appId,
          kind: "access_token",
          value,
          mode: "classic",
          fetchedAt: now,
          expiresAt: now + 7_200_000,
          refreshAt: now + 6_900_000,
          generation
        })
      )
      return value
    })

  it.scoped("a token another replica stored just before this one got the lease is adopted, not fetched again", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const memory = Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
      const stored = yield* Deferred.make<string>()
      // The other replica fetches and stores while this one waits for the lease.
      const racing = Layer.succeed(TokenStore.TokenStore, {
        ...memory,
        lease: (key, leaseMillis) =>
          Effect.flatMap(
            Deferred.isDone(stored),
            (done) =>
              done ?
                memory.lease(key, leaseMillis) :
                Effect.flatMap(
                  otherReplicaStores(emulator, memory, 1),
                  (value) => Effect.zipRight(Deferred.succeed(stored, value), memory.lease(key, leaseMillis))
                )
          )
      })
      const token = yield* withEngine(
        engineLayer({ store: racing }),
        Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))
      )
      expect(token.value).toBe(yield* Deferred.await(stored))
      expect(yield* tokenFetches()).toBe(1)
    }).pipe(Effect.provide(emulatorLayer)))

  it.scoped("at its refresh point a replica adopts a newer token found in the store instead of fetching", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const memory = Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
      // The store tells nobody: as a file store, or a Redis message missed while disconnected.
      yield* withEngine(
        engineLayer({ store: Layer.succeed(TokenStore.TokenStore, memory) }),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          yield* tokens.get(APP)
          yield* TestClock.adjust(Duration.minutes(10))
          const newer = yield* otherReplicaStores(emulator, memory, 2)
          yield* TestClock.adjust(Duration.seconds(7_200 - 600 - 150))
          expect((yield* tokens.get(APP)).value).toBe(newer)
          expect(yield* tokenFetches()).toBe(2)
        })
      )
    }).pipe(Effect.provide(emulatorLayer)))

  it.scoped("while another replica holds the lease, a compare-and-refresh waits for a newer token, not the one it reported", () =>
    Effect.gen(function*() {
      const memory = Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
      let heldElsewhere = 0
      const contended = Layer.succeed(TokenStore.TokenStore, {
        ...memory,
        lease: (key, leaseMillis) =>
          Effect.suspend(() => heldElsewhere-- > 0 ? Effect.succeed(false) : memory.lease(key, leaseMillis))
      })
      yield* withEngine(
        engineLayer({ store: contended }),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          const rejected = yield* tokens.get(APP)
          // The other replica holds the lease for three polls, then lets go without storing anything.
          heldElsewhere = 3
          const pending = yield* Effect.fork(tokens.refresh(APP, rejected.value))
          for (let poll = 0; poll < 4; poll++) yield* TestClock.adjust(Duration.millis(100))
          const fresh = yield* Fiber.join(pending)
          expect(fresh.value).not.toBe(rejected.value)
          expect(yield* tokenFetches()).toBe(2)
        })
      )
    }).pipe(Effect.provide(emulatorLayer)))

  for (const mode of ["stable", "classic"] as const) {
    it.scoped(`store down at the refresh point, ${mode}: ${mode === "stable" ? "refreshes locally on time" : "waits while the token stays usable"}`, () =>
      Effect.gen(function*() {
        const memory = Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
        let down = false
        const flaky = Layer.succeed(TokenStore.TokenStore, {
          ...memory,
          lease: (key, leaseMillis) =>
            Effect.suspend(() =>
              down
                ? Effect.fail(new TokenStore.StoreError({ operation: "lease", detail: "connection refused" }))
                : memory.lease(key, leaseMillis)
            )
        })
        yield* withEngine(
          engineLayer({ mode, store: flaky }),
          Effect.gen(function*() {
            const tokens = yield* AccessToken
            const first = yield* tokens.get(APP)
            down = true
            // Just past the latest refresh point (7,200 − 150 s), long before the token's last seconds.
            yield* TestClock.adjust(Duration.seconds(7_060))
            // Stable: WeChat hands every replica the same token, so refreshing alone is safe.
            // Classic: a local fetch would kill the other replicas' tokens while this one is still good.
            expect(yield* tokenFetches()).toBe(mode === "stable" ? 2 : 1)
            expect((yield* tokens.get(APP)).value === first.value).toBe(mode === "classic")
          })
        )
      }).pipe(Effect.provide(emulatorLayer)))
  }

  it.scoped("a record from another replica older than the one held is ignored", () =>
    Effect.gen(function*() {
      const memory = Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
      const published = yield* Queue.unbounded<TokenRecord>()
      const shared = Layer.succeed(TokenStore.TokenStore, { ...memory, changes: Stream.fromQueue(published) })
      yield* withEngine(
        engineLayer({ store: shared }),
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          const first = yield* tokens.get(APP)
          const older = Option.getOrThrow(
            yield* memory.get({ appId: TokenConfig.app(APP, SECRET).appId, kind: "access_token" })
          )
          const newer = yield* tokens.refresh(APP, first.value)
          // A late message about the first generation arrives.
          yield* Queue.offer(published, older)
          for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
          expect((yield* tokens.get(APP)).value).toBe(newer.value)
        })
      )
    }).pipe(Effect.provide(emulatorLayer)))

  describe("start-up from a store", () => {
    it.scoped("a restart on a file store loads the stored token and fetches nothing", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        const store = TokenStoreFile.layer(`${dir}/tokens.json`).pipe(Layer.provide(NodeFileSystem.layer), Layer.orDie)
        const first = yield* withEngine(
          engineLayer({ store }),
          Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))
        )
        expect(yield* tokenFetches()).toBe(1)
        yield* TestClock.adjust(Duration.minutes(10))
        const second = yield* withEngine(
          engineLayer({ store }),
          Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))
        )
        expect(second.value).toBe(first.value)
        expect(yield* tokenFetches()).toBe(1)
      }).pipe(Effect.provide(Layer.merge(emulatorLayer, NodeFileSystem.layer))))

    it.scoped("a corrupt store file is an empty store: one fetch, no crash, and the file is repaired", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        yield* fs.writeFileString(`${dir}/tokens.json`, "{\"format\": \"effect-wechat-token/v1\", \"records\": {\"wx01")
        const store = TokenStoreFile.layer(`${dir}/tokens.json`).pipe(Layer.provide(NodeFileSystem.layer), Layer.orDie)
        const token = yield* withEngine(
          engineLayer({ store }),
          Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))
        )
        expect(yield* isValid(token.value)).toBe(true)
        expect(yield* tokenFetches()).toBe(1)
        const repaired = JSON.parse(yield* fs.readFileString(`${dir}/tokens.json`))
        expect(Object.keys(repaired.records)).toEqual([`${APP}/access_token`])
        expect(JSON.stringify(repaired)).not.toContain(SECRET)
      }).pipe(Effect.provide(Layer.merge(emulatorLayer, NodeFileSystem.layer))))
  })

  describe("over real loopback HTTP", () => {
    it.live("1,000 concurrent cold gets → one fetch; a reported stale token → one more, and the old one lives its 5 minutes", () =>
      Effect.gen(function*() {
        const served = yield* Emulator.serve({ apps: [{ appId: APP, secret: SECRET }] })
        const fetches = Effect.map(served.emulator.appStats(APP), (stats) => stats.classicCalls)
        const layer = TokenLayer.layer({
          config: TokenConfig.layer({
            apps: [TokenConfig.app(APP, SECRET)],
            mode: "classic",
            apiBaseUrl: served.url
          }),
          store: TokenStore.layerMemory,
          httpClient: FetchHttpClient.layer
        })
        yield* Effect.gen(function*() {
          const tokens = yield* AccessToken
          const served1000 = yield* Effect.forEach(Array.from({ length: 1000 }), () => tokens.get(APP), {
            concurrency: "unbounded"
          })
          expect(new Set(served1000.map((token) => token.value)).size).toBe(1)
          expect(yield* fetches).toBe(1)
          const stale = served1000[0]!.value
          const fresh = yield* Effect.forEach(Array.from({ length: 50 }), () => tokens.refresh(APP, stale), {
            concurrency: "unbounded"
          })
          expect(new Set(fresh.map((token) => token.value)).size).toBe(1)
          expect(yield* fetches).toBe(2)
          expect(yield* served.emulator.isValidToken(fresh[0]!.value)).toBe(true)
          // Replaced, not dead: WeChat's overlap keeps it valid for five minutes.
          expect(yield* served.emulator.isValidToken(stale)).toBe(true)
        }).pipe(Effect.provide(layer))
      }).pipe(Effect.scoped))
  })
})
