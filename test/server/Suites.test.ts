import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteConfig from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import { WeComSuiteToken } from "../../src/families/wecomSuite/WeComSuiteToken.js"
import * as Library from "../../src/index.js"
import { CorpId } from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { call, eventually, registration, serveComponentServer } from "../support/componentStack.js"
import { auth, KEY, OPS_KEY } from "../support/serverStack.js"

// The suite routes over loopback: WeCom (the emulator) pushes to the real
// server's command URL, business servers call /v1/wecom-suites with a
// client key, and the server calls WeCom.

const SUITE = "ww6b6b6b6b6b6b6b6b"
const OTHER_SUITE = "ww6c6c6c6c6c6c6c6c"
const SECRET = "suite-secret-never-in-an-answer-01"
const TOKEN = "suitePushToken"
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const CORP = "ww0f0f0f0f0f0f0f0f"
const PROVIDER = "ww0909090909090909"
const PROVIDER_SECRET = "provider-secret-never-answered-01"
const SCOPED = "suite-scoped-key-0123456789abcdef"
const OTHER_SCOPED = "other-suite-key-0123456789abcdef"

const suites = WeComSuiteConfig.layerWith({
  suites: [WeComSuiteConfig.suite(SUITE, SECRET, TOKEN, AES_KEY)],
  provider: { corpId: CorpId.make(PROVIDER), secret: Redacted.make(PROVIDER_SECRET) }
})

const json = (key = KEY) => ({ ...auth(key), "content-type": "application/json" })
const suiteRoute = (base: string, path: string, suite = SUITE) => `${base}/v1/wecom-suites/${suite}${path}`
const corpRoute = (base: string, path: string, corp = CORP) => suiteRoute(base, `/corps/${corp}${path}`)

const stack = Effect.gen(function*() {
  const wecom = yield* Emulator.serve({
    components: [registration],
    suites: [{ suiteId: SUITE, secret: SECRET, messageToken: TOKEN, encodingAesKey: AES_KEY }]
  })
  yield* wecom.emulator.wecomSuite.registerProvider(PROVIDER, PROVIDER_SECRET)
  const server = yield* serveComponentServer(wecom.url, StoreSpec.layerMemory, undefined, {
    suites,
    proxy: true,
    clientKeys: [
      { key: Redacted.make(KEY) },
      { key: Redacted.make(SCOPED), apps: [SUITE as never] },
      { key: Redacted.make(OTHER_SCOPED), apps: [OTHER_SUITE as never] }
    ]
  })
  yield* wecom.emulator.wecomSuite.setCommandUrl(SUITE, `${server.base}/wecom/suites/${SUITE}/events`)
  return { controls: wecom.emulator.wecomSuite, emulator: wecom.emulator, server }
})

const installed = (base: string) =>
  eventually(Effect.map(call(corpRoute(base, "/access-token"), { headers: auth() }), (answer) => answer.status === 200))

