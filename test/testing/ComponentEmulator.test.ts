import { FetchHttpClient, HttpClient, HttpClientRequest, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Redacted, TestClock } from "effect"
import { createServer } from "node:http"
import * as MessageCrypto from "../../src/MessageCrypto.js"
import * as MessageSignature from "../../src/MessageSignature.js"
import { Fault } from "../../src/testing/Fault.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"

const COMPONENT = "wx1111111111111111"
const SECRET = "component-secret"
const MESSAGE_TOKEN = "push-token"
// The official sample key: 43 base64 characters.
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const MERCHANT = "wx2222222222222222"

const registration: Emulator.ComponentRegistration = {
  componentAppId: COMPONENT,
  secret: SECRET,
  messageToken: MESSAGE_TOKEN,
  encodingAesKey: AES_KEY,
  pushUrl: "http://receiver.test/events?from=wechat"
}

const { pushUrl: _pushUrl, ...withoutPushUrl } = registration

const crypto = Either.getOrThrow(MessageCrypto.make({
  token: Redacted.make(MESSAGE_TOKEN),
  encodingAesKey: Redacted.make(AES_KEY),
  receiveId: COMPONENT
}))

type Json = Record<string, unknown>

/** What a receiver does with a push: check the envelope and both signatures, decrypt. */
const open = (url: string, body: string) =>
  Effect.gen(function*() {
    const query = new URL(url).searchParams
    const envelope = /^<xml><AppId><!\[CDATA\[(\w+)\]\]><\/AppId><Encrypt><!\[CDATA\[([^\]]+)\]\]><\/Encrypt><\/xml>$/
      .exec(body)
    if (envelope === null || envelope[1] !== COMPONENT || query.get("encrypt_type") !== "aes") {
      return yield* Effect.fail(new MessageCrypto.MalformedMessage({ detail: "not a component push" }))
    }
    const signed = {
      msgSignature: query.get("msg_signature") ?? "",
      timestamp: query.get("timestamp") ?? "",
      nonce: query.get("nonce") ?? "",
      encrypted: envelope[2]!
    }
    const signature = {
      token: Redacted.make(MESSAGE_TOKEN),
      signature: query.get("signature") ?? "",
      timestamp: signed.timestamp,
      nonce: signed.nonce
    }
    if (!MessageSignature.verify(signature)) return yield* Effect.fail(new MessageCrypto.InvalidSignature())
    return yield* crypto.open(signed)
  })

const field = (xml: string, name: string): string | undefined =>
  new RegExp(`<${name}>(?:<!\\[CDATA\\[(.*?)\\]\\]>|([^<]*))</${name}>`).exec(xml)?.slice(1).find((value) =>
    value !== undefined
  )

/** An in-process receiver: decrypts every push and answers what `reply` says. */
const receiver = (
  reply: (attempt: number) => Effect.Effect<Emulator.PushAnswer, unknown> = () =>
    Effect.succeed({ status: 200, body: "success" })
) => {
  const events: Array<string> = []
  let attempts = 0
  const transport: Emulator.PushTransport = (request) =>
    Effect.gen(function*() {
      expect(request.componentAppId).toBe(COMPONENT)
      expect(request.url.startsWith("http://receiver.test/events?from=wechat&")).toBe(true)
      const xml = yield* open(request.url, request.body)
      attempts++
      const answer = yield* reply(attempts)
      if (answer.status === 200 && answer.body === "success") events.push(xml)
      return answer
    })
  return { events, transport }
}

const make = (options: Emulator.EmulatorOptions = {}) => {
  const pushes = receiver()
  return Effect.map(
    Emulator.make({ components: [registration], pushTransport: pushes.transport, ...options }),
    (emulator) => ({ emulator, events: pushes.events })
  )
}

const post = (
  emulator: Emulator.WeChatEmulatorShape,
  endpoint: string,
  body: Json,
  query: Record<string, string> = {}
) =>
  Effect.map(
    emulator.handle({
      method: "POST",
      path: `/cgi-bin/component/${endpoint}`,
      query: new URLSearchParams(query),
      body: JSON.stringify(body)
    }),
    (response) => response._tag === "Respond" ? JSON.parse(response.body) as Json : { dropped: true }
  )

const componentToken = (emulator: Emulator.WeChatEmulatorShape, ticket: string | undefined, secret = SECRET) =>
  post(emulator, "api_component_token", {
    component_appid: COMPONENT,
    component_appsecret: secret,
    component_verify_ticket: ticket
  })

/** A ticket pushed and a component token from it. */
const tokenFrom = (emulator: Emulator.WeChatEmulatorShape) =>
  Effect.gen(function*() {
    const ticket = yield* emulator.component.pushTicket(COMPONENT)
    const answer = yield* componentToken(emulator, ticket)
    return String(answer["component_access_token"])
  })

const call = (
  emulator: Emulator.WeChatEmulatorShape,
  endpoint: string,
  token: string,
  body: Json = {}
) => post(emulator, endpoint, { component_appid: COMPONENT, ...body }, { component_access_token: token })

