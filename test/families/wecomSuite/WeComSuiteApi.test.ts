import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Ref, TestClock } from "effect"
import * as WeComApi from "../../../src/families/wecom/WeComApi.js"
import * as SuiteEvents from "../../../src/families/wecomSuite/SuiteEvents.js"
import * as WeComSuiteApi from "../../../src/families/wecomSuite/WeComSuiteApi.js"
import * as WeComSuiteConfig from "../../../src/families/wecomSuite/WeComSuiteConfig.js"
import { CorpId } from "../../../src/OwnerId.js"
import * as OwnerId from "../../../src/OwnerId.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import { openSuitePush, SUITE, suiteCredentials as suite, suiteRegistration } from "../../support/fixtures.js"

// The suite API against the emulator's service-provider side, in process,
// TestClock driving both. Pushes go to a transport that opens them with
// `SuiteEvents`, as the intake will: the loopback from ticket to corp ticket.

const CORP = "ww0c0c0c0c0c0c0c0c"
const AGENT = 1000002

// The event (of a union member whose InfoType may be several) carrying `T`.
type EventOf<T> = SuiteEvents.SuiteEvent extends infer E ? E extends { readonly InfoType: infer I } ? T extends I ? E
    : never
  : never
  : never

// One emulator per test, with the events its pushes carried, newest last.
const setup = () => {
  const events = Ref.unsafeMake<ReadonlyArray<SuiteEvents.SuiteEvent | SuiteEvents.Ignored>>([])
  const transport: Emulator.PushTransport = (request) =>
    Effect.gen(function*() {
      const opened = yield* openSuitePush(suite, request)
      yield* Ref.update(events, (held) => [...held, opened.event])
      return { status: 200, body: "success" }
    })
  const last = <T extends SuiteEvents.SuiteEvent["InfoType"]>(infoType: T) =>
    Effect.flatMap(Ref.get(events), (held) => {
      const found = held.filter((event) => event.InfoType === infoType).at(-1)
      return found === undefined
        ? Effect.dieMessage(`no ${infoType} push`)
        : Effect.succeed(found as EventOf<T>)
    })
  const emulator = Emulator.layer({
    suites: [{
      ...suiteRegistration,
      commandUrl: "http://suite.test/events"
    }],
    pushTransport: transport
  })
  const apis = Layer.mergeAll(
    WeComSuiteApi.layer({ baseUrl: "http://wecom.test" }),
    WeComApi.layer({ baseUrl: "http://wecom.test" })
  ).pipe(Layer.provide(Emulator.layerClient))
  return { stack: Layer.provideMerge(apis, emulator), last }
}

const errorOf = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.flip(effect) // eslint-disable-line @typescript-eslint/no-explicit-any -- any context, as the effect under test has

