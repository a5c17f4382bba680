/**
 * A WeCom service provider's endpoints through the WeChat-compatible
 * gateway, over loopback: the provider's SDK-shaped caller → the token
 * server at WeCom's paths → the emulator, which pushes suite tickets and
 * installs to the server. The SDK gets gateway tokens and a placeholder
 * permanent code; the emulator sees only real tokens and codes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as WeComSuite from "../../../src/families/wecomSuite/WeComSuite.js"
import { eventually, PROVIDER, PROVIDER_SECRET, serveSuiteGateway } from "../../support/componentStack.js"
import { SUITE, SUITE_CORP, SUITE_SECRET } from "../../support/fixtures.js"
import { call, KEY } from "../../support/serverStack.js"

const PLACEHOLDER = "permanentcode@@@held-by-the-token-server"
/** A key for the suite only, and one for another suite. */
const SCOPED = "suite-scoped-key-0123456789abcdef"
const ELSEWHERE = "other-suite-key-0123456789abcdef"

const post = (url: string, body: unknown) =>
  call(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const start = Effect.gen(function*() {
  const { controls, server, wecom } = yield* serveSuiteGateway([
    { key: Redacted.make(KEY) },
    { key: Redacted.make(SCOPED), apps: [SUITE as never] },
    { key: Redacted.make(ELSEWHERE), apps: ["ww6c6c6c6c6c6c6c6c" as never] }
  ])
  yield* eventually(Effect.map(
    Effect.either(server.engine.get(SUITE, WeComSuite.suiteToken)),
    (held) => held._tag === "Right"
  ))
  const service = (path: string, token: string, body?: unknown) =>
    body === undefined
      ? call(`${server.base}/cgi-bin/service/${path}?suite_access_token=${encodeURIComponent(token)}`)
      : post(`${server.base}/cgi-bin/service/${path}?suite_access_token=${encodeURIComponent(token)}`, body)
  const suiteToken = (secret: string = KEY, suiteId = SUITE) =>
    post(`${server.base}/cgi-bin/service/get_suite_token`, {
      suite_id: suiteId,
      suite_secret: secret,
      suite_ticket: "whatever-the-sdk-cached"
    })
  return { wecom, controls, server, service, suiteToken }
})

describe("Gateway: WeCom suites", () => {
  it.scopedLive(
    "suite token, install, permanent code, corp token, tickets and calls: gateway values to the SDK, real ones upstream",
    () =>
      Effect.gen(function*() {
        const { controls, server, service, suiteToken, wecom } = yield* start
        const before = yield* controls.stats(SUITE)
        const issued = yield* suiteToken(SCOPED)
        expect(issued.json).toEqual({
          errcode: 0,
          errmsg: "ok",
          suite_access_token: expect.stringMatching(/^gw1\./),
          expires_in: 7200
        })
        const token = issued.json.suite_access_token as string
        // Issuing it asked nothing of WeCom, and the SDK's ticket went nowhere.
        expect((yield* controls.stats(SUITE)).suiteTokenCalls).toBe(before.suiteTokenCalls)

        // A corp installs: WeCom pushes create_auth, the server exchanges it; the SDK's own exchange
        // of the same temporary code is answered from the stored install, without a second exchange.
        const authCode = yield* Effect.orDie(controls.install(SUITE, SUITE_CORP, 1000002))
        const real = (yield* controls.permanentCode(SUITE, SUITE_CORP))!
        for (const path of ["get_permanent_code", "v2/get_permanent_code"]) {
          const exchanged = yield* service(path, token, { auth_code: authCode })
          expect(exchanged.json).toEqual({
            errcode: 0,
            errmsg: "ok",
            permanent_code: PLACEHOLDER,
            auth_corp_info: { corpid: SUITE_CORP }
          })
        }
        expect((yield* controls.stats(SUITE)).permanentCodeCalls).toBe(1)

        // The corp token: for the placeholder or the real code; any other code is WeCom's 40084.
        const corpCalls = (yield* controls.stats(SUITE)).corpTokenCalls
        for (const code of [PLACEHOLDER, real]) {
          const corp = yield* service("get_corp_token", token, { auth_corpid: SUITE_CORP, permanent_code: code })
          expect(corp.json).toEqual({
            errcode: 0,
            errmsg: "ok",
            access_token: expect.stringMatching(/^gw1\./),
            expires_in: 7200
          })
        }
        for (const [corpId, code] of [[SUITE_CORP, "permanentcode@@@wrong"], ["ww0d0d0d0d0d0d0d0d", PLACEHOLDER]]) {
          const refused = yield* service("get_corp_token", token, { auth_corpid: corpId, permanent_code: code })
          expect(refused.json.errcode).toBe(40084)
        }
        const corpToken = (yield* service("get_corp_token", token, {
          auth_corpid: SUITE_CORP,
          permanent_code: PLACEHOLDER
        })).json.access_token as string

        // The corp's token calls the corp's APIs with the real corp token, and takes its tickets.
        const sent = yield* post(`${server.base}/cgi-bin/message/send?access_token=${corpToken}`, {
          touser: "@all",
          msgtype: "text",
          agentid: 1000002,
          text: { content: "hi" }
        })
        expect(sent.json).toMatchObject({ errcode: 0 })
        const [seen] = yield* wecom.emulator.apis.calls
        expect(seen).toMatchObject({ path: "/cgi-bin/message/send" })
        expect(yield* wecom.emulator.wecom.isValidToken(seen!.token!)).toBe(true)
        for (const path of ["get_jsapi_ticket?", "ticket/get?type=agent_config&"]) {
          const ticket = yield* call(`${server.base}/cgi-bin/${path}access_token=${corpToken}`)
          expect(ticket.json).toEqual({
            errcode: 0,
            errmsg: "ok",
            ticket: expect.any(String),
            expires_in: expect.any(Number)
          })
        }
        // Issuing the corp tokens asked WeCom for at most the one the engine holds.
        expect((yield* controls.stats(SUITE)).corpTokenCalls - corpCalls).toBeLessThanOrEqual(1)

        // Other service calls are forwarded with the real suite token; a placeholder code is the real one
        // upstream, and no permanent code comes back.
        const preAuth = yield* service("get_pre_auth_code", token)
        expect(preAuth.json).toMatchObject({ errcode: 0, pre_auth_code: expect.any(String), expires_in: 1200 })
        const info = yield* service("get_auth_info", token, { auth_corpid: SUITE_CORP, permanent_code: PLACEHOLDER })
        expect(info.json).toMatchObject({ errcode: 0, auth_info: { agent: [{ agentid: 1000002 }] } })
        expect(info.text).not.toContain(real)

        // The gateway's own answers are not reached by another spelling of their paths.
        const spelled = yield* service("GET_CORP_TOKEN", token, { auth_corpid: SUITE_CORP, permanent_code: real })
        expect(spelled.json.access_token).toMatch(/^gw1\./)
        const sneaked = yield* service("/get_corp_token", token, { auth_corpid: SUITE_CORP, permanent_code: real })
        expect(sneaked.json.errcode).toBe(48001)

        // The provider token.
        const provider = yield* post(`${server.base}/cgi-bin/service/get_provider_token`, {
          corpid: PROVIDER,
          provider_secret: KEY
        })
        expect(provider.json).toEqual({
          errcode: 0,
          errmsg: "ok",
          provider_access_token: expect.stringMatching(/^gw1\./),
          expires_in: 7200
        })

        // No real credential in any answer.
        const suiteReal = (yield* server.engine.get(SUITE, WeComSuite.suiteToken)).value
        for (const answer of [issued, preAuth, info, provider, sent]) {
          for (const secret of [real, suiteReal, SUITE_SECRET, PROVIDER_SECRET]) {
            expect(answer.text).not.toContain(secret)
          }
        }
      }),
    { timeout: 120_000 }
  )

  it.scopedLive(
    "hostile: wrong or out-of-scope keys, unknown suites, tokens under another name",
    () =>
      Effect.gen(function*() {
        const { controls, server, service, suiteToken } = yield* start
        const before = yield* controls.stats(SUITE)
        expect((yield* suiteToken("not-a-client-key-0123456789")).json.errcode).toBe(40001)
        expect((yield* suiteToken(ELSEWHERE)).json.errcode).toBe(40083)
        expect((yield* suiteToken(KEY, "ww6c6c6c6c6c6c6c6c")).json.errcode).toBe(40083)
        const provider = (secret: string, corpid = PROVIDER) =>
          post(`${server.base}/cgi-bin/service/get_provider_token`, { corpid, provider_secret: secret })
        expect((yield* provider("not-a-client-key-0123456789")).json.errcode).toBe(40001)
        expect((yield* provider(KEY, "ww0808080808080808")).json.errcode).toBe(40013)

        const token = (yield* suiteToken()).json.suite_access_token as string
        // A suite token is read only as suite_access_token.
        const misnamed = yield* call(`${server.base}/cgi-bin/service/get_pre_auth_code?access_token=${token}`)
        expect(misnamed.json.errcode).toBe(40001)
        // A corp the server does not hold.
        const unknownCorp = yield* service("get_corp_token", token, {
          auth_corpid: SUITE_CORP,
          permanent_code: PLACEHOLDER
        })
        expect(unknownCorp.json.errcode).toBe(40084)
        // A temporary code WeCom never issued: WeCom's own refusal.
        const exchanged = yield* service("get_permanent_code", token, { auth_code: "not-an-auth-code" })
        expect(exchanged.json.errcode).toBe(40078)
        // A real suite token is not a gateway token.
        const realToken = (yield* server.engine.get(SUITE, WeComSuite.suiteToken)).value
        expect((yield* service("get_pre_auth_code", realToken)).json.errcode).toBe(40001)
        const after = yield* controls.stats(SUITE)
        expect(after.preAuthCodes).toBe(before.preAuthCodes)
        expect(after.corpTokenCalls).toBe(before.corpTokenCalls)
      }),
    { timeout: 120_000 }
  )
})