const queryAuth = (emulator: Emulator.WeChatEmulatorShape, token: string, code: string) =>
  call(emulator, "api_query_auth", token, { authorization_code: code })

const refresh = (emulator: Emulator.WeChatEmulatorShape, token: string, refreshToken: string, merchant = MERCHANT) =>
  call(emulator, "api_authorizer_token", token, {
    authorizer_appid: merchant,
    authorizer_refresh_token: refreshToken
  })

const jsapiTicket = (emulator: Emulator.WeChatEmulatorShape, token: string) =>
  Effect.map(
    emulator.handle({
      method: "GET",
      path: "/cgi-bin/ticket/getticket",
      query: new URLSearchParams({ access_token: token, type: "jsapi" }),
      body: ""
    }),
    (response) => response._tag === "Respond" ? JSON.parse(response.body) as Json : { dropped: true }
  )

const page = (emulator: Emulator.WeChatEmulatorShape, token: string, offset: number, count: number) =>
  call(emulator, "api_get_authorizer_list", token, { offset, count })

type Listed = { readonly authorizer_appid: string; readonly refresh_token: string; readonly auth_time: number }

const listAll = (emulator: Emulator.WeChatEmulatorShape, token: string) =>
  Effect.gen(function*() {
    const all: Array<Listed> = []
    for (let offset = 0;; offset += 500) {
      const answer = yield* page(emulator, token, offset, 500)
      const list = answer["list"] as Array<Listed>
      all.push(...list)
      if (offset + 500 >= Number(answer["total_count"])) return all
    }
  })

