import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option, Redacted, TestClock } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as SuiteEvents from "../../../src/families/wecomSuite/SuiteEvents.js"
import * as WeComSuite from "../../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteApi from "../../../src/families/wecomSuite/WeComSuiteApi.js"
import * as WeComSuiteConfig from "../../../src/families/wecomSuite/WeComSuiteConfig.js"
import { CorpId } from "../../../src/OwnerId.js"
import * as StoreSpec from "../../../src/StoreSpec.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import { TokenEngine, type TokenEngineShape } from "../../../src/TokenEngine.js"
import * as TokenStore from "../../../src/TokenStore.js"
import { suiteEngineLayer, validNow } from "../../support/engine.js"
import {
  openSuitePush,
  settle,
  SUITE,
  SUITE_SECRET as SECRET,
  suiteCredentials as suite,
  suiteRegistration
} from "../../support/fixtures.js"

// The suite families on the engine, the emulator as WeCom, TestClock driving
// both. The emulator's pushes are opened with `SuiteEvents` and handed to the
// engine as an intake does: the ticket put, an install's code exchanged and
// its permanent code put, an uninstall retiring the corp.

const CORP = CorpId.make("ww0c0c0c0c0c0c0c0c")
const owner = WeComSuite.corpOwner(suite.suiteId, CORP)

const stack = (
  pushes = true,
  store: Layer.Layer<TokenStore.TokenStore, TokenStore.StoreError> = TokenStore.layerMemory
) => {
  let engine: TokenEngineShape | undefined
  let api: WeComSuiteApi.WeComSuiteApiShape | undefined
  const intake = (event: SuiteEvents.SuiteEvent | SuiteEvents.Ignored): Effect.Effect<void, unknown> => {
    switch (event.InfoType) {
      case "suite_ticket":
        return engine!.put(SUITE, WeComSuite.suiteTicket, {
          value: event.SuiteTicket,
          expiresInSeconds: WeComSuite.SUITE_TICKET_SECONDS
        })
      case "create_auth":
      case "reset_permanent_code":
        return Effect.gen(function*() {
          const token = yield* engine!.get(SUITE, WeComSuite.suiteToken)
          const code = yield* api!.fetchPermanentCode(suite.suiteId, token.value, event.AuthCode)
          yield* engine!.put(WeComSuite.corpOwner(suite.suiteId, code.corpId), WeComSuite.permanentCode, {
            value: code.permanentCode,
            expiresInSeconds: WeComSuite.PERMANENT_CODE_SECONDS
          })
        })
      case "cancel_auth":
        return engine!.retire(WeComSuite.corpOwner(suite.suiteId, event.AuthCorpId))
      default:
        return Effect.void
    }
  }
  const transport: Emulator.PushTransport = (request) =>
    Effect.gen(function*() {
      if (engine === undefined) return { status: 503, body: "" }
      const opened = yield* openSuitePush(suite, request)
      yield* intake(opened.event)
      return { status: 200, body: "success" }
    }).pipe(Effect.orElseSucceed(() => ({ status: 503, body: "" })))
  const emulator = Emulator.layer({
    suites: [{
      ...suiteRegistration,
      ...(pushes ? { commandUrl: `http://server.test/wecom/suites/${SUITE}/events` } : {})
    }],
    pushTransport: transport
  })
  const engineLayer = suiteEngineLayer.pipe(
    Layer.tap((context) =>
      Effect.sync(() => {
        engine = Context.get(context, TokenEngine)
        api = Context.get(context, WeComSuiteApi.WeComSuiteApi)
      })
    ),
    Layer.provide(Layer.merge(WeComSuiteConfig.layerWith({ suites: [suite] }), store)),
    Layer.provide(Emulator.layerClient)
  )
  return Layer.provideMerge(engineLayer, emulator)
}

