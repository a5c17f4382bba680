import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import { createHash } from "node:crypto"
import * as WeCom from "../../../src/families/wecom/WeCom.js"
import * as WeComApi from "../../../src/families/wecom/WeComApi.js"
import * as WeComConfig from "../../../src/families/wecom/WeComConfig.js"
import { WeComToken } from "../../../src/families/wecom/WeComToken.js"
import * as WeComTokenLayer from "../../../src/families/wecom/WeComToken.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import * as TokenStore from "../../../src/TokenStore.js"

const CORP = "ww0123456789abcdef"
const AGENT = "1000002"
const OTHER = "1000003"
const SECRET = "agent-secret-of-1000002"
const OTHER_SECRET = "agent-secret-of-1000003"
const CONTACTS_SECRET = "contacts-sync-secret"
const owner = (agent: string) => `${CORP}/${agent}`

const corp: Emulator.WeComCorpRegistration = {
  corpId: CORP,
  apps: [
    { agent: AGENT, secret: SECRET },
    { agent: OTHER, secret: OTHER_SECRET },
    { agent: "contacts", secret: CONTACTS_SECRET }
  ]
}

const configured = [
  WeComConfig.app(CORP, AGENT, SECRET),
  WeComConfig.app(CORP, OTHER, OTHER_SECRET),
  WeComConfig.app(CORP, "contacts", CONTACTS_SECRET)
]

/** `WeComToken` over an engine running the WeCom families, calling WeCom at `baseUrl` through `httpClient`. */
const weComLayer = <R>(
  httpClient: Layer.Layer<HttpClient.HttpClient, never, R>,
  options: { readonly baseUrl?: string; readonly apps?: ReadonlyArray<WeComConfig.WeComAppCredentials> } = {}
) =>
  WeComTokenLayer.layer().pipe(
    Layer.provide(Layer.mergeAll(
      WeComConfig.layer({ apps: options.apps ?? configured }),
      WeComApi.layer({ baseUrl: options.baseUrl ?? "http://qyapi.test" }),
      TokenStore.layerMemory
    )),
    Layer.provide(httpClient)
  )

const inProcess = (options: { readonly apps?: ReadonlyArray<WeComConfig.WeComAppCredentials> } = {}) =>
  weComLayer(Emulator.layerClient, options)

const emulatorLayer = (options: Emulator.EmulatorOptions = {}) => Emulator.layer({ corps: [corp], ...options })

const statsOf = (key: string) => Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.wecom.stats(key))

// The JS-SDK signature recomputed here from its definition, apart from the library.
const sha1Signature = (ticket: string, nonceStr: string, timestamp: number, url: string) =>
  createHash("sha1").update(`jsapi_ticket=${ticket}&noncestr=${nonceStr}&timestamp=${timestamp}&url=${url}`).digest(
    "hex"
  )

