/**
 * docs/guarantees.md's worst case of upstream fetches per owner (723 an hour: the
 * fetch bucket), driven for ten simulated minutes (TestClock; the bound is
 * linear in the window) against the worst answers a token endpoint
 * can give while still answering: the shortest lifetime accepted, failures
 * alternating with it, and tokens that die the moment they are used, with
 * clients that hammer compare-and-refresh with every token that failed them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, TestClock } from "effect"
import * as NodeFs from "node:fs"
import { AccessToken } from "../../src/AccessToken.js"
import * as Backoff from "../../src/Backoff.js"
import * as RefreshPolicy from "../../src/RefreshPolicy.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as Harness from "../support/engine.js"
import { APP, engineLayer, tokenFetches, withEngine } from "../support/engine.js"

const HOUR = 3_600_000
// Ten simulated minutes: the bucket's bound is linear in the window, and an
// hour of one-second steps costs a minute of CPU per case.
const WINDOW = 600_000
const BOUND = Backoff.maxFetches(WINDOW)
const CLIENTS = 2
// Each client asks once a simulated second.
const CLIENT_PAUSE = Duration.seconds(1)

// A client: takes the token, uses it, and when WeChat answers 40001 reports
// it with a compare-and-refresh, as docs/server.md tells clients to.
const client = (killOnUse: boolean) =>
  Effect.gen(function*() {
    const tokens = yield* AccessToken
    const emulator = yield* Emulator.WeChatEmulator
    const held = yield* Effect.either(tokens.get(APP))
    if (Either.isRight(held)) {
      const token = held.right.value
      if (killOnUse) yield* emulator.killTokens(APP)
      if (!(yield* emulator.isValidToken(token))) yield* Effect.either(tokens.refresh(APP, token))
    }
    yield* Effect.sleep(CLIENT_PAUSE)
  }).pipe(Effect.forever)

// One owner for the window: the clients run in fibers of their own (a fetch
// held back by the bucket waits on the clock), the clock moves a second at a time.
const aWindow = (killOnUse: boolean) =>
  Effect.gen(function*() {
    const clients = yield* Effect.forEach(Array.from({ length: CLIENTS }), () => Effect.fork(client(killOnUse)))
    for (let second = 0; second < WINDOW / 1_000; second++) yield* TestClock.adjust(Duration.seconds(1))
    yield* Effect.forEach(clients, Fiber.interrupt, { discard: true })
    return yield* tokenFetches()
  })

describe("a fetch storm is impossible, whatever the token endpoint answers", () => {
  it("docs/guarantees.md states the bound the policy enforces", () => {
    const guide = NodeFs.readFileSync(new URL("../../docs/guarantees.md", import.meta.url), "utf8")
    expect(guide).toContain(`at most ${Backoff.maxFetches(HOUR)} fetches an hour`)
    expect(guide).toContain(`at most ${Backoff.maxFailingFetches(HOUR)} (backoff`)
  })

  it.scoped(
    `the shortest lifetime accepted (10 s) on every answer: at most ${BOUND} fetches in ten minutes`,
    () =>
      withEngine(
        engineLayer(),
        Effect.gen(function*() {
          const fetches = yield* aWindow(false)
          // Each 10 s token is usable for 5 s: the clients keep the engine fetching all hour.
          expect(fetches).toBeGreaterThan(BOUND / 2)
          expect(fetches).toBeLessThanOrEqual(BOUND)
        })
      ).pipe(Effect.provide(Harness.emulatorLayer({ tokenLifetime: Duration.toMillis(RefreshPolicy.MIN_LIFETIME) }))),
    300_000
  )

  it.scoped(`failures alternating with 10 s tokens: at most ${BOUND} fetches in ten minutes`, () =>
    withEngine(
      engineLayer(),
      Effect.gen(function*() {
        const fetches = yield* aWindow(false)
        expect(fetches).toBeGreaterThan(Backoff.maxFailingFetches(WINDOW))
        expect(fetches).toBeLessThanOrEqual(BOUND)
      })
    ).pipe(
      // More answers than the bound, from the engine's first fetch on: the window never runs out of them.
      Effect.provide(Harness.withFaults(
        Harness.emulatorLayer(),
        Array.from({ length: BOUND }, (_, answer): ReadonlyArray<Emulator.FaultRule> => [
          { fault: Emulator.Fault.HttpStatus(500), endpoints: ["token"], times: 1 },
          {
            fault: Emulator.Fault.Malformed(`{"access_token":"TINY_${answer}","expires_in":10}`),
            endpoints: ["token"],
            times: 1
          }
        ]).flat()
      ))
    ), 300_000)

  it.scoped(
    `tokens that die when used, and clients hammering compare-and-refresh with each: at most ${BOUND} fetches in ten minutes`,
    () =>
      withEngine(
        engineLayer(),
        Effect.gen(function*() {
          const fetches = yield* aWindow(true)
          expect(fetches).toBeGreaterThan(BOUND / 2)
          expect(fetches).toBeLessThanOrEqual(BOUND)
        })
      ).pipe(Effect.provide(Harness.emulatorLayer())),
    300_000
  )
})