describe("WeComSuite families under TestClock", () => {
  it.scoped("ticket push → suite token → install → corp token and tickets → uninstall retires the corp", () =>
    Effect.gen(function*() {
      const engine = yield* TokenEngine
      const wecom = yield* Emulator.WeChatEmulator
      yield* settle(validNow(SUITE, WeComSuite.suiteToken))
      const suiteToken = yield* engine.get(SUITE, WeComSuite.suiteToken)
      expect(yield* wecom.wecomSuite.isValidSuiteToken(suiteToken.value, SUITE)).toBe(true)

      yield* wecom.wecomSuite.install(SUITE, CORP, 1000002)
      yield* settle(validNow(owner, WeComSuite.corpToken))
      const corpToken = yield* engine.get(owner, WeComSuite.corpToken)
      const jsapi = yield* engine.get(owner, WeComSuite.corpJsapiTicket)
      const agent = yield* engine.get(owner, WeComSuite.corpAgentTicket)
      expect(jsapi.value).not.toBe(agent.value)
      expect(corpToken.value.length).toBeGreaterThan(0)
      expect((yield* engine.get(owner, WeComSuite.permanentCode)).value).toBe(
        yield* wecom.wecomSuite.permanentCode(SUITE, CORP)
      )

      // A day of pushes every 10 minutes: the suite token is fetched about once per 2 h, never per push.
      yield* wecom.resetStats
      yield* TestClock.adjust(Duration.hours(24))
      const stats = yield* wecom.wecomSuite.stats(SUITE)
      expect(stats.suiteTokensIssued).toBeLessThanOrEqual(14)
      expect(stats.suiteTokenCalls).toBeLessThanOrEqual(14)
      expect(yield* validNow(owner, WeComSuite.corpToken)).toBe(true)

      yield* wecom.wecomSuite.revoke(SUITE, CORP)
      yield* settle(Effect.map(Effect.either(engine.get(owner, WeComSuite.corpToken)), (got) => got._tag === "Left"))
      const retired = yield* Effect.flip(engine.get(owner, WeComSuite.corpToken))
      expect(retired._tag).toBe("UnknownApp")
    }).pipe(Effect.provide(stack())))

  it.scoped("no ticket pushed (no command URL): the suite ticket is MissingInput naming the push URL", () =>
    Effect.gen(function*() {
      const engine = yield* TokenEngine
      const missing = yield* Effect.flip(engine.get(SUITE, WeComSuite.suiteTicket))
      expect(missing._tag).toBe("MissingInput")
      expect(missing.message).toContain(`/wecom/suites/${SUITE}/events`)
      expect(WeComSuite.corpParts(`${SUITE}:${CORP}`)).toEqual({ suiteId: SUITE, corpId: CORP })
      expect(WeComSuite.corpParts(`${SUITE}/${CORP}`)).toBeUndefined()
    }).pipe(Effect.provide(stack(false))))

  it.scoped("restart on a sealed file store: the permanent code is kept, sealed, and nothing is fetched again", () =>
    Effect.gen(function*() {
      const path = NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "suites-")), "tokens.json")
      const store = StoreSpec.layer({ _tag: "File", path }, {
        encryptionKey: Option.some(Redacted.make("00112233445566778899aabbccddeeff".repeat(2))),
        sealedKinds: [WeComSuite.permanentCode]
      })
      const code = yield* Effect.scoped(
        Effect.gen(function*() {
          const engine = yield* TokenEngine
          const wecom = yield* Emulator.WeChatEmulator
          // The file store opens after WeCom's first push gave up (answered 503): the next one comes 10 minutes on.
          yield* TestClock.adjust(Duration.minutes(10))
          yield* settle(validNow(SUITE, WeComSuite.suiteToken))
          yield* wecom.wecomSuite.install(SUITE, CORP, 1000002)
          yield* settle(validNow(owner, WeComSuite.corpToken))
          return (yield* engine.get(owner, WeComSuite.permanentCode)).value
        }).pipe(Effect.provide(stack(true, store)))
      )
      const text = readFileSync(path, "utf8")
      expect(text).toContain(owner)
      expect(text).not.toContain(code)
      expect(text).not.toContain(SECRET)
      // A new process: WeCom (a new emulator) is asked for nothing the store holds.
      yield* Effect.gen(function*() {
        const engine = yield* TokenEngine
        const wecom = yield* Emulator.WeChatEmulator
        yield* settle(validNow(owner, WeComSuite.corpToken))
        expect((yield* engine.get(owner, WeComSuite.permanentCode)).value).toBe(code)
        const stats = yield* wecom.wecomSuite.stats(SUITE)
        expect(stats.suiteTokenCalls).toBe(0)
        expect(stats.corpTokenCalls).toBe(0)
      }).pipe(Effect.provide(stack(true, store)))
    }))
})
