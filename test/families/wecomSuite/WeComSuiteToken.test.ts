import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, TestClock } from "effect"
import * as WeComSuite from "../../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteConfig from "../../../src/families/wecomSuite/WeComSuiteConfig.js"
import { WeComSuiteToken, type WeComSuiteTokenShape } from "../../../src/families/wecomSuite/WeComSuiteToken.js"
import * as WeComSuiteTokenModule from "../../../src/families/wecomSuite/WeComSuiteToken.js"
import { CorpId } from "../../../src/OwnerId.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import * as TokenEngineModule from "../../../src/TokenEngine.js"
import * as TokenStore from "../../../src/TokenStore.js"
import { suiteEngineLayer } from "../../support/engine.js"
import { openSuitePush, settle, SUITE, suiteCredentials as suite, suiteRegistration } from "../../support/fixtures.js"

// The service as a server's intake uses it: each push the emulator (WeCom)
// sends is opened with `SuiteEvents` and handed to `acceptOnce`/`accept`;
// answered `success` only once that returned.

const CORP = CorpId.make("ww0d0d0d0d0d0d0d0d")

// What the intake answered per push, in order: "success", "replayed" or "503".
const answers: Array<string> = []

const stack = () => {
  let service: WeComSuiteTokenShape | undefined
  const transport: Emulator.PushTransport = (request) =>
    Effect.gen(function*() {
      if (service === undefined) return { status: 503, body: "" }
      const opened = yield* openSuitePush(suite, request)
      const event = opened.event
      const ran = event.InfoType === "ignored"
        ? true
        : yield* service.acceptOnce(SUITE, opened.replayKey, opened.replayTtlMillis, service.accept(SUITE, event))
      answers.push(ran ? "success" : "replayed")
      return { status: 200, body: "success" }
    }).pipe(Effect.orElseSucceed(() => {
      answers.push("503")
      return { status: 503, body: "" }
    }))
  const emulator = Emulator.layer({
    suites: [{
      ...suiteRegistration,
      commandUrl: `http://server.test/wecom/suites/${SUITE}/events`
    }],
    pushTransport: transport
  })
  const serviceLayer = WeComSuiteTokenModule.layerView.pipe(
    Layer.provideMerge(suiteEngineLayer),
    Layer.provideMerge(Layer.merge(WeComSuiteConfig.layerWith({ suites: [suite] }), TokenStore.layerMemory)),
    Layer.tap((context) => Effect.sync(() => service = Context.get(context, WeComSuiteToken))),
    Layer.provide(Emulator.layerClient)
  )
  return Layer.provideMerge(serviceLayer, emulator)
}

const succeeds = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.either(effect), (result) => result._tag === "Right")