describe("WeChatEmulator: third-party platform", () => {
  it.effect("api_component_token needs the latest pushed verify ticket: 61006 otherwise, 61005 once 12 h old", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      expect(yield* componentToken(emulator, "ticket@@@never-pushed")).toMatchObject({ errcode: 61006 })
      const first = yield* emulator.component.pushTicket(COMPONENT)
      expect(events).toHaveLength(1)
      expect(field(events[0]!, "InfoType")).toBe("component_verify_ticket")
      expect(field(events[0]!, "AppId")).toBe(COMPONENT)
      expect(field(events[0]!, "ComponentVerifyTicket")).toBe(first)
      expect(yield* emulator.component.currentVerifyTicket(COMPONENT)).toBe(first)
      const answer = yield* componentToken(emulator, first)
      expect(answer).toMatchObject({ expires_in: 7200 })
      expect(String(answer["component_access_token"])).toMatch(/^[A-Za-z0-9_-]{150}$/)

      const second = yield* emulator.component.pushTicket(COMPONENT)
      expect(second).not.toBe(first)
      expect(yield* componentToken(emulator, first)).toMatchObject({ errcode: 61006 })
      expect(yield* componentToken(emulator, second, "wrong")).toMatchObject({ errcode: 40125 })
      expect(
        yield* post(emulator, "api_component_token", {
          component_appid: "wx9999999999999999",
          component_appsecret: SECRET,
          component_verify_ticket: second
        })
      ).toMatchObject({ errcode: 61011 })
      expect(yield* post(emulator, "api_component_token", { component_appsecret: SECRET })).toMatchObject({
        errcode: 41002
      })
      const get = yield* emulator.handle({
        method: "GET",
        path: "/cgi-bin/component/api_component_token",
        query: new URLSearchParams(),
        body: ""
      })
      expect(get._tag === "Respond" && JSON.parse(get.body)).toMatchObject({ errcode: 43002 })
      const refused = yield* componentToken(emulator, second, "wrong")
      expect(String(refused["errmsg"])).toMatch(/^invalid appsecret rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/)

      yield* TestClock.adjust(Duration.hours(12))
      expect(yield* componentToken(emulator, second)).toMatchObject({ errcode: 61005 })
      const third = yield* emulator.component.pushTicket(COMPONENT)
      expect(yield* componentToken(emulator, third)).toMatchObject({ expires_in: 7200 })
      yield* emulator.component.expireTicket(COMPONENT)
      expect(yield* componentToken(emulator, third)).toMatchObject({ errcode: 61005 })

      expect(yield* emulator.component.stats(COMPONENT)).toMatchObject({
        componentTokenCalls: 8,
        componentTokensIssued: 2,
        pushesSent: 3,
        pushesDelivered: 3
      })
    }))

  it.effect("verifyTicketAcceptance unexpired: an older ticket still works until its 12 hours are over", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make({ verifyTicketAcceptance: "unexpired" })
      const first = yield* emulator.component.pushTicket(COMPONENT)
      yield* TestClock.adjust(Duration.hours(6))
      const second = yield* emulator.component.pushTicket(COMPONENT)
      expect(yield* componentToken(emulator, first)).toMatchObject({ expires_in: 7200 })
      expect(yield* componentToken(emulator, "ticket@@@never-pushed")).toMatchObject({ errcode: 61006 })
      yield* TestClock.adjust(Duration.hours(6))
      expect(yield* componentToken(emulator, first)).toMatchObject({ errcode: 61005 })
      expect(yield* componentToken(emulator, second)).toMatchObject({ expires_in: 7200 })
      yield* emulator.component.expireTicket(COMPONENT)
      expect(yield* componentToken(emulator, second)).toMatchObject({ errcode: 61005 })
    }))

  it.effect("a new component token leaves the previous one 5 minutes; either query parameter name works", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make()
      const ticket = yield* emulator.component.pushTicket(COMPONENT)
      const first = String((yield* componentToken(emulator, ticket))["component_access_token"])
      yield* TestClock.adjust(Duration.minutes(30))
      const second = String((yield* componentToken(emulator, ticket))["component_access_token"])
      expect(second).not.toBe(first)
      yield* TestClock.adjust(Duration.seconds(299))
      expect(yield* emulator.component.isValidComponentToken(first, COMPONENT)).toBe(true)
      expect(yield* post(emulator, "api_create_preauthcode", { component_appid: COMPONENT }, { access_token: first }))
        .toMatchObject({ expires_in: 1800 })
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* emulator.component.isValidComponentToken(first)).toBe(false)
      expect(yield* call(emulator, "api_create_preauthcode", first)).toMatchObject({ errcode: 40001 })
      expect(yield* call(emulator, "api_create_preauthcode", second)).toMatchObject({ expires_in: 1800 })
      expect(yield* emulator.component.isValidComponentToken(second, "wx9999999999999999")).toBe(false)
      // A token that reaches its natural end answers 42001.
      yield* TestClock.adjust(Duration.hours(2))
      expect(yield* call(emulator, "api_create_preauthcode", second)).toMatchObject({ errcode: 42001 })
      expect((yield* emulator.component.stats(COMPONENT)).deadTokenUses).toBe(2)
      expect(yield* post(emulator, "api_create_preauthcode", { component_appid: COMPONENT })).toMatchObject({
        errcode: 41001
      })
    }))

  it.effect("pre-auth codes: fresh each call, single use, 1,800 s; a token of another component gets 61011", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      const token = yield* tokenFrom(emulator)
      const first = String((yield* call(emulator, "api_create_preauthcode", token))["pre_auth_code"])
      const second = String((yield* call(emulator, "api_create_preauthcode", token))["pre_auth_code"])
      expect(first).toMatch(/^preauthcode@@@/)
      expect(second).not.toBe(first)
      const code = yield* emulator.component.authorize(COMPONENT, MERCHANT, { preAuthCode: first })
      const pushed = events.at(-1)!
      expect(field(pushed, "InfoType")).toBe("authorized")
      expect(field(pushed, "AuthorizerAppid")).toBe(MERCHANT)
      expect(field(pushed, "AuthorizationCode")).toBe(code)
      expect(field(pushed, "PreAuthCode")).toBe(first)
      expect(Number(field(pushed, "AuthorizationCodeExpiredTime"))).toBe(3600)
      const reused = yield* Effect.flip(emulator.component.authorize(COMPONENT, MERCHANT, { preAuthCode: first }))
      expect(reused.reason).toBe(`pre-auth code already used with component ${COMPONENT}`)
      yield* TestClock.adjust(Duration.seconds(1800))
      const expired = yield* Effect.flip(emulator.component.authorize(COMPONENT, MERCHANT, { preAuthCode: second }))
      expect(expired.reason).toBe(`pre-auth code expired for component ${COMPONENT}`)
      expect((yield* emulator.component.stats(COMPONENT)).preAuthCodes).toBe(2)
      expect(yield* call(emulator, "api_create_preauthcode", token, { component_appid: "wx9999999999999999" }))
        .toMatchObject({ errcode: 61011 })
    }))

  it.effect("api_query_auth: the pushed code gives the authorizer's token and refresh token once; 61009 used, 61010 expired", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make()
      const token = yield* tokenFrom(emulator)
      const code = yield* emulator.component.authorize(COMPONENT, MERCHANT, { funcInfo: [1, 15] })
      const answer = yield* queryAuth(emulator, token, code)
      const info = answer["authorization_info"] as Json
      expect(info).toMatchObject({
        authorizer_appid: MERCHANT,
        expires_in: 7200,
        authorizer_refresh_token: yield* emulator.component.currentRefreshToken(COMPONENT, MERCHANT),
        func_info: [{ funcscope_category: { id: 1 } }, { funcscope_category: { id: 15 } }]
      })
      const authorizerToken = String(info["authorizer_access_token"])
      expect(yield* emulator.component.isValidAuthorizerToken(authorizerToken, MERCHANT)).toBe(true)
      expect(yield* emulator.component.isValidAuthorizerToken(authorizerToken, "wx3333333333333333")).toBe(false)
      // An authorizer token is an official-account token: the JS-SDK ticket endpoint takes it.
      const ticket = yield* jsapiTicket(emulator, authorizerToken)
      expect(ticket).toMatchObject({ errcode: 0, expires_in: 7200 })
      expect(yield* emulator.isValidTicket(String(ticket["ticket"]), "jsapi")).toBe(true)
      expect((yield* emulator.appStats(MERCHANT)).ticketCalls).toBe(1)
      // …and so do the business APIs, on the merchant's behalf.
      const sent = yield* emulator.handle({
        method: "POST",
        path: "/cgi-bin/message/custom/send",
        query: new URLSearchParams({ access_token: authorizerToken }),
        body: JSON.stringify({ touser: "openid", msgtype: "text", text: { content: "hello" } })
      })
      expect(sent._tag === "Respond" && JSON.parse(sent.body)).toEqual({ errcode: 0, errmsg: "ok" })
      expect((yield* emulator.apis.calls).map((call) => call.owner)).toEqual([MERCHANT])

      expect(yield* queryAuth(emulator, token, code)).toMatchObject({ errcode: 61009 })
      expect(yield* queryAuth(emulator, token, "queryauthcode@@@unknown")).toMatchObject({ errcode: 61009 })
      // An update: new permissions under the same refresh token.
      const updated = yield* emulator.component.updateAuthorization(COMPONENT, MERCHANT, { funcInfo: [2] })
      expect((yield* queryAuth(emulator, token, updated))["authorization_info"]).toMatchObject({
        authorizer_refresh_token: info["authorizer_refresh_token"],
        func_info: [{ funcscope_category: { id: 2 } }]
      })
      const late = yield* emulator.component.updateAuthorization(COMPONENT, MERCHANT, { funcInfo: [1] })
      yield* TestClock.adjust(Duration.seconds(3600))
      const fresh = yield* tokenFrom(emulator)
      expect(yield* queryAuth(emulator, fresh, late)).toMatchObject({ errcode: 61010 })
      // A code whose merchant revoked before the exchange.
      const revoked = yield* emulator.component.updateAuthorization(COMPONENT, MERCHANT)
      yield* emulator.component.unauthorize(COMPONENT, MERCHANT)
      expect(yield* queryAuth(emulator, fresh, revoked)).toMatchObject({ errcode: 61003 })
      expect(yield* emulator.component.stats(COMPONENT)).toMatchObject({ queryAuthCalls: 6, authorizerTokensIssued: 2 })
    }))

  it.effect("api_authorizer_token: a new token (the old one lives 5 minutes), the same refresh token; 61023 stale, 61003 revoked", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      const token = yield* tokenFrom(emulator)
      const code = yield* emulator.component.authorize(COMPONENT, MERCHANT)
      const info = (yield* queryAuth(emulator, token, code))["authorization_info"] as Json
      const first = String(info["authorizer_access_token"])
      const refreshToken = String(info["authorizer_refresh_token"])
      yield* TestClock.adjust(Duration.minutes(100))
      const answer = yield* refresh(emulator, token, refreshToken)
      expect(answer).toMatchObject({ expires_in: 7200, authorizer_refresh_token: refreshToken })
      const second = String(answer["authorizer_access_token"])
      expect(second).not.toBe(first)
      yield* TestClock.adjust(Duration.seconds(299))
      expect(yield* jsapiTicket(emulator, first)).toMatchObject({ errcode: 0 })
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* jsapiTicket(emulator, first)).toMatchObject({ errcode: 40001 })
      expect(yield* emulator.component.isValidAuthorizerToken(second, MERCHANT)).toBe(true)

      // The refresh token the client holds goes stale; the list has the current one (the recoverable case).
      const current = yield* emulator.component.invalidateRefreshToken(COMPONENT, MERCHANT)
      expect(yield* refresh(emulator, token, refreshToken)).toMatchObject({ errcode: 61023 })
      const listed = yield* listAll(emulator, token)
      expect(listed).toEqual([{ authorizer_appid: MERCHANT, refresh_token: current, auth_time: 0 }])
      expect(yield* refresh(emulator, token, current)).toMatchObject({ authorizer_refresh_token: current })

      // Lost: stale and missing from the list, so only a new authorization helps.
      yield* emulator.component.loseAuthorizer(COMPONENT, MERCHANT)
      expect(yield* refresh(emulator, token, current)).toMatchObject({ errcode: 61023 })
      expect(yield* listAll(emulator, token)).toEqual([])
      yield* emulator.component.authorize(COMPONENT, MERCHANT)
      const again = yield* emulator.component.currentRefreshToken(COMPONENT, MERCHANT)
      expect(again).not.toBe(current)
      const renewed = yield* refresh(emulator, token, again!)
      expect(renewed).toMatchObject({ authorizer_refresh_token: again })

      // Revoked: pushed, its token dies at once, every call answers 61003.
      yield* emulator.component.unauthorize(COMPONENT, MERCHANT)
      expect(field(events.at(-1)!, "InfoType")).toBe("unauthorized")
      expect(field(events.at(-1)!, "AuthorizerAppid")).toBe(MERCHANT)
      expect(yield* emulator.component.isValidAuthorizerToken(String(renewed["authorizer_access_token"]), MERCHANT))
        .toBe(false)
      expect(yield* refresh(emulator, token, again!)).toMatchObject({ errcode: 61003 })
      expect(yield* emulator.component.currentRefreshToken(COMPONENT, MERCHANT)).toBeUndefined()
      expect(yield* refresh(emulator, token, "x", "wx4444444444444444")).toMatchObject({ errcode: 61003 })
      expect(yield* listAll(emulator, token)).toEqual([])
      expect((yield* Effect.flip(emulator.component.unauthorize(COMPONENT, MERCHANT))).reason).toBe(
        `${MERCHANT} has not authorized component ${COMPONENT}`
      )
    }))

  it.effect("refreshTokenRotation every-refresh: each refresh answers a new refresh token and the previous one gets 61023", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make({ refreshTokenRotation: "every-refresh" })
      const token = yield* tokenFrom(emulator)
      yield* emulator.component.authorize(COMPONENT, MERCHANT)
      const first = (yield* emulator.component.currentRefreshToken(COMPONENT, MERCHANT))!
      const rotated = String((yield* refresh(emulator, token, first))["authorizer_refresh_token"])
      expect(rotated).not.toBe(first)
      expect(yield* refresh(emulator, token, first)).toMatchObject({ errcode: 61023 })
      expect(yield* refresh(emulator, token, rotated)).toMatchObject({ expires_in: 7200 })
      expect((yield* listAll(emulator, token))[0]?.refresh_token).toBe(
        yield* emulator.component.currentRefreshToken(COMPONENT, MERCHANT)
      )
    }))

  it.effect("api_get_authorizer_list pages 1,234 generated authorizers by 500; count above 500 is refused", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      const token = yield* tokenFrom(emulator)
      const generated = yield* emulator.component.generateAuthorizers(COMPONENT, 1234)
      expect(new Set(generated).size).toBe(1234)
      expect(events).toHaveLength(1)
      const sizes: Array<number> = []
      for (const offset of [0, 500, 1000]) {
        const answer = yield* page(emulator, token, offset, 500)
        expect(answer["total_count"]).toBe(1234)
        sizes.push((answer["list"] as Array<Listed>).length)
      }
      expect(sizes).toEqual([500, 500, 234])
      const all = yield* listAll(emulator, token)
      expect(all.map((entry) => entry.authorizer_appid)).toEqual(generated)
      expect(yield* page(emulator, token, 0, 501)).toMatchObject({ errcode: 40097 })
      expect(yield* page(emulator, token, -1, 10)).toMatchObject({ errcode: 40097 })
      expect(yield* page(emulator, token, 5000, 10)).toMatchObject({ total_count: 1234, list: [] })
      // Every listed refresh token works.
      const sample = all[777]!
      expect(yield* refresh(emulator, token, sample.refresh_token, sample.authorizer_appid)).toMatchObject({
        authorizer_refresh_token: sample.refresh_token
      })
      expect((yield* emulator.component.stats(COMPONENT)).listCalls).toBe(9)
    }))

  it.effect("generateAuthorizers(100,000) works and the list pages through all of them", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make()
      const token = yield* tokenFrom(emulator)
      const generated = yield* emulator.component.generateAuthorizers(COMPONENT, 100_000)
      const all = yield* listAll(emulator, token)
      expect(all).toHaveLength(100_000)
      expect(new Set(all.map((entry) => entry.authorizer_appid)).size).toBe(100_000)
      expect(new Set(all.map((entry) => entry.refresh_token)).size).toBe(100_000)
      expect(all[99_999]?.authorizer_appid).toBe(generated[99_999])
      const last = all[99_999]!
      expect(yield* refresh(emulator, token, last.refresh_token, last.authorizer_appid)).toMatchObject({
        expires_in: 7200
      })
    }), 60_000)

  it.effect("api_start_push_ticket: answers ok, then pushes a new ticket and resumes stopped pushes; 40125, 61011", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      const start = (body: Json) => post(emulator, "api_start_push_ticket", body)
      expect(yield* start({ component_appid: COMPONENT, component_secret: "wrong" })).toMatchObject({ errcode: 40125 })
      expect(yield* start({ component_appid: "wx9999999999999999", component_secret: SECRET })).toMatchObject({
        errcode: 61011
      })
      yield* emulator.component.stopPushes(COMPONENT)
      expect(yield* start({ component_appid: COMPONENT, component_secret: SECRET })).toEqual({
        errcode: 0,
        errmsg: "ok"
      })
      // The push follows the answer in its own fiber.
      while (events.length === 0) yield* Effect.yieldNow()
      const ticket = field(events[0]!, "ComponentVerifyTicket")
      expect(ticket).toBe(yield* emulator.component.currentVerifyTicket(COMPONENT))
      expect(yield* componentToken(emulator, ticket)).toMatchObject({ expires_in: 7200 })
      // Pushes run again: an authorization is pushed.
      yield* emulator.component.authorize(COMPONENT, MERCHANT)
      expect(field(events.at(-1)!, "InfoType")).toBe("authorized")
      // The refused secret and the accepted call; an unknown component is nobody's.
      expect((yield* emulator.component.stats(COMPONENT)).startPushCalls).toBe(2)
    }))

  it.scoped("verify tickets every 10 simulated minutes; stopped pushes let the ticket expire (61005) after 12 h", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      yield* emulator.component.runTicketSchedule
      yield* emulator.component.runTicketSchedule
      while (events.length === 0) yield* Effect.yieldNow()
      expect(events).toHaveLength(1)
      yield* TestClock.adjust(Duration.minutes(9))
      expect(events).toHaveLength(1)
      yield* TestClock.adjust(Duration.minutes(1))
      expect(events).toHaveLength(2)
      yield* TestClock.adjust(Duration.minutes(50))
      expect(events).toHaveLength(7)
      const times = events.map((xml) => Number(field(xml, "CreateTime")))
      expect(times).toEqual([0, 600, 1200, 1800, 2400, 3000, 3600])
      const tickets = new Set(events.map((xml) => field(xml, "ComponentVerifyTicket")))
      expect(tickets.size).toBe(7)

      yield* emulator.component.stopPushes(COMPONENT)
      const last = yield* emulator.component.currentVerifyTicket(COMPONENT)
      yield* TestClock.adjust(Duration.hours(11))
      expect(events).toHaveLength(7)
      expect(yield* componentToken(emulator, last)).toMatchObject({ expires_in: 7200 })
      yield* TestClock.adjust(Duration.hours(1))
      expect(yield* componentToken(emulator, last)).toMatchObject({ errcode: 61005 })
      yield* emulator.component.resumePushes(COMPONENT)
      yield* TestClock.adjust(Duration.minutes(10))
      expect(events).toHaveLength(8)
      expect(yield* componentToken(emulator, field(events[7]!, "ComponentVerifyTicket"))).toMatchObject({
        expires_in: 7200
      })
    }))

  it.effect("Emulator.layer runs the ticket schedule while it lives", () =>
    Effect.gen(function*() {
      const pushes = receiver()
      yield* Effect.gen(function*() {
        const emulator = yield* Emulator.WeChatEmulator
        while (pushes.events.length === 0) yield* Effect.yieldNow()
        yield* TestClock.adjust(Duration.minutes(20))
        expect(pushes.events).toHaveLength(3)
        expect((yield* emulator.component.stats(COMPONENT)).pushesDelivered).toBe(3)
      }).pipe(Effect.provide(Emulator.layer({ components: [registration], pushTransport: pushes.transport })))
      // Closed with the layer: time goes on, nothing more is pushed.
      yield* TestClock.adjust(Duration.minutes(20))
      expect(pushes.events).toHaveLength(3)
    }))

  it.effect("pushToWebHandler delivers to a web-standard handler in the same process", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const emulator = yield* Emulator.make({
        components: [registration],
        pushTransport: Emulator.pushToWebHandler(async (request) => {
          const body = await request.text()
          return Effect.runPromise(
            open(request.url, body).pipe(
              Effect.map((xml) => {
                received.push(xml)
                return new Response("success")
              }),
              Effect.catchAll((error) => Effect.succeed(new Response(error._tag, { status: 401 })))
            )
          )
        })
      })
      const ticket = yield* emulator.component.pushTicket(COMPONENT)
      expect(received.map((xml) => field(xml, "ComponentVerifyTicket"))).toEqual([ticket])
      expect((yield* emulator.component.pushLog(COMPONENT))[0]).toMatchObject({ delivered: true, attempts: 1 })
    }))

  it.effect(
    "with no push URL anywhere the schedule does not wake: a TestClock jump of decades is free",
    () =>
      Effect.gen(function*() {
        const pushes = receiver()
        yield* Effect.gen(function*() {
          const emulator = yield* Emulator.WeChatEmulator
          yield* TestClock.setTime(1_750_000_000_000)
          expect(pushes.events).toHaveLength(0)
          // The first push URL starts the cadence at once.
          yield* emulator.component.setPushUrl(COMPONENT, registration.pushUrl)
          while (pushes.events.length === 0) yield* Effect.yieldNow()
          yield* TestClock.adjust(Duration.minutes(10))
          expect(pushes.events.map((xml) => Number(field(xml, "CreateTime")))).toEqual([1_750_000_000, 1_750_000_600])
        }).pipe(
          Effect.provide(Emulator.layer({
            components: [withoutPushUrl],
            pushTransport: pushes.transport
          }))
        )
      }),
    10_000
  )

  it.effect("a push answered otherwise than `success` is tried three times, then given up; all of it counted", () =>
    Effect.gen(function*() {
      const answers: Array<Emulator.PushAnswer | "refuse"> = [
        { status: 200, body: "fail" },
        { status: 500, body: "success" },
        "refuse",
        { status: 200, body: "success " },
        { status: 200, body: "success" }
      ]
      const pushes = receiver((attempt) => {
        const answer = answers[attempt - 1]!
        return answer === "refuse" ? Effect.fail(new Error("connection refused")) : Effect.succeed(answer)
      })
      const emulator = yield* Emulator.make({ components: [registration], pushTransport: pushes.transport })
      yield* emulator.component.pushTicket(COMPONENT)
      yield* emulator.component.pushTicket(COMPONENT)
      const log = yield* emulator.component.pushLog(COMPONENT)
      expect(log.map(({ attempts, delivered }) => ({ attempts, delivered }))).toEqual([
        { attempts: 3, delivered: false },
        { attempts: 2, delivered: true }
      ])
      expect(log[0]?.failure).toBe("no answer: connection refused")
      expect(yield* emulator.component.stats(COMPONENT)).toMatchObject({
        pushesSent: 5,
        pushesDelivered: 1,
        pushesFailed: 4,
        pushesAbandoned: 1
      })
      expect(pushes.events).toHaveLength(1)
    }))

  it.effect("a receiver that does not answer within 5 s counts as a failed attempt (TestClock drives the timeout)", () =>
    Effect.gen(function*() {
      const pushes = receiver((attempt) =>
        attempt === 1 ? Effect.never : Effect.succeed({ status: 200, body: "success" })
      )
      const emulator = yield* Emulator.make({ components: [registration], pushTransport: pushes.transport })
      const fiber = yield* Effect.fork(emulator.component.pushTicket(COMPONENT))
      yield* TestClock.adjust(Duration.seconds(5))
      yield* Fiber.join(fiber)
      const log = yield* emulator.component.pushLog(COMPONENT)
      expect(log[0]).toMatchObject({ attempts: 2, delivered: true })
      expect((yield* emulator.component.stats(COMPONENT)).pushesFailed).toBe(1)
    }))

  it.effect("without a push URL or while stopped nothing is sent, but the event is logged", () =>
    Effect.gen(function*() {
      const { emulator, events } = yield* make()
      yield* emulator.component.setPushUrl(COMPONENT, undefined)
      const code = yield* emulator.component.authorize(COMPONENT, MERCHANT)
      yield* emulator.component.setPushUrl(COMPONENT, registration.pushUrl)
      yield* emulator.component.stopPushes(COMPONENT)
      yield* emulator.component.updateAuthorization(COMPONENT, MERCHANT)
      expect(events).toEqual([])
      const log = yield* emulator.component.pushLog(COMPONENT)
      expect(log.map(({ failure, infoType }) => [infoType, failure])).toEqual([
        ["authorized", "no push URL"],
        ["updateauthorized", "pushes stopped"]
      ])
      expect(field(log[0]!.xml, "AuthorizationCode")).toBe(code)
      expect((yield* emulator.component.stats(COMPONENT)).pushesSent).toBe(0)
      const unknown = yield* Effect.flip(emulator.component.pushTicket("wx9999999999999999"))
      expect(unknown).toMatchObject({ _tag: "ComponentControlError", reason: "unknown component wx9999999999999999" })
    }))

  it.effect("faults: limited to a component endpoint, to a component or to one authorizer", () =>
    Effect.gen(function*() {
      const { emulator } = yield* make()
      const ticket = yield* emulator.component.pushTicket(COMPONENT)
      yield* emulator.injectFault({
        fault: Fault.Busy(),
        endpoints: ["api_component_token"],
        appId: COMPONENT,
        times: 1
      })
      expect(yield* componentToken(emulator, ticket)).toMatchObject({ errcode: -1 })
      const token = String((yield* componentToken(emulator, ticket))["component_access_token"])
      const [a, b] = yield* emulator.component.generateAuthorizers(COMPONENT, 2)
      yield* emulator.injectFault({ fault: Fault.Errcode(61023, "refresh_token is invalid"), appId: a! })
      const refreshOf = (merchant: string) =>
        Effect.flatMap(
          emulator.component.currentRefreshToken(COMPONENT, merchant),
          (current) => refresh(emulator, token, current!, merchant)
        )
      expect(yield* refreshOf(a!)).toMatchObject({ errcode: 61023 })
      expect(yield* refreshOf(b!)).toMatchObject({ expires_in: 7200 })
      yield* emulator.clearFaults
      yield* emulator.injectFault({ fault: Fault.HttpStatus(502), endpoints: ["api_get_authorizer_list"] })
      const dropped = yield* emulator.handle({
        method: "POST",
        path: "/cgi-bin/component/api_get_authorizer_list",
        query: new URLSearchParams({ component_access_token: token }),
        body: JSON.stringify({ component_appid: COMPONENT, offset: 0, count: 10 })
      })
      expect(dropped).toMatchObject({ _tag: "Respond", status: 502 })
      expect(yield* emulator.component.stats(COMPONENT)).toMatchObject({
        componentTokenCalls: 2,
        authorizerTokenCalls: 2,
        listCalls: 1
      })
    }))

  it.effect(
    "quotas: 2,000 component tokens a day per component, 2,000 authorizer tokens a day per authorizer (45009 beyond)",
    () =>
      Effect.gen(function*() {
        const { emulator } = yield* make()
        const ticket = yield* emulator.component.pushTicket(COMPONENT)
        for (let i = 0; i < 2000; i++) expect((yield* componentToken(emulator, ticket))["errcode"]).toBeUndefined()
        expect(yield* componentToken(emulator, ticket)).toMatchObject({ errcode: 45009 })
        yield* TestClock.adjust(Duration.hours(24))
        const fresh = yield* emulator.component.pushTicket(COMPONENT)
        const component = String((yield* componentToken(emulator, fresh))["component_access_token"])
        // 2,000 authorizer tokens a day per authorizer: another authorizer is not held back.
        const [a, b] = yield* emulator.component.generateAuthorizers(COMPONENT, 2)
        const refreshA = (yield* emulator.component.currentRefreshToken(COMPONENT, a!))!
        for (let i = 0; i < 2000; i++) {
          expect((yield* refresh(emulator, component, refreshA, a!))["errcode"]).toBeUndefined()
        }
        expect(yield* refresh(emulator, component, refreshA, a!)).toMatchObject({ errcode: 45009 })
        const refreshB = (yield* emulator.component.currentRefreshToken(COMPONENT, b!))!
        expect(yield* refresh(emulator, component, refreshB, b!)).toMatchObject({ expires_in: 7200 })
      }),
    30_000
  )
})