describe("WeCom family", () => {
  it.scoped("a simulated day: 13 gettoken per agent, one corp ticket and one agent ticket per lifetime, all valid when handed out", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        for (let minute = 0; minute < 24 * 60; minute += 10) {
          for (const agent of [AGENT, OTHER]) {
            const token = yield* wecom.get(CORP, agent)
            expect(yield* emulator.wecom.isValidToken(token.value, owner(agent))).toBe(true)
            const corpTicket = yield* wecom.jsapiTicket(CORP, agent)
            expect(yield* emulator.wecom.isValidTicket(corpTicket.value, "corp", owner(agent))).toBe(true)
            const agentTicket = yield* wecom.agentTicket(CORP, agent)
            expect(yield* emulator.wecom.isValidTicket(agentTicket.value, "agent", owner(agent))).toBe(true)
          }
          yield* TestClock.adjust(Duration.minutes(10))
        }
        // 7,200 s tokens refreshed in their last 5 minutes: ⌈86400 / 6900⌉.
        for (const agent of [AGENT, OTHER, "contacts"]) {
          expect((yield* emulator.wecom.stats(owner(agent))).gettokenCalls).toBe(13)
          expect((yield* emulator.wecom.stats(owner(agent))).tokensIssued).toBe(13)
        }
        // One corp ticket for the corp, whichever agent asks; one agent ticket per agent.
        expect((yield* emulator.wecom.stats(CORP)).corpTicketCalls).toBe(13)
        expect((yield* emulator.wecom.stats(owner(AGENT))).agentTicketCalls).toBe(13)
        expect((yield* emulator.wecom.stats(owner(OTHER))).agentTicketCalls).toBe(13)
        expect((yield* emulator.wecom.stats(owner("contacts"))).agentTicketCalls).toBe(0)
      }).pipe(Effect.provide(inProcess()))
    }).pipe(Effect.provide(emulatorLayer())))

  it.scoped("a wrong secret: a typed error naming the app, never the secret; at most 14 gettoken an hour however many callers", () =>
    Effect.gen(function*() {
      const wrong = WeComConfig.app(CORP, AGENT, "a-secret-that-was-reset")
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        for (let minute = 0; minute < 60; minute++) {
          const results = yield* Effect.forEach(
            Array.from({ length: 20 }),
            () => Effect.flip(wecom.get(CORP, AGENT)),
            { concurrency: "unbounded" }
          )
          for (const result of results) {
            expect(result._tag).toBe("InvalidAppSecret")
            expect(result.message).toContain(owner(AGENT))
            expect(result.message).not.toContain("a-secret-that-was-reset")
          }
          yield* TestClock.adjust(Duration.minutes(1))
        }
        const fetches = (yield* statsOf(CORP)).gettokenCalls
        expect(fetches).toBeGreaterThanOrEqual(1)
        expect(fetches).toBeLessThanOrEqual(14)
      }).pipe(Effect.provide(inProcess({ apps: [wrong] })))
    }).pipe(Effect.provide(emulatorLayer())))

  it.scoped("60020 (caller IP not trusted): a typed configuration error that says what to fix; at most 14 gettoken an hour", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        for (let minute = 0; minute < 60; minute++) {
          const result = yield* Effect.flip(wecom.get(CORP, AGENT))
          expect(result).toMatchObject({ _tag: "WeChatApiError", errcode: 60020 })
          expect(result.message).toContain("trusted IPs")
          expect(result.message).not.toContain(SECRET)
          yield* TestClock.adjust(Duration.minutes(1))
        }
        expect((yield* statsOf(CORP)).gettokenCalls).toBeLessThanOrEqual(14)
      }).pipe(Effect.provide(inProcess({ apps: [WeComConfig.app(CORP, AGENT, SECRET)] })))
    }).pipe(
      Effect.provide(
        Emulator.layer({
          corps: [{ corpId: CORP, apps: [{ agent: AGENT, secret: SECRET, trustedIps: ["203.0.113.7"] }] }]
        })
      )
    ))

  it.scoped("an unknown corp id (40013) and an unconfigured agent are told apart", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        const unknownCorp = yield* Effect.flip(wecom.get("wwffffffffffffffff", AGENT))
        expect(unknownCorp._tag === "WeChatApiError" && unknownCorp.errcode).toBe(40013)
        expect(unknownCorp.message).toContain("WECOM_APPS")
        const unconfigured = yield* Effect.flip(wecom.get(CORP, "1000009"))
        expect(unconfigured._tag).toBe("UnknownApp")
        // A special secret has no agent ticket.
        expect((yield* Effect.flip(wecom.agentTicket(CORP, "contacts")))._tag).toBe("UnknownApp")
      }).pipe(
        Effect.provide(inProcess({ apps: [WeComConfig.app("wwffffffffffffffff", AGENT, SECRET), ...configured] }))
      )
    }).pipe(Effect.provide(emulatorLayer())))

  it.scoped("jssdk-config: both signatures recomputed independently; agentConfig only for an AgentId", () =>
    Effect.gen(function*() {
      // Set before the engine starts, so its schedule has nothing to catch up on.
      yield* TestClock.setTime(1_750_000_000_000)
      yield* Effect.gen(function*() {
        const wecom = yield* WeComToken
        const url = "https://work.example.com/page?x=1&y=中文#section"
        const signed = yield* wecom.jsSdkConfig(CORP, AGENT, url)
        const corpTicket = (yield* wecom.jsapiTicket(CORP, AGENT)).value
        const agentTicket = (yield* wecom.agentTicket(CORP, AGENT)).value
        expect(signed.config.appId).toBe(CORP)
        expect(signed.config.timestamp).toBe(1_750_000_000)
        expect(signed.config.nonceStr).toMatch(/^[A-Za-z0-9]{16}$/)
        const page = "https://work.example.com/page?x=1&y=中文"
        expect(signed.config.signature).toBe(
          sha1Signature(corpTicket, signed.config.nonceStr, signed.config.timestamp, page)
        )
        const agentConfig = signed.agentConfig!
        expect(agentConfig.corpid).toBe(CORP)
        expect(agentConfig.agentid).toBe(AGENT)
        expect(agentConfig.signature).toBe(
          sha1Signature(agentTicket, agentConfig.nonceStr, agentConfig.timestamp, page)
        )
        expect(agentConfig.signature).not.toBe(signed.config.signature)
        const contacts = yield* wecom.jsSdkConfig(CORP, "contacts", url)
        expect(contacts.agentConfig).toBeUndefined()
        expect(contacts.config.signature).toBe(
          sha1Signature(corpTicket, contacts.config.nonceStr, contacts.config.timestamp, page)
        )
        expect((yield* Effect.flip(wecom.jsSdkConfig(CORP, AGENT, "/relative")))._tag).toBe("InvalidPageUrl")
      }).pipe(Effect.provide(inProcess()))
    }).pipe(Effect.provide(emulatorLayer())))

  it("the corp ticket holder is the corp's first app with an AgentId", () => {
    expect(WeCom.corpTicketHolder([configured[2]!, configured[1]!, configured[0]!], CORP)).toBe(owner(OTHER))
    expect(WeCom.corpTicketHolder([configured[2]!], CORP)).toBe(owner("contacts"))
    expect(WeCom.corpTicketHolder(configured, "wwffffffffffffffff")).toBeUndefined()
  })

  describe("over real loopback HTTP", () => {
    const served = Emulator.serve({ corps: [corp] })
    const live = <A, E>(
      body: (emulator: Emulator.WeChatEmulatorShape, url: string) => Effect.Effect<A, E, WeComToken>
    ) =>
      Effect.gen(function*() {
        const { emulator, url } = yield* served
        return yield* body(emulator, url).pipe(Effect.provide(weComLayer(FetchHttpClient.layer, { baseUrl: url })))
      }).pipe(Effect.scoped)

    it.live("500 concurrent cold gets for one agent → 1 gettoken", () =>
      live((emulator) =>
        Effect.gen(function*() {
          const wecom = yield* WeComToken
          const answers = yield* Effect.forEach(Array.from({ length: 500 }), () => wecom.get(CORP, AGENT), {
            concurrency: "unbounded"
          })
          expect(new Set(answers.map((token) => token.value)).size).toBe(1)
          expect((yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls).toBe(1)
          expect(yield* emulator.wecom.isValidToken(answers[0]!.value, owner(AGENT))).toBe(true)
        })
      ))

    it.live("two agents of one corp → two tokens, never mixed: one agent's token used for the other answers 301002", () =>
      live((emulator, url) =>
        Effect.gen(function*() {
          const wecom = yield* WeComToken
          const [first, second] = yield* Effect.all([wecom.get(CORP, AGENT), wecom.get(CORP, OTHER)], {
            concurrency: 2
          })
          expect(first.value).not.toBe(second.value)
          expect(yield* emulator.wecom.isValidToken(first.value, owner(AGENT))).toBe(true)
          expect(yield* emulator.wecom.isValidToken(first.value, owner(OTHER))).toBe(false)
          const agentGet = (token: string, agentId: string) =>
            Effect.promise(() =>
              fetch(`${url}/cgi-bin/agent/get?access_token=${token}&agentid=${agentId}`).then((response) =>
                response.json()
              )
            )
          expect(yield* agentGet(first.value, AGENT)).toMatchObject({ errcode: 0 })
          expect(yield* agentGet(second.value, OTHER)).toMatchObject({ errcode: 0 })
          expect(yield* agentGet(first.value, OTHER)).toMatchObject({ errcode: 301002 })
          expect(yield* agentGet(second.value, AGENT)).toMatchObject({ errcode: 301002 })
          expect((yield* emulator.wecom.stats(owner(AGENT))).wrongAgentUses).toBe(1)
          expect((yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls).toBe(1)
          expect((yield* emulator.wecom.stats(owner(OTHER))).gettokenCalls).toBe(1)
        })
      ))

    it.live("ticket herd: 300 callers of each ticket, from two agents → 1 corp ticket fetch, 1 agent ticket fetch per agent", () =>
      live((emulator) =>
        Effect.gen(function*() {
          const wecom = yield* WeComToken
          const calls = Array.from({ length: 300 }, (_, i) => {
            const agent = i % 2 === 0 ? AGENT : OTHER
            return Effect.all([wecom.jsapiTicket(CORP, agent), wecom.agentTicket(CORP, agent)])
          })
          const answers = yield* Effect.all(calls, { concurrency: "unbounded" })
          expect(new Set(answers.map(([corpTicket]) => corpTicket.value)).size).toBe(1)
          expect(new Set(answers.map(([, agentTicket]) => agentTicket.value)).size).toBe(2)
          expect((yield* emulator.wecom.stats(CORP)).corpTicketCalls).toBe(1)
          expect((yield* emulator.wecom.stats(owner(AGENT))).agentTicketCalls).toBe(1)
          expect((yield* emulator.wecom.stats(owner(OTHER))).agentTicketCalls).toBe(1)
        })
      ))

    it.live("a token WeCom ended early → one compare-and-refresh, however many callers report it; a ticket fetch on it recovers", () =>
      live((emulator) =>
        Effect.gen(function*() {
          const wecom = yield* WeComToken
          const stale = yield* wecom.get(CORP, AGENT)
          yield* emulator.wecom.endToken(stale.value)
          const reported = Array.from({ length: 100 }, () => wecom.refresh(CORP, AGENT, stale.value))
          const [fresh, agentTicket] = yield* Effect.all([
            Effect.all(reported, { concurrency: "unbounded" }),
            wecom.agentTicket(CORP, AGENT)
          ], { concurrency: "unbounded" })
          expect(new Set(fresh.map((token) => token.value)).size).toBe(1)
          expect(fresh[0]!.value).not.toBe(stale.value)
          expect(yield* emulator.wecom.isValidToken(fresh[0]!.value, owner(AGENT))).toBe(true)
          expect(yield* emulator.wecom.isValidTicket(agentTicket.value, "agent", owner(AGENT))).toBe(true)
          expect((yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls).toBe(2)
          // A stale report after the replacement answers the current token without a fetch.
          expect((yield* wecom.refresh(CORP, AGENT, stale.value)).value).toBe(fresh[0]!.value)
          expect((yield* emulator.wecom.stats(owner(AGENT))).gettokenCalls).toBe(2)
        })
      ))
  })
})