describe("WeCom suites over loopback: the /v1/wecom-suites routes", () => {
  it("the library exports the service and what building it takes", () => {
    expect(Library.WeComSuiteToken.WeComSuiteToken).toBe(WeComSuiteToken)
    expect(Library.WeComSuiteConfig.suite).toBe(WeComSuiteConfig.suite)
    expect(Library.WeComSuite.families).toBe(WeComSuite.families)
    expect(typeof Library.WeComSuiteApi.layer).toBe("function")
    expect(typeof Library.SuiteEvents.open).toBe("function")
  })

  it.scopedLive(
    "ticket push → one suite token for 500 callers → install link → install → corp token, tickets, config, page, proxy",
    () =>
      Effect.gen(function*() {
        const { controls, emulator, server } = yield* stack

        // No ticket yet: a 503 naming the command URL to check.
        const early = yield* call(suiteRoute(server.base, "/access-token"), { headers: auth() })
        expect(early.status).toBe(503)
        expect(early.json.error.message).toContain(`/wecom/suites/${SUITE}/events`)

        yield* Effect.orDie(controls.pushTicket(SUITE))
        yield* eventually(Effect.map(
          call(suiteRoute(server.base, "/access-token"), { headers: auth() }),
          (answer) => answer.status === 200
        ))
        const tokens = yield* Effect.all(
          Array.from({ length: 500 }, () => call(suiteRoute(server.base, "/access-token"), { headers: auth() })),
          { concurrency: "unbounded" }
        )
        expect(tokens.every((answer) => answer.status === 200)).toBe(true)
        const values = new Set(tokens.map((answer) => answer.json.access_token as string))
        expect(values.size).toBe(1)
        expect(yield* controls.isValidSuiteToken([...values][0]!, SUITE)).toBe(true)
        expect((yield* controls.stats(SUITE)).suiteTokensIssued).toBe(1)

        // An install link: a fresh pre-auth code, its session set, WeCom's install page.
        const link = yield* call(suiteRoute(server.base, "/pre-auth-code"), {
          method: "POST",
          headers: json(),
          body: JSON.stringify({ redirect_uri: "https://example.com/installed", state: "s1", auth_type: 1 })
        })
        expect(link.status).toBe(200)
        expect(link.json.expires_in).toBeGreaterThan(0)
        const page = new URL(link.json.install_url)
        expect(page.searchParams.get("suite_id")).toBe(SUITE)
        expect(page.searchParams.get("pre_auth_code")).toBe(link.json.pre_auth_code)
        expect(page.searchParams.get("redirect_uri")).toBe("https://example.com/installed")
        const badLink = yield* call(suiteRoute(server.base, "/pre-auth-code"), {
          method: "POST",
          headers: json(),
          body: JSON.stringify({ redirect_uri: "javascript:alert(1)" })
        })
        expect(badLink.status).toBe(400)

        // The corp installs: create_auth pushed, the permanent code stored, the corp served.
        yield* Effect.orDie(controls.install(SUITE, CORP, 1000005))
        yield* installed(server.base)
        const token = yield* call(corpRoute(server.base, "/access-token"), { headers: auth(SCOPED) })
        expect(token.status).toBe(200)
        expect(token.json.expires_in).toBeGreaterThan(0)
        const jsapi = yield* call(corpRoute(server.base, "/jsapi-ticket"), { headers: auth() })
        const agent = yield* call(corpRoute(server.base, "/agent-ticket"), { headers: auth() })
        expect([jsapi.status, agent.status]).toEqual([200, 200])
        expect(jsapi.json.ticket).not.toBe(agent.json.ticket)
        const config = yield* call(corpRoute(server.base, "/jssdk-config"), {
          method: "POST",
          headers: json(),
          body: JSON.stringify({ url: "https://example.com/page?x=1" })
        })
        expect(config.status).toBe(200)
        expect(config.json.config.appId).toBe(CORP)
        expect(config.json.agentConfig).toMatchObject({ corpid: CORP, agentid: "1000005" })

        // Compare-and-refresh with a stale token answers the current one; with the current one WeCom is
        // asked again (get_corp_token answers the held token while it is valid).
        const same = yield* call(corpRoute(server.base, "/access-token/refresh"), {
          method: "POST",
          headers: json(),
          body: JSON.stringify({ stale_token: "not-the-current-token" })
        })
        expect(same.json.access_token).toBe(token.json.access_token)
        const fresh = yield* call(corpRoute(server.base, "/access-token/refresh"), {
          method: "POST",
          headers: json(),
          body: JSON.stringify({ stale_token: token.json.access_token })
        })
        expect(fresh.status).toBe(200)
        expect((yield* controls.stats(SUITE)).corpTokenCalls).toBe(2)

        const corps = yield* call(suiteRoute(server.base, "/corps?limit=10"), { headers: auth() })
        expect(corps.status).toBe(200)
        expect(corps.json.corps).toEqual([expect.objectContaining({ corp_id: CORP, valid: true })])

        // The proxy: a WeCom call with the corp token the server holds.
        const sent = yield* call(corpRoute(server.base, "/wechat/cgi-bin/message/send"), {
          method: "POST",
          headers: json(SCOPED),
          body: JSON.stringify({ touser: "u", msgtype: "text" })
        })
        expect([sent.status, sent.json?.errcode]).toEqual([200, 0])
        const seen = (yield* emulator.apis.calls).at(-1)
        expect(seen?.token).toBe(fresh.json.access_token)
        // Minting calls are not forwarded.
        const mint = yield* call(corpRoute(server.base, "/wechat/cgi-bin/service/get_corp_token"), {
          method: "POST",
          headers: json(),
          body: "{}"
        })
        expect(mint.status).toBe(403)

        const provider = yield* call(suiteRoute(server.base, "/provider-token"), { headers: auth() })
        expect(provider.status).toBe(200)
        expect(provider.json.access_token).toEqual(expect.any(String))
        expect(provider.json.access_token).not.toBe(fresh.json.access_token)

        // No secret, permanent code or AES key in what the server answers or exposes.
        const code = yield* controls.permanentCode(SUITE, CORP)
        const metrics = yield* call(`${server.base}/metrics`, { headers: auth(OPS_KEY) })
        const readyz = yield* call(`${server.base}/readyz`, { headers: auth(OPS_KEY) })
        for (const answer of [token, jsapi, agent, config, corps, link, provider, metrics, readyz]) {
          for (const secret of [SECRET, AES_KEY, PROVIDER_SECRET, code!]) expect(answer.text).not.toContain(secret)
        }
        expect(metrics.text).toContain(`app="${SUITE}"`)
        expect(metrics.text).not.toContain(CORP)
      })
  )

  it.scopedLive("unknown suite or corp, another suite's key, a cancelled corp: 404, nothing forwarded", () =>
    Effect.gen(function*() {
      const { controls, emulator, server } = yield* stack
      yield* Effect.orDie(controls.pushTicket(SUITE))
      yield* Effect.orDie(controls.install(SUITE, CORP, 1000002))
      yield* installed(server.base)

      const notFound = [
        yield* call(suiteRoute(server.base, "/access-token", OTHER_SUITE), { headers: auth() }),
        yield* call(suiteRoute(server.base, "/provider-token", OTHER_SUITE), { headers: auth() }),
        yield* call(suiteRoute(server.base, "/corps", OTHER_SUITE), { headers: auth() }),
        yield* call(corpRoute(server.base, "/access-token", "ww0e0e0e0e0e0e0e0e"), { headers: auth() }),
        yield* call(corpRoute(server.base, "/access-token", "not-a-corp"), { headers: auth() }),
        // A key scoped to another suite does not learn this one exists.
        yield* call(corpRoute(server.base, "/access-token"), { headers: auth(OTHER_SCOPED) }),
        yield* call(suiteRoute(server.base, "/access-token"), { headers: auth(OTHER_SCOPED) }),
        yield* call(corpRoute(server.base, "/wechat/cgi-bin/message/send"), {
          method: "POST",
          headers: json(OTHER_SCOPED),
          body: "{}"
        })
      ]
      expect(notFound.map((answer) => answer.status)).toEqual(notFound.map(() => 404))
      expect(notFound.map((answer) => answer.json.error.code)).toEqual(notFound.map(() => "unknown_app"))

      // The corp uninstalls: cancel_auth retires it; its routes and its proxy answer 404.
      const calls = (yield* emulator.apis.calls).length
      yield* Effect.orDie(controls.revoke(SUITE, CORP))
      yield* eventually(Effect.map(
        call(corpRoute(server.base, "/access-token"), { headers: auth() }),
        (answer) => answer.status === 404
      ))
      for (const path of ["/jsapi-ticket", "/agent-ticket"]) {
        expect((yield* call(corpRoute(server.base, path), { headers: auth() })).status).toBe(404)
      }
      const proxied = yield* call(corpRoute(server.base, "/wechat/cgi-bin/message/send"), {
        method: "POST",
        headers: json(),
        body: "{}"
      })
      expect(proxied.status).toBe(404)
      expect((yield* emulator.apis.calls).length).toBe(calls)
      const corps = yield* call(suiteRoute(server.base, "/corps"), { headers: auth() })
      expect(corps.json.corps).toEqual([])
      // The permanent code is a tombstone now, held by no one.
      expect(
        (yield* Effect.either(server.engine.get(`${SUITE}:${CORP}`, WeComSuite.permanentCode)))._tag
      ).toBe("Left")
    }))

  it.scopedLive("500 concurrent callers the moment an install is answered: one corp token fetched, one value served", () =>
    Effect.gen(function*() {
      const { controls, server } = yield* stack
      yield* Effect.orDie(controls.pushTicket(SUITE))
      yield* eventually(Effect.map(
        call(suiteRoute(server.base, "/access-token"), { headers: auth() }),
        (answer) => answer.status === 200
      ))
      yield* controls.resetStats
      // `install` returns once the push was answered: nothing has asked for the corp's token yet.
      yield* Effect.orDie(controls.install(SUITE, CORP, 1000002))
      const tokens = yield* Effect.all(
        Array.from({ length: 500 }, () => call(corpRoute(server.base, "/access-token"), { headers: auth() })),
        { concurrency: "unbounded" }
      )
      expect(tokens.map((answer) => answer.status)).toEqual(tokens.map(() => 200))
      expect(new Set(tokens.map((answer) => answer.json.access_token)).size).toBe(1)
      const stats = yield* controls.stats(SUITE)
      expect([stats.corpTokenCalls, stats.suiteTokenCalls, stats.permanentCodeCalls]).toEqual([1, 0, 1])
    }))
})