describe("WeComSuiteToken", () => {
  it.scoped("install: the permanent code is stored before the push is answered; corp served, listed, signed; uninstall retires it", () =>
    Effect.gen(function*() {
      answers.length = 0
      const suites = yield* WeComSuiteToken
      const wecom = yield* Emulator.WeChatEmulator
      yield* settle(succeeds(suites.suiteToken(SUITE)))
      const token = yield* suites.suiteToken(SUITE)
      expect(yield* wecom.wecomSuite.isValidSuiteToken(token.value, SUITE)).toBe(true)

      yield* wecom.wecomSuite.install(SUITE, CORP, 1000007)
      yield* settle(Effect.sync(() => answers.length >= 2))
      // The push was answered: its permanent code is held at once, WeCom's very one.
      const engine = yield* TokenEngineModule.TokenEngine
      const code = yield* engine.get(WeComSuite.corpOwner(suite.suiteId, CORP), WeComSuite.permanentCode)
      expect(code.value).toBe(yield* wecom.wecomSuite.permanentCode(SUITE, CORP))

      const corpToken = yield* suites.corpToken(SUITE, CORP)
      expect(corpToken.value.length).toBeGreaterThan(0)
      const page = yield* suites.corps(SUITE, { limit: 10 })
      expect(page.corps.map((corp) => corp.corpId)).toEqual([CORP])
      const signed = yield* suites.jsSdkConfig(SUITE, CORP, "https://shop.example.com/page?x=1#top")
      expect(signed.config.appId).toBe(CORP)
      expect(signed.agentConfig?.agentid).toBe("1000007")
      expect(signed.agentConfig?.corpid).toBe(CORP)

      yield* wecom.wecomSuite.revoke(SUITE, CORP)
      yield* settle(Effect.map(succeeds(suites.corpToken(SUITE, CORP)), (held) => !held))
      const retired = yield* Effect.flip(suites.corpToken(SUITE, CORP))
      expect(retired._tag).toBe("UnknownApp")
      expect((yield* suites.corps(SUITE, { limit: 10 })).corps).toEqual([])
      expect(answers.every((answer) => answer === "success")).toBe(true)
    }).pipe(Effect.provide(stack())))

  it.scoped(
    "a simulated day of ticket pushes every 10 minutes: fetches at the limit, every token valid when handed out",
    () =>
      Effect.gen(function*() {
        answers.length = 0
        const suites = yield* WeComSuiteToken
        const wecom = yield* Emulator.WeChatEmulator
        const controls = wecom.wecomSuite
        yield* settle(succeeds(suites.suiteToken(SUITE)))
        yield* controls.install(SUITE, CORP, 1000007)
        yield* settle(succeeds(suites.corpToken(SUITE, CORP)))
        yield* controls.resetStats
        const dead: Array<string> = []
        for (let minute = 1; minute <= 24 * 60; minute++) {
          yield* TestClock.adjust(Duration.minutes(1))
          const suiteToken = yield* suites.suiteToken(SUITE)
          if (!(yield* controls.isValidSuiteToken(suiteToken.value, SUITE))) dead.push(`suite token, minute ${minute}`)
          const corpToken = yield* suites.corpToken(SUITE, CORP)
          if (!(yield* wecom.wecom.isValidToken(corpToken.value))) dead.push(`corp token, minute ${minute}`)
        }
        expect(dead).toEqual([])
        const stats = yield* controls.stats(SUITE)
        // 7,200 s tokens, refreshed 300 s early (jitter only later): at most ⌈86400 / 6900⌉ = 13 a day each.
        expect(stats.suiteTokensIssued).toBeGreaterThanOrEqual(12)
        expect(stats.suiteTokensIssued).toBeLessThanOrEqual(13)
        expect(stats.suiteTokenCalls).toBe(stats.suiteTokensIssued)
        expect(stats.corpTokenCalls).toBeGreaterThanOrEqual(12)
        expect(stats.corpTokenCalls).toBeLessThanOrEqual(13)
        // The permanent code is used, never asked for again.
        expect(stats.permanentCodeCalls).toBe(0)
        // A ticket every 10 minutes, every one delivered and taken at the first attempt.
        expect(stats.pushesDelivered).toBeGreaterThanOrEqual(144)
        expect(stats.pushesAbandoned).toBe(0)
        expect(answers.every((answer) => answer === "success")).toBe(true)
      }).pipe(Effect.provide(stack())),
    { timeout: 120_000 }
  )

  it.scoped("an older suite_ticket never replaces a newer one; a replayed push changes nothing", () =>
    Effect.gen(function*() {
      const suites = yield* WeComSuiteToken
      const engine = yield* TokenEngineModule.TokenEngine
      yield* settle(succeeds(suites.suiteToken(SUITE)))
      const held = yield* engine.get(SUITE, WeComSuite.suiteTicket)
      const now = Math.floor((yield* TestClock.currentTimeMillis) / 1000)
      const older = {
        InfoType: "suite_ticket" as const,
        SuiteId: SUITE,
        TimeStamp: now - 120,
        SuiteTicket: "olderTicket"
      }
      yield* suites.accept(SUITE, older)
      expect((yield* engine.get(SUITE, WeComSuite.suiteTicket)).value).toBe(held.value)
      const newer = { ...older, TimeStamp: now + 1, SuiteTicket: "newerTicket" }
      expect(yield* suites.acceptOnce(SUITE, "sig-1", 60_000, suites.accept(SUITE, newer))).toBe(true)
      expect((yield* engine.get(SUITE, WeComSuite.suiteTicket)).value).toBe("newerTicket")
      // The same push again (same signature): dropped, even though its write would differ now.
      const replay = suites.accept(SUITE, { ...newer, SuiteTicket: "replayed" })
      expect(yield* suites.acceptOnce(SUITE, "sig-1", 60_000, replay)).toBe(false)
      expect((yield* engine.get(SUITE, WeComSuite.suiteTicket)).value).toBe("newerTicket")
      expect((yield* Effect.flip(suites.corpToken(SUITE, "not-a-corp")))._tag).toBe("UnknownApp")
      expect((yield* Effect.flip(suites.suiteToken("ww0000")))._tag).toBe("UnknownApp")
    }).pipe(Effect.provide(stack())))
})
