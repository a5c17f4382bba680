import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Option, TestClock } from "effect"
import { AccessToken, failureCause } from "../../src/AccessToken.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { withFaults } from "../support/engine.js"
import { APP, auth, errorCode, opsAuth, SECRET, send, startStack } from "../support/serverStack.js"

const { Fault } = Emulator

// The engine against the in-process emulator: TestClock drives every expiry,
// backoff and upstream timeout, so a two-hour token life runs in milliseconds.
const engineLayer = (mode: TokenMode) =>
  TokenLayer.layer({
    config: TokenConfig.layer({
      apps: [TokenConfig.app(APP, SECRET)],
      mode,
      apiBaseUrl: "http://wechat.test",
      upstreamTimeout: Duration.seconds(10)
    }),
    store: TokenStore.layerMemory,
    httpClient: Emulator.layerClient
  })

const fetches = Effect.map(Emulator.WeChatEmulator, (emulator) => emulator.stats).pipe(
  Effect.flatten,
  Effect.map((stats) => (stats.apps[APP]?.classicCalls ?? 0) + (stats.apps[APP]?.stableCalls ?? 0))
)

const isValid = (token: string) => Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.isValidToken(token))

// `faults` are in place before the engine starts, so its first fetch meets them.
const withEngine = <A, E>(
  mode: TokenMode,
  registrations: ReadonlyArray<Emulator.AppRegistration>,
  body: Effect.Effect<A, E, AccessToken | TokenEngine | Emulator.WeChatEmulator>,
  faults: ReadonlyArray<Emulator.FaultRule> = []
) =>
  body.pipe(
    Effect.provide(engineLayer(mode)),
    Effect.provide(withFaults(Emulator.layer({ apps: registrations }), faults))
  )

const CALLERS = 20
const STEP = Duration.seconds(5)

// Faults that say nothing about the configuration: WeChat or the network is
// having a bad moment. Each one holds from 100 s before the earliest refresh
// point (7,200 − 300 s) until 50 s before the token dies: the refresh falls
// inside it whatever the jitter.
const transient = [
  { name: "errcode -1 (system busy)", fault: Fault.Busy(), cause: "upstream_busy" },
  { name: "HTTP 500", fault: Fault.HttpStatus(500), cause: "upstream_http_status" },
  { name: "a malformed body", fault: Fault.Malformed(), cause: "upstream_malformed_body" },
  {
    name: "an answer slower than the 10 s timeout",
    fault: Fault.Slow(Duration.seconds(30)),
    cause: "upstream_timeout"
  },
  { name: "connection refused", fault: Fault.ConnectionRefused(), cause: "upstream_network" }
] as const