/** Polls `effect` on the wall clock (the test's clock is TestClock) until `done`. */
const waitFor = <A>(effect: Effect.Effect<A>, done: (value: A) => boolean): Effect.Effect<A> =>
  Effect.flatMap(effect, (value) =>
    done(value)
      ? Effect.succeed(value)
      : Effect.zipRight(Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10))), waitFor(effect, done)))

describe("WeChatEmulator: third-party platform over real HTTP", () => {
  it.scoped(
    "pushes reach a loopback receiver that verifies msg_signature and decrypts; the endpoints answer over HTTP",
    () =>
      Effect.gen(function*() {
        const received: Array<string> = []
        const receiverServer = yield* NodeHttpServer.make(() => createServer(), { host: "127.0.0.1", port: 0 })
        yield* receiverServer.serve(Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const body = yield* request.text
          return yield* open(`http://receiver${request.url}`, body).pipe(
            Effect.map((xml) => {
              received.push(xml)
              return HttpServerResponse.text("success")
            }),
            Effect.catchAll(() => Effect.succeed(HttpServerResponse.text("bad signature", { status: 401 })))
          )
        }))
        const address = receiverServer.address
        if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
        const served = yield* Emulator.serve({
          components: [{ ...registration, pushUrl: `http://127.0.0.1:${address.port}/wechat/events?from=wechat` }]
        })
        // `serve` started the schedule: the first ticket is on its way at once.
        const first = yield* waitFor(served.emulator.component.pushLog(COMPONENT), (log) => log.length > 0)
        expect(first[0]).toMatchObject({ infoType: "component_verify_ticket", delivered: true, attempts: 1 })
        const code = yield* served.emulator.component.authorize(COMPONENT, MERCHANT)
        expect(received.map((xml) => field(xml, "InfoType"))).toEqual(["component_verify_ticket", "authorized"])
        expect(field(received[1]!, "AuthorizationCode")).toBe(code)

        const client = yield* HttpClient.HttpClient
        const postJson = (path: string, body: Json) =>
          client.execute(HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(`${served.url}${path}`), body)).pipe(
            Effect.flatMap((response) => response.json),
            Effect.map((json) => json as Json)
          )
        const ticket = field(received[0]!, "ComponentVerifyTicket")
        const token = String(
          (yield* postJson("/cgi-bin/component/api_component_token", {
            component_appid: COMPONENT,
            component_appsecret: SECRET,
            component_verify_ticket: ticket
          }))["component_access_token"]
        )
        const info = (yield* postJson(`/cgi-bin/component/api_query_auth?component_access_token=${token}`, {
          component_appid: COMPONENT,
          authorization_code: code
        }))["authorization_info"] as Json
        expect(info["authorizer_appid"]).toBe(MERCHANT)
        expect(
          yield* served.emulator.component.isValidAuthorizerToken(String(info["authorizer_access_token"]), MERCHANT)
        )
          .toBe(true)
        // Signed with another message token, the receiver refuses: three attempts, none delivered.
        yield* served.emulator.component.registerComponent({
          ...registration,
          messageToken: "another-token",
          pushUrl: `http://127.0.0.1:${address.port}/wechat/events`
        })
        yield* served.emulator.component.pushTicket(COMPONENT)
        const log = yield* served.emulator.component.pushLog(COMPONENT)
        expect(log.at(-1)).toMatchObject({ delivered: false, attempts: 3, failure: "answered 401 \"bad signature\"" })
      }).pipe(Effect.provide(FetchHttpClient.layer)),
    30_000
  )
})
