import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as Emulator from "../../src/testing/WeChatEmulator.js"

const CORP = "ww0123456789abcdef"
const AGENT = "1000002"
const OTHER = "1000003"

const corp: Emulator.WeComCorpRegistration = {
  corpId: CORP,
  apps: [{ agent: AGENT, secret: "secret-a" }, { agent: OTHER, secret: "secret-b" }]
}

const call = (emulator: Emulator.WeChatEmulatorShape, path: string, query: Record<string, string>) =>
  Effect.map(
    emulator.handle({ method: "GET", path, query: new URLSearchParams(query), body: "" }),
    (response) => response._tag === "Respond" ? JSON.parse(response.body) as Record<string, unknown> : { dropped: true }
  )

const gettoken = (emulator: Emulator.WeChatEmulatorShape, secret = "secret-a") =>
  call(emulator, "/cgi-bin/gettoken", { corpid: CORP, corpsecret: secret })

describe("WeChatEmulator: WeCom", () => {
  it.effect("gettoken: the same token while valid, a new one in its last 5 minutes; the old one lives out its life", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.make({ corps: [corp] })
      const first = yield* gettoken(emulator)
      expect(first).toMatchObject({ errcode: 0, expires_in: 7200 })
      yield* TestClock.adjust(Duration.minutes(60))
      expect(yield* gettoken(emulator)).toMatchObject({ access_token: first["access_token"], expires_in: 3600 })
      expect((yield* gettoken(emulator, "secret-b"))["access_token"]).not.toBe(first["access_token"])
      yield* TestClock.adjust(Duration.minutes(56))
      const renewed = yield* gettoken(emulator)
      expect(renewed["access_token"]).not.toBe(first["access_token"])
      expect(yield* emulator.wecom.isValidToken(String(first["access_token"]), `${CORP}/${AGENT}`)).toBe(true)
      yield* TestClock.adjust(Duration.minutes(4))
      expect(yield* emulator.wecom.isValidToken(String(first["access_token"]))).toBe(false)
      expect(yield* call(emulator, "/cgi-bin/get_jsapi_ticket", { access_token: String(first["access_token"]) }))
        .toMatchObject({ errcode: 42001 })
    }))

  it.effect("errcodes: 40013 unknown corp, 40001 wrong secret, 60020 untrusted IP, 40014 for a token ended early, 40056 unknown agent", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.make({
        corps: [{
          corpId: CORP,
          apps: [{ agent: AGENT, secret: "secret-a" }, { agent: OTHER, secret: "secret-b", trustedIps: ["10.1.1.1"] }]
        }]
      })
      expect(yield* call(emulator, "/cgi-bin/gettoken", { corpid: "wwffffffffffffffff", corpsecret: "secret-a" }))
        .toMatchObject({ errcode: 40013 })
      expect(yield* gettoken(emulator, "wrong")).toMatchObject({ errcode: 40001 })
      const untrusted = yield* gettoken(emulator, "secret-b")
      expect(untrusted).toMatchObject({ errcode: 60020 })
      expect(String(untrusted["errmsg"])).toContain("from ip: 127.0.0.1")
      // Counted per known corp: the wrong secret and the untrusted IP.
      expect((yield* emulator.wecom.stats(CORP)).gettokenErrors).toBe(2)
      const token = String((yield* gettoken(emulator))["access_token"])
      expect(yield* call(emulator, "/cgi-bin/agent/get", { access_token: token, agentid: "1000009" })).toMatchObject({
        errcode: 40056
      })
      yield* emulator.wecom.endToken(token)
      expect(yield* call(emulator, "/cgi-bin/ticket/get", { access_token: token, type: "agent_config" }))
        .toMatchObject({ errcode: 40014 })
      const replacement = yield* gettoken(emulator)
      expect(replacement["access_token"]).not.toBe(token)
    }))

  it.effect("ticket rate limits: 400 corp tickets an hour per corp, 100 agent tickets an hour per agent (45009 beyond)", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.make({ corps: [corp] })
      const a = String((yield* gettoken(emulator))["access_token"])
      const b = String((yield* gettoken(emulator, "secret-b"))["access_token"])
      for (let i = 0; i < 400; i++) {
        expect(yield* call(emulator, "/cgi-bin/get_jsapi_ticket", { access_token: i % 2 === 0 ? a : b }))
          .toMatchObject({ errcode: 0 })
      }
      expect(yield* call(emulator, "/cgi-bin/get_jsapi_ticket", { access_token: a })).toMatchObject({ errcode: 45009 })
      for (let i = 0; i < 100; i++) {
        expect(yield* call(emulator, "/cgi-bin/ticket/get", { access_token: a, type: "agent_config" })).toMatchObject({
          errcode: 0
        })
      }
      expect(yield* call(emulator, "/cgi-bin/ticket/get", { access_token: a, type: "agent_config" })).toMatchObject({
        errcode: 45009
      })
      // Per agent: the other agent still has its hundred.
      expect(yield* call(emulator, "/cgi-bin/ticket/get", { access_token: b, type: "agent_config" })).toMatchObject({
        errcode: 0
      })
      yield* TestClock.adjust(Duration.hours(1))
      expect(yield* call(emulator, "/cgi-bin/get_jsapi_ticket", { access_token: a })).toMatchObject({ errcode: 0 })
    }))

  it.effect("faults apply to WeCom endpoints by corp id or by corpid/agent", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.make({ corps: [corp] })
      yield* emulator.injectFault({
        fault: Emulator.Fault.Busy(),
        endpoints: ["gettoken"],
        appId: `${CORP}/${OTHER}`,
        times: 1
      })
      expect(yield* gettoken(emulator)).toMatchObject({ errcode: 0 })
      expect(yield* gettoken(emulator, "secret-b")).toMatchObject({ errcode: -1 })
      expect(yield* gettoken(emulator, "secret-b")).toMatchObject({ errcode: 0 })
      yield* emulator.injectFault({
        fault: Emulator.Fault.Errcode(45009, "api freq out of limit"),
        appId: CORP,
        times: 1
      })
      expect(yield* gettoken(emulator)).toMatchObject({ errcode: 45009 })
      expect((yield* emulator.wecom.stats(`${CORP}/${AGENT}`)).gettokenCalls).toBe(2)
    }))

  it.effect("about 2,000 failed gettoken calls in an hour block gettoken for the corp until the hour is over (45009)", () =>
    Effect.gen(function*() {
      const emulator = yield* Emulator.make({ corps: [corp] })
      for (let i = 0; i < 2_000; i++) expect(yield* gettoken(emulator, "wrong")).toMatchObject({ errcode: 40001 })
      // Even the right secret is refused now.
      expect(yield* gettoken(emulator)).toMatchObject({ errcode: 45009 })
      yield* TestClock.adjust(Duration.hours(1))
      expect(yield* gettoken(emulator)).toMatchObject({ errcode: 0 })
    }))
})