describe("FaultMatrix", () => {
  for (const { cause, fault, name } of transient) {
    it.scoped(`${name} across the refresh point: every caller holds a valid token, fetches back off, then it recovers`, () =>
      withEngine(
        "classic",
        [{ appId: APP, secret: SECRET }],
        Effect.gen(function*() {
          const emulator = yield* Emulator.WeChatEmulator
          const tokens = yield* AccessToken
          const engine = yield* TokenEngine
          const first = yield* tokens.get(APP)
          yield* TestClock.adjust(Duration.seconds(7_200 - 300 - 100))
          yield* emulator.injectFault({ fault, endpoints: ["token"] })
          const before = yield* fetches
          const attemptsAt: Array<number> = []
          for (let second = 0; second < 350; second += Duration.toSeconds(STEP)) {
            const served = yield* Effect.all(Array.from({ length: CALLERS }, () => Effect.either(tokens.get(APP))), {
              concurrency: "unbounded"
            })
            for (const answer of served) {
              // A valid token exists (the first one), so nobody may go without it.
              expect(Either.isRight(answer) && answer.right.value).toBe(first.value)
            }
            expect(yield* isValid(first.value)).toBe(true)
            const [status] = yield* engine.status
            expect(status!.valid).toBe(true)
            const now = yield* fetches
            if (now > before + attemptsAt.length) attemptsAt.push(second)
            yield* TestClock.adjust(STEP)
          }
          const during = (yield* fetches) - before
          // The refresh was attempted and retried, and the engine knows why it failed.
          expect(during).toBeGreaterThanOrEqual(3)
          const [failing] = yield* engine.status
          expect(Option.map(failing!.lastError, failureCause)).toEqual(Option.some(cause))
          // Backoff, not a storm: at most one attempt a second would be 350;
          // exponential from 1 s capped at 60 s allows about a dozen.
          expect(during).toBeLessThanOrEqual(12)
          // The later attempts are further apart than the first ones.
          const gaps = attemptsAt.slice(1).map((at, index) => at - attemptsAt[index]!)
          expect(gaps.at(-1)!).toBeGreaterThanOrEqual(gaps[0]!)
          yield* emulator.clearFaults
          let recovered: string | undefined
          for (let second = 0; second < 120; second += Duration.toSeconds(STEP)) {
            const token = yield* tokens.get(APP)
            expect(yield* isValid(token.value)).toBe(true)
            if (token.value !== first.value) recovered = token.value
            yield* TestClock.adjust(STEP)
          }
          expect(recovered).toBeDefined()
          const [healed] = yield* engine.status
          expect(Option.isNone(healed!.lastError)).toBe(true)
          // Recovery costs one fetch, not a burst.
          expect((yield* fetches) - before - during).toBe(1)
        })
      ))
  }

  // Faults that only a person can fix. Stable mode, where WeChat names a wrong secret 40125.
  const configuration = [
    {
      name: "40013 invalid appid",
      registrations: [],
      faults: [],
      tag: "InvalidAppId",
      cause: "40013"
    },
    {
      name: "40125 invalid appsecret",
      registrations: [{ appId: APP, secret: "rotated-in-the-admin-console" }],
      faults: [],
      tag: "InvalidAppSecret",
      cause: "40125"
    },
    {
      name: "40164 caller IP not whitelisted",
      registrations: [{ appId: APP, secret: SECRET, ipWhitelist: ["203.0.113.7"] }],
      faults: [],
      tag: "IpNotWhitelisted",
      cause: "40164"
    },
    {
      name: "45009 daily quota reached",
      registrations: [{ appId: APP, secret: SECRET }],
      faults: [{ fault: Fault.Errcode(45009, "reach max api daily quota limit") }],
      tag: "QuotaExceeded",
      cause: "45009"
    }
  ] as const

  for (const { cause, faults, name, registrations, tag } of configuration) {
    it.scoped(`${name}: a typed error naming it, and an hour of callers causes no retry storm`, () =>
      withEngine(
        "stable",
        registrations,
        Effect.gen(function*() {
          const tokens = yield* AccessToken
          const engine = yield* TokenEngine
          const first = yield* Effect.flip(tokens.get(APP))
          expect(first._tag).toBe(tag)
          // 20 callers every 10 s for an hour: 7,200 requests.
          for (let second = 0; second < 3_600; second += 10) {
            const answers = yield* Effect.all(Array.from({ length: 20 }, () => Effect.flip(tokens.get(APP))), {
              concurrency: "unbounded"
            })
            for (const answer of answers) expect(answer._tag).toBe(tag)
            yield* TestClock.adjust(Duration.seconds(10))
          }
          // Configuration errors: one fetch at start, then one per 5-minute
          // pause; the daily quota: one per hour.
          expect(yield* fetches).toBeLessThanOrEqual(tag === "QuotaExceeded" ? 2 : 14)
          const [status] = yield* engine.status
          expect(status!.valid).toBe(false)
          expect(Option.map(status!.lastError, failureCause)).toEqual(Option.some(cause))
        }),
        faults
      ))

    it.live(`${name}: the server answers 503 and /readyz 503, both naming ${cause}, from one upstream fetch`, () =>
      Effect.gen(function*() {
        const stack = yield* startStack({ mode: "stable", registrations, faults })
        const answers = yield* Effect.all(
          Array.from(
            { length: 50 },
            () => send(stack.port, { path: `/v1/apps/${APP}/access-token`, headers: auth() })
          ),
          { concurrency: "unbounded" }
        )
        for (const answer of answers) {
          expect(answer.status).toBe(503)
          expect(errorCode(answer.text)).toBe(cause)
        }
        const ready = yield* send(stack.port, { path: "/readyz", headers: opsAuth() })
        expect(ready.status).toBe(503)
        const body = JSON.parse(ready.text)
        expect(body.ready).toBe(false)
        expect(body.credentials[0]).toMatchObject({
          app_id: APP,
          kind: "access_token",
          valid: false,
          last_error: { code: cause }
        })
        if (cause === "40164") expect(body.credentials[0].last_error.message).toContain("127.0.0.1")
        if (cause === "45009") expect(body.credentials[0].last_error.message).toContain("clear_quota")
        const stats = yield* stack.emulator.stats
        expect((stats.apps[APP]?.stableCalls ?? 0) + (stats.apps[APP]?.classicCalls ?? 0)).toBe(1)
      }).pipe(Effect.scoped))
  }
})
