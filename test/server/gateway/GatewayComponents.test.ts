/**
 * A third-party platform's endpoints through the WeChat-compatible gateway,
 * over loopback: the platform's SDK-shaped caller → the token server at
 * WeChat's paths → the emulator, which pushes tickets and authorizations to
 * the server. The SDK gets gateway tokens and a placeholder refresh token;
 * the emulator sees only real tokens; nothing reaches it for a refused call.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Redacted } from "effect"
import * as Component from "../../../src/families/component/Component.js"
import * as OwnerId from "../../../src/OwnerId.js"
import * as StoreSpec from "../../../src/StoreSpec.js"
import { Fault } from "../../../src/testing/Fault.js"
import * as ComponentStack from "../../support/componentStack.js"
import { COMPONENT, COMPONENT_SECRET, MERCHANT, MERCHANT_2 } from "../../support/fixtures.js"
import { call, KEY } from "../../support/serverStack.js"

/** A key for the component only, and one for an app the server does not run. */
const SCOPED = "component-scoped-key-0123456789"
const ELSEWHERE = "elsewhere-scoped-key-0123456789"
const PLACEHOLDER = "refreshtoken@@@held-by-the-token-server"

const post = (url: string, body: unknown) =>
  call(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

const start = Effect.gen(function*() {
  const wechat = yield* ComponentStack.serveWeChat()
  const controls = wechat.emulator.component
  const server = yield* ComponentStack.serveComponentServer(wechat.url, StoreSpec.layerMemory, Logger.none, {
    clientKeys: [
      { key: Redacted.make(KEY) },
      { key: Redacted.make(SCOPED), apps: [COMPONENT as never] },
      { key: Redacted.make(ELSEWHERE), apps: ["wx00ffffffffffffff" as never] }
    ],
    gateway: true
  })
  yield* ComponentStack.componentTokenHeld(controls, server)
  // Authorizations reach the server through the SDK from here on, as in the redirect flow.
  yield* controls.stopPushes(COMPONENT)
  const component = (path: string, token: string, body: unknown) =>
    post(`${server.base}/cgi-bin/component/${path}?component_access_token=${encodeURIComponent(token)}`, body)
  const componentToken = (secret: string = KEY) =>
    post(`${server.base}/cgi-bin/component/api_component_token`, {
      component_appid: COMPONENT,
      component_appsecret: secret,
      component_verify_ticket: "whatever-the-sdk-cached"
    })
  return { wechat, controls, server, component, componentToken }
})

describe("Gateway: third-party platforms", () => {
  it.live(
    "component token, code exchange, authorizer token and calls: gateway values to the SDK, real ones upstream",
    () =>
      Effect.gen(function*() {
        const { component, componentToken, controls, server, wechat } = yield* start
        const before = yield* controls.stats(COMPONENT)
        const issued = yield* componentToken(SCOPED)
        expect(issued.json).toEqual({ component_access_token: expect.stringMatching(/^gw1\./), expires_in: 7200 })
        const token = issued.json.component_access_token as string
        // Issuing it asked nothing of WeChat, and the SDK's verify ticket went nowhere.
        expect(yield* controls.stats(COMPONENT)).toEqual(before)

        // The merchant authorizes; the SDK exchanges the code through the gateway.
        const code = yield* controls.authorize(COMPONENT, MERCHANT, { funcInfo: [1, 15] })
        const exchanged = yield* component("api_query_auth", token, {
          component_appid: COMPONENT,
          authorization_code: code
        })
        expect(exchanged.json).toEqual({
          authorization_info: {
            authorizer_appid: MERCHANT,
            authorizer_access_token: expect.stringMatching(/^gw1\./),
            expires_in: 7200,
            authorizer_refresh_token: PLACEHOLDER,
            func_info: [{ funcscope_category: { id: 1 } }, { funcscope_category: { id: 15 } }]
          }
        })
        // The engine exchanged it: the refresh token is the server's, stored durably.
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        const realRefresh = yield* controls.currentRefreshToken(COMPONENT, MERCHANT)
        expect((yield* server.engine.get(owner, Component.refreshToken)).value).toBe(realRefresh)
        expect(exchanged.text).not.toContain(realRefresh)

        // The authorizer's gateway token calls the merchant's APIs with the real token.
        const authorizerToken = exchanged.json.authorization_info.authorizer_access_token as string
        const sent = yield* post(`${server.base}/cgi-bin/message/custom/send?access_token=${authorizerToken}`, {
          touser: "oOPENID",
          msgtype: "text",
          text: { content: "hi" }
        })
        expect(sent.json).toEqual({ errcode: 0, errmsg: "ok" })
        const [seen] = yield* wechat.emulator.apis.calls
        expect(seen?.owner).toBe(MERCHANT)
        expect(yield* controls.isValidAuthorizerToken(seen!.token!, MERCHANT)).toBe(true)
        const ticket = yield* call(`${server.base}/cgi-bin/ticket/getticket?access_token=${authorizerToken}&type=jsapi`)
        expect(ticket.json).toEqual({
          errcode: 0,
          errmsg: "ok",
          ticket: expect.any(String),
          expires_in: expect.any(Number)
        })

        // api_authorizer_token: a new gateway token, the placeholder again; the refresh token sent is not used,
        // the real one included, and WeChat is not asked.
        const calls = (yield* controls.stats(COMPONENT)).authorizerTokenCalls
        for (const presented of [PLACEHOLDER, realRefresh!, "refreshtoken@@@stale"]) {
          const refreshed = yield* component("api_authorizer_token", token, {
            component_appid: COMPONENT,
            authorizer_appid: MERCHANT,
            authorizer_refresh_token: presented
          })
          expect(refreshed.json).toEqual({
            authorizer_access_token: expect.stringMatching(/^gw1\./),
            expires_in: 7200,
            authorizer_refresh_token: PLACEHOLDER
          })
        }
        expect((yield* controls.stats(COMPONENT)).authorizerTokenCalls).toBe(calls)
        expect((yield* server.engine.get(owner, Component.refreshToken)).value).toBe(realRefresh)

        // Other component endpoints go to WeChat with the real component token.
        const preAuth = yield* component("api_create_preauthcode", token, { component_appid: COMPONENT })
        expect(preAuth.json).toEqual({ pre_auth_code: expect.stringMatching(/^preauthcode@@@/), expires_in: 1800 })
        // The list's refresh tokens are the placeholder: the real ones never leave the server.
        const listed = yield* component("api_get_authorizer_list", token, {
          component_appid: COMPONENT,
          offset: 0,
          count: 10
        })
        expect(listed.json).toEqual({
          total_count: 1,
          list: [{ authorizer_appid: MERCHANT, refresh_token: PLACEHOLDER, auth_time: expect.any(Number) }]
        })
        expect(listed.text).not.toContain(realRefresh)
        const after = yield* controls.stats(COMPONENT)
        expect([after.preAuthCodes - before.preAuthCodes, after.listCalls - before.listCalls, after.deadTokenUses])
          .toEqual([1, 1, 0])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("a component token WeChat says is dead is replaced once and the call replayed", () =>
    Effect.gen(function*() {
      const { component, componentToken, controls, wechat } = yield* start
      const token = (yield* componentToken()).json.component_access_token as string
      const before = yield* controls.stats(COMPONENT)
      yield* wechat.emulator.injectFault({
        fault: Fault.Errcode(40001, "invalid credential, access_token is invalid or not latest"),
        endpoints: ["api_create_preauthcode"],
        times: 1
      })
      const preAuth = yield* component("api_create_preauthcode", token, { component_appid: COMPONENT })
      expect(preAuth.json).toEqual({ pre_auth_code: expect.stringMatching(/^preauthcode@@@/), expires_in: 1800 })
      const after = yield* controls.stats(COMPONENT)
      expect(after.componentTokensIssued - before.componentTokensIssued).toBe(1)
      expect(after.preAuthCodes - before.preAuthCodes).toBe(1)
    }).pipe(Effect.scoped), 120_000)

  it.live(
    "the SDK exchanges a code the authorization push already exchanged: the authorizer, not WeChat's 61009",
    () =>
      Effect.gen(function*() {
        const { component, componentToken, controls, server } = yield* start
        const token = (yield* componentToken()).json.component_access_token as string
        // WeChat pushes `authorized` with the code its redirect hands the SDK; the push is exchanged first.
        yield* controls.resumePushes(COMPONENT)
        const code = yield* controls.authorize(COMPONENT, MERCHANT_2)
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT_2 as never)
        yield* ComponentStack.eventually(Effect.map(
          Effect.either(server.engine.get(owner, Component.refreshToken)),
          (held) => held._tag === "Right"
        ))
        const exchanged = yield* component("api_query_auth", token, {
          component_appid: COMPONENT,
          authorization_code: code
        })
        expect(exchanged.json).toEqual({
          authorization_info: {
            authorizer_appid: MERCHANT_2,
            authorizer_access_token: expect.stringMatching(/^gw1\./),
            expires_in: 7200,
            authorizer_refresh_token: PLACEHOLDER,
            func_info: []
          }
        })
        // A code nobody pushed or exchanged is still WeChat's refusal.
        const unknown = yield* component("api_query_auth", token, {
          component_appid: COMPONENT,
          authorization_code: "queryauthcode@@@never-issued"
        })
        expect(unknown.json.errcode).toBe(61009)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "hostile: wrong or out-of-scope keys, real or foreign tokens, other components: WeChat's errors, nothing upstream",
    () =>
      Effect.gen(function*() {
        const { component, componentToken, controls, server, wechat } = yield* start
        const token = (yield* componentToken()).json.component_access_token as string
        const before = yield* controls.stats(COMPONENT)
        const errcode = (answer: { readonly status: number; readonly json: { readonly errcode?: number } }) => ({
          status: answer.status,
          errcode: answer.json.errcode
        })

        expect(errcode(yield* componentToken("not-a-client-key-0123456789"))).toEqual({ status: 200, errcode: 40125 })
        // The component's own secret is not a client key either.
        expect(errcode(yield* componentToken(COMPONENT_SECRET))).toEqual({ status: 200, errcode: 40125 })
        expect(errcode(yield* componentToken(ELSEWHERE))).toEqual({ status: 200, errcode: 40013 })
        expect(errcode(
          yield* post(`${server.base}/cgi-bin/component/api_component_token`, {
            component_appid: "wx00eeeeeeeeeeeeee",
            component_appsecret: KEY
          })
        )).toEqual({ status: 200, errcode: 40013 })
        expect(errcode(yield* call(`${server.base}/cgi-bin/component/api_component_token`))).toEqual({
          status: 200,
          errcode: 43002
        })
        expect(errcode(yield* post(`${server.base}/cgi-bin/component/api_component_token`, "[not json"))).toEqual({
          status: 200,
          errcode: 47001
        })

        // WeChat's real component token is not a gateway token: 40001, not forwarded.
        const real = (yield* server.engine.get(COMPONENT, Component.componentToken)).value
        for (const presented of [real, `${token}x`, token.slice(0, -2), ""]) {
          expect({ presented, answer: errcode(yield* component("api_create_preauthcode", presented, {})) }).toEqual({
            presented,
            answer: { status: 200, errcode: 40001 }
          })
        }
        // Two tokens in one call.
        expect(errcode(
          yield* post(
            `${server.base}/cgi-bin/component/api_create_preauthcode?component_access_token=${token}&access_token=${real}`,
            {}
          )
        )).toEqual({ status: 200, errcode: 40001 })
        expect(errcode(
          yield* post(
            `${server.base}/cgi-bin/component/api_create_preauthcode?component_access_token=${token}&ACCESS%5FTOKEN=${real}`,
            {}
          )
        )).toEqual({ status: 200, errcode: 40001 })
        // A quota reset every caller shares; a path outside WeChat's grammar.
        expect(errcode(yield* component("clear_quota", token, { component_appid: COMPONENT }))).toEqual({
          status: 200,
          errcode: 48001
        })
        expect(errcode(yield* component("api_clear_quota", token, { component_appid: COMPONENT }))).toEqual({
          status: 200,
          errcode: 48001
        })
        // The body names another component; an authorizer that never authorized.
        expect(errcode(
          yield* component("api_authorizer_token", token, {
            component_appid: "wx00eeeeeeeeeeeeee",
            authorizer_appid: MERCHANT,
            authorizer_refresh_token: PLACEHOLDER
          })
        )).toEqual({ status: 200, errcode: 40013 })
        expect(errcode(
          yield* component("api_authorizer_token", token, {
            component_appid: COMPONENT,
            authorizer_appid: MERCHANT_2,
            authorizer_refresh_token: PLACEHOLDER
          })
        )).toEqual({ status: 200, errcode: 61003 })
        // A component token is not an authorizer's: no ticket, and it is not WeChat's access_token for an app's call.
        expect(errcode(yield* call(`${server.base}/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`)))
          .toEqual({ status: 200, errcode: 40097 })

        expect(yield* controls.stats(COMPONENT)).toEqual(before)
        expect(yield* wechat.emulator.apis.calls).toEqual([])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "a gateway token of a key the server no longer has is refused, and nothing is forwarded",
    () =>
      Effect.gen(function*() {
        const { componentToken } = yield* start
        const token = (yield* componentToken()).json.component_access_token as string
        const wechat = yield* ComponentStack.serveWeChat()
        const keyRemoved = yield* ComponentStack.serveComponentServer(wechat.url, StoreSpec.layerMemory, Logger.none, {
          clientKeys: [{ key: Redacted.make(SCOPED), apps: [COMPONENT as never] }],
          gateway: true
        })
        const refused = yield* post(
          `${keyRemoved.base}/cgi-bin/component/api_create_preauthcode?component_access_token=${token}`,
          { component_appid: COMPONENT }
        )
        expect(refused.json.errcode).toBe(40001)
        expect((yield* wechat.emulator.component.stats(COMPONENT)).preAuthCodes).toBe(0)
      }).pipe(Effect.scoped),
    120_000
  )
})