describe("WeComSuiteApi against the emulator", () => {
  it.scoped("ticket push → suite token → install → permanent code → corp token → corp and agent tickets", () => {
    const { last, stack } = setup()
    return Effect.gen(function*() {
      const api = yield* WeComSuiteApi.WeComSuiteApi
      const wecom = yield* WeComApi.WeComApi
      const wechat = yield* Emulator.WeChatEmulator
      yield* TestClock.adjust(Duration.seconds(1))
      const ticket = yield* last("suite_ticket")
      expect(ticket.SuiteId).toBe(SUITE)
      const suiteToken = yield* api.fetchSuiteToken(suite, ticket.SuiteTicket)
      expect(suiteToken.expiresInSeconds).toBe(7200)
      expect(yield* wechat.wecomSuite.isValidSuiteToken(suiteToken.value, SUITE)).toBe(true)

      const preAuthCode = yield* api.createPreAuthCode(suite.suiteId, suiteToken.value)
      expect(preAuthCode.expiresInSeconds).toBe(1200)
      yield* api.setSessionInfo(suite.suiteId, suiteToken.value, preAuthCode.value, { authType: 1 })

      yield* wechat.wecomSuite.install(SUITE, CORP, AGENT)
      const created = yield* last("create_auth")
      const permanent = yield* api.fetchPermanentCode(suite.suiteId, suiteToken.value, created.AuthCode)
      expect(permanent.corpId).toBe(CORP)
      expect(permanent.permanentCode).toBe(yield* wechat.wecomSuite.permanentCode(SUITE, CORP))
      // A temporary code is good once.
      const reused = yield* errorOf(api.fetchPermanentCode(suite.suiteId, suiteToken.value, created.AuthCode))
      expect(reused).toMatchObject({ _tag: "WeChatApiError", errcode: 40078 })

      const info = yield* api.fetchAuthInfo(suite.suiteId, suiteToken.value, permanent.corpId, permanent.permanentCode)
      expect(info.agentIds).toEqual([AGENT])
      const corpToken = yield* api.fetchCorpToken(
        suite.suiteId,
        suiteToken.value,
        permanent.corpId,
        permanent.permanentCode
      )
      const owner = OwnerId.weCom(permanent.corpId, String(AGENT) as OwnerId.AgentKey)
      expect(yield* wechat.wecom.isValidToken(corpToken.value, owner)).toBe(true)
      const corpTicket = yield* wecom.fetchCorpTicket(owner, corpToken.value)
      const agentTicket = yield* wecom.fetchAgentTicket(owner, corpToken.value)
      expect(yield* wechat.wecom.isValidTicket(corpTicket.value, "corp", owner)).toBe(true)
      expect(yield* wechat.wecom.isValidTicket(agentTicket.value, "agent", owner)).toBe(true)

      // Uninstalled: cancel_auth is pushed and the permanent code is refused from then on.
      yield* wechat.wecomSuite.revoke(SUITE, CORP)
      expect((yield* last("cancel_auth")).AuthCorpId).toBe(CORP)
      const revoked = yield* errorOf(
        api.fetchCorpToken(suite.suiteId, suiteToken.value, permanent.corpId, permanent.permanentCode)
      )
      expect(revoked).toMatchObject({ _tag: "WeChatApiError", errcode: 40084 })
      expect(JSON.stringify(revoked)).not.toContain(permanent.permanentCode)
    }).pipe(Effect.provide(stack))
  })

  it.scoped("suite tickets live 30 minutes, the suite token 2 hours; a lost ticket points at the command URL", () => {
    const { last, stack } = setup()
    return Effect.gen(function*() {
      const api = yield* WeComSuiteApi.WeComSuiteApi
      const wechat = yield* Emulator.WeChatEmulator
      yield* TestClock.adjust(Duration.seconds(1))
      const first = (yield* last("suite_ticket")).SuiteTicket
      // Two pushes later (20 minutes) the first ticket still works…
      yield* TestClock.adjust(Duration.minutes(25))
      expect((yield* api.fetchSuiteToken(suite, first)).value).toBeTruthy()
      // …and after 30 minutes it is refused, while the newest works.
      yield* TestClock.adjust(Duration.minutes(6))
      const stale = yield* errorOf(api.fetchSuiteToken(suite, first))
      expect(stale).toMatchObject({ _tag: "WeChatApiError", errcode: 40085 })
      expect(stale.message).toContain("command URL")
      const newest = (yield* last("suite_ticket")).SuiteTicket
      const token = yield* api.fetchSuiteToken(suite, newest)

      // Expired suite token: 40082, a credential failure the token's refresh repairs.
      yield* TestClock.adjust(Duration.hours(3))
      const expired = yield* errorOf(api.createPreAuthCode(suite.suiteId, token.value))
      expect(expired).toMatchObject({ _tag: "InvalidCredential", errcode: 40082 })
      const forged = yield* errorOf(api.createPreAuthCode(suite.suiteId, "forged"))
      expect(forged).toMatchObject({ _tag: "InvalidCredential", errcode: 40082 })

      // Tickets lost: nothing held is accepted, nothing new comes until pushes resume.
      const held = (yield* last("suite_ticket")).SuiteTicket
      yield* wechat.wecomSuite.loseTickets(SUITE)
      yield* TestClock.adjust(Duration.minutes(10))
      expect((yield* last("suite_ticket")).SuiteTicket).toBe(held)
      expect(yield* errorOf(api.fetchSuiteToken(suite, held))).toMatchObject({ errcode: 40085 })
      expect(yield* errorOf(api.fetchSuiteToken({ ...suite, secret: suite.messageToken }, held))).toMatchObject({
        _tag: "InvalidAppSecret"
      })
      yield* wechat.wecomSuite.resumePushes(SUITE)
      yield* TestClock.adjust(Duration.minutes(10))
      expect(yield* api.fetchSuiteToken(suite, (yield* last("suite_ticket")).SuiteTicket)).toBeTruthy()
    }).pipe(Effect.provide(stack))
  })

  it.scoped("reset_permanent_code: the old code dies, the pushed temporary code gives the new one", () => {
    const { last, stack } = setup()
    return Effect.gen(function*() {
      const api = yield* WeComSuiteApi.WeComSuiteApi
      const wechat = yield* Emulator.WeChatEmulator
      yield* TestClock.adjust(Duration.seconds(1))
      const token = (yield* api.fetchSuiteToken(suite, (yield* last("suite_ticket")).SuiteTicket)).value
      const [corp] = yield* wechat.wecomSuite.generateCorps(SUITE, 3)
      const corpId = CorpId.make(corp!.corpId)
      yield* api.fetchCorpToken(suite.suiteId, token, corpId, corp!.permanentCode)
      yield* wechat.wecomSuite.resetPermanentCode(SUITE, corpId)
      const reset = yield* last("reset_permanent_code")
      expect(yield* errorOf(api.fetchCorpToken(suite.suiteId, token, corpId, corp!.permanentCode))).toMatchObject({
        errcode: 40084
      })
      const renewed = yield* api.fetchPermanentCode(suite.suiteId, token, reset.AuthCode)
      expect(renewed.permanentCode).not.toBe(corp!.permanentCode)
      expect(yield* api.fetchCorpToken(suite.suiteId, token, corpId, renewed.permanentCode)).toBeTruthy()
      yield* wechat.wecomSuite.changeAuth(SUITE, corpId)
      expect((yield* last("change_auth")).AuthCorpId).toBe(corpId)
    }).pipe(Effect.provide(stack))
  })

  it.scoped("the provider token, and a wrong provider secret named without the secret", () => {
    const { stack } = setup()
    return Effect.gen(function*() {
      const api = yield* WeComSuiteApi.WeComSuiteApi
      const wechat = yield* Emulator.WeChatEmulator
      const provider = Option.getOrThrow(
        Option.fromNullable(
          WeComSuiteConfig.parseProvider("WECOM_PROVIDER", "ww00000000000000aa:providerSecretXYZ").pipe(
            (parsed) => parsed._tag === "Right" ? parsed.right : undefined
          )
        )
      )
      yield* wechat.wecomSuite.registerProvider(provider.corpId, "providerSecretXYZ")
      const token = yield* api.fetchProviderToken(provider)
      expect(token.expiresInSeconds).toBe(7200)
      expect((yield* api.fetchProviderToken(provider)).value).toBe(token.value)
      yield* wechat.wecomSuite.registerProvider(provider.corpId, "another")
      const wrong = yield* errorOf(api.fetchProviderToken(provider))
      expect(wrong).toMatchObject({ _tag: "InvalidAppSecret" })
      expect(JSON.stringify(wrong)).not.toContain("providerSecretXYZ")
    }).pipe(Effect.provide(stack))
  })
})
