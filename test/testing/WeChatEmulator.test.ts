import { HttpClient, HttpClientRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import { TRUNCATED_BODY } from "../../src/testing/Fault.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"

const APP = "wx0123456789abcdef"
const SECRET = "emulated-secret"

type Answer = { readonly status: number; readonly json: Record<string, unknown> | undefined; readonly body: string }

const answerOf = (response: Emulator.EmulatorResponse): Answer => {
  if (response._tag === "Drop") throw new Error(`connection dropped: ${response.reason}`)
  let json: Record<string, unknown> | undefined
  try {
    json = JSON.parse(response.body)
  } catch {
    json = undefined
  }
  return { status: response.status, json, body: response.body }
}

const request = (method: string, path: string, query: Record<string, string> = {}, body = "") =>
  Effect.flatMap(
    Emulator.WeChatEmulator,
    (emulator) => emulator.handle({ method, path, query: new URLSearchParams(query), body })
  ).pipe(Effect.map(answerOf))

const classic = (secret = SECRET, appid = APP) =>
  request("GET", "/cgi-bin/token", { grant_type: "client_credential", appid, secret })

const stable = (options: { readonly force?: boolean; readonly secret?: string } = {}) =>
  request(
    "POST",
    "/cgi-bin/stable_token",
    {},
    JSON.stringify({
      grant_type: "client_credential",
      appid: APP,
      secret: options.secret ?? SECRET,
      force_refresh: options.force ?? false
    })
  )

const tokenOf = (answer: Answer): string => {
  const token = answer.json?.["access_token"]
  if (typeof token !== "string") throw new Error(`no token in ${answer.body}`)
  return token
}

const callbackIp = (token: string) => request("GET", "/cgi-bin/getcallbackip", { access_token: token })

const errcode = (answer: Answer) => answer.json?.["errcode"]

const emulator = Effect.flatMap(Emulator.WeChatEmulator, Effect.succeed)

const withEmulator = <A, E>(
  body: Effect.Effect<A, E, Emulator.WeChatEmulator>,
  options: Emulator.EmulatorOptions = {}
) => Effect.provide(body, Emulator.layer({ apps: [{ appId: APP, secret: SECRET }], ...options }))

describe("WeChatEmulator: classic token", () => {
  it.effect("issues a 7,200 s token that getcallbackip accepts", () =>
    withEmulator(Effect.gen(function*() {
      const answer = yield* classic()
      expect(answer.status).toBe(200)
      expect(answer.json?.["expires_in"]).toBe(7200)
      expect(tokenOf(answer)).toMatch(/^[A-Za-z0-9_-]{150}$/)
      const ips = yield* callbackIp(tokenOf(answer))
      expect(Array.isArray(ips.json?.["ip_list"])).toBe(true)
      expect((yield* (yield* emulator).stats).apps[APP]).toMatchObject({
        classicCalls: 1,
        tokensIssued: 1,
        callbackIpCalls: 1
      })
    })))

  it.effect("a new token cuts the previous one to five minutes; then WeChat answers 40001", () =>
    withEmulator(Effect.gen(function*() {
      const first = tokenOf(yield* classic())
      yield* TestClock.adjust(Duration.minutes(30))
      const second = tokenOf(yield* classic())
      expect(second).not.toBe(first)
      const controls = yield* emulator
      yield* TestClock.adjust(Duration.seconds(299))
      expect(yield* controls.isValidToken(first)).toBe(true)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* controls.isValidToken(first)).toBe(false)
      expect(yield* controls.isValidToken(second)).toBe(true)
      expect(errcode(yield* callbackIp(first))).toBe(40001)
      const stats = yield* controls.stats
      expect(stats.apps[APP]?.deadTokenUses).toBe(1)
      expect(stats.deadTokenUses).toBe(1)
    })))

  it.effect("a token that reaches its natural end answers 42001", () =>
    withEmulator(Effect.gen(function*() {
      const token = tokenOf(yield* classic())
      yield* TestClock.adjust(Duration.seconds(7200))
      expect(errcode(yield* callbackIp(token))).toBe(42001)
    })))

  it.effect("bad requests get WeChat's errcodes, with HTTP 200", () =>
    withEmulator(Effect.gen(function*() {
      const wrongSecret = yield* classic("wrong")
      expect(wrongSecret.status).toBe(200)
      expect(errcode(wrongSecret)).toBe(40001)
      expect(errcode(yield* classic(SECRET, "wxffffffffffffffff"))).toBe(40013)
      expect(errcode(yield* request("GET", "/cgi-bin/token", { grant_type: "x", appid: APP, secret: SECRET }))).toBe(
        40002
      )
      expect(errcode(yield* request("GET", "/cgi-bin/token", { grant_type: "client_credential", secret: SECRET })))
        .toBe(41002)
      expect(errcode(yield* request("GET", "/cgi-bin/token", { grant_type: "client_credential", appid: APP }))).toBe(
        41004
      )
      expect(errcode(yield* callbackIp(""))).toBe(41001)
      expect(errcode(yield* callbackIp("not a token!"))).toBe(40014)
      expect(errcode(yield* callbackIp("A".repeat(150)))).toBe(40001)
      expect((yield* (yield* emulator).stats).apps[APP]?.tokensIssued ?? 0).toBe(0)
    })))

  it.effect("an IP outside the whitelist gets 40164 naming the IP; fixing the whitelist recovers", () =>
    withEmulator(
      Effect.gen(function*() {
        const refused = yield* classic()
        expect(errcode(refused)).toBe(40164)
        expect(String(refused.json?.["errmsg"])).toContain("203.0.113.7")
        yield* (yield* emulator).registerApp({ appId: APP, secret: SECRET, ipWhitelist: ["203.0.113.7"] })
        expect(tokenOf(yield* classic())).toBeTruthy()
      }),
      { apps: [{ appId: APP, secret: SECRET, ipWhitelist: ["198.51.100.1"] }], callerIp: "203.0.113.7" }
    ))

  it.effect("2,000 tokens a day, then 45009 until clear_quota or the next day", () =>
    withEmulator(Effect.gen(function*() {
      for (let i = 0; i < 2000; i++) expect(errcode(yield* classic())).toBeUndefined()
      expect(errcode(yield* classic())).toBe(45009)
      const controls = yield* emulator
      yield* controls.clearQuota(APP)
      expect(errcode(yield* classic())).toBeUndefined()
      for (let i = 0; i < 1999; i++) yield* classic()
      expect(errcode(yield* classic())).toBe(45009)
      yield* TestClock.adjust(Duration.days(1))
      expect(errcode(yield* classic())).toBeUndefined()
    })))

  it.effect("killTokens kills every live token of the app at once", () =>
    withEmulator(Effect.gen(function*() {
      const token = tokenOf(yield* classic())
      yield* (yield* emulator).killTokens(APP)
      expect(errcode(yield* callbackIp(token))).toBe(40001)
    })))
})

describe("WeChatEmulator: stable token", () => {
  it.effect("answers the same token while more than five minutes remain, with the remaining expires_in", () =>
    withEmulator(Effect.gen(function*() {
      const first = yield* stable()
      yield* TestClock.adjust(Duration.seconds(1000))
      const again = yield* stable()
      expect(tokenOf(again)).toBe(tokenOf(first))
      expect(again.json?.["expires_in"]).toBe(6200)
      expect((yield* (yield* emulator).stats).apps[APP]).toMatchObject({ stableCalls: 2, tokensIssued: 1 })
    })))

  it.effect("renews by itself in the last five minutes; the old token lives out its natural life", () =>
    withEmulator(Effect.gen(function*() {
      const first = tokenOf(yield* stable())
      yield* TestClock.adjust(Duration.seconds(7200 - 300))
      const renewed = yield* stable()
      expect(tokenOf(renewed)).not.toBe(first)
      expect(renewed.json?.["expires_in"]).toBe(7200)
      const controls = yield* emulator
      yield* TestClock.adjust(Duration.seconds(299))
      expect(yield* controls.isValidToken(first)).toBe(true)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* controls.isValidToken(first)).toBe(false)
    })))

  it.effect("a wrong secret is 40125; a body that is not JSON is 47001", () =>
    withEmulator(Effect.gen(function*() {
      expect(errcode(yield* stable({ secret: "wrong" }))).toBe(40125)
      expect(errcode(yield* request("POST", "/cgi-bin/stable_token", {}, "{not json"))).toBe(47001)
    })))

  it.effect("force_refresh: a new token with a five-minute overlap, at least 30 s apart, 20 a day", () =>
    withEmulator(Effect.gen(function*() {
      const first = tokenOf(yield* stable())
      const forced = tokenOf(yield* stable({ force: true }))
      expect(forced).not.toBe(first)
      expect(errcode(yield* stable({ force: true }))).toBe(45011)
      const controls = yield* emulator
      yield* TestClock.adjust(Duration.seconds(300))
      expect(yield* controls.isValidToken(first)).toBe(false)
      for (let i = 1; i < 20; i++) {
        yield* TestClock.adjust(Duration.seconds(30))
        expect(errcode(yield* stable({ force: true }))).toBeUndefined()
      }
      yield* TestClock.adjust(Duration.seconds(30))
      expect(errcode(yield* stable({ force: true }))).toBe(45009)
      // clear_quota does not give force refreshes back.
      yield* controls.clearQuota(APP)
      expect(errcode(yield* stable({ force: true }))).toBe(45009)
      expect((yield* controls.stats).apps[APP]?.forceRefreshes).toBe(23)
    })))
})

describe("WeChatEmulator: tickets", () => {
  it.effect("issues jsapi and wx_card tickets for a live token and knows which type each is", () =>
    withEmulator(Effect.gen(function*() {
      const token = tokenOf(yield* classic())
      const jsapi = yield* request("GET", "/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" })
      expect(jsapi.json).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 })
      const ticket = String(jsapi.json?.["ticket"])
      const controls = yield* emulator
      expect(yield* controls.isValidTicket(ticket, "jsapi")).toBe(true)
      expect(yield* controls.isValidTicket(ticket, "wx_card")).toBe(false)
      const bad = yield* request("GET", "/cgi-bin/ticket/getticket", { access_token: token, type: "other" })
      expect(errcode(bad)).toBe(40097)
      yield* TestClock.adjust(Duration.seconds(7200))
      expect(yield* controls.isValidTicket(ticket, "jsapi")).toBe(false)
      expect((yield* controls.stats).apps[APP]?.ticketCalls).toBe(2)
    })))
})

describe("WeChatEmulator: ticket renewal", () => {
  const getTicket = (token: string) =>
    request("GET", "/cgi-bin/ticket/getticket", { access_token: token, type: "jsapi" })
  const ticketOf = (answer: Answer) => String(answer.json?.["ticket"])

  it.effect("same-while-valid (default): the same ticket, labelled 7,200 s again, until it expires", () =>
    withEmulator(Effect.gen(function*() {
      const controls = yield* emulator
      const token = tokenOf(yield* classic())
      const first = ticketOf(yield* getTicket(token))
      yield* TestClock.adjust(Duration.seconds(7_000))
      const again = yield* getTicket(token)
      expect(ticketOf(again)).toBe(first)
      expect(again.json?.["expires_in"]).toBe(7200)
      // The label does not extend it: it still dies 7,200 s after it was issued.
      yield* TestClock.adjust(Duration.seconds(200))
      expect(yield* controls.isValidTicket(first, "jsapi")).toBe(false)
      const renewed = ticketOf(yield* getTicket(tokenOf(yield* classic())))
      expect(renewed).not.toBe(first)
      expect(yield* controls.isValidTicket(renewed, "jsapi")).toBe(true)
    })))

  it.effect("new-per-call: a new ticket every call; the previous one lives five more minutes", () =>
    withEmulator(
      Effect.gen(function*() {
        const controls = yield* emulator
        const token = tokenOf(yield* classic())
        const first = ticketOf(yield* getTicket(token))
        yield* TestClock.adjust(Duration.seconds(60))
        const second = ticketOf(yield* getTicket(token))
        expect(second).not.toBe(first)
        yield* TestClock.adjust(Duration.seconds(299))
        expect(yield* controls.isValidTicket(first, "jsapi")).toBe(true)
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* controls.isValidTicket(first, "jsapi")).toBe(false)
        expect(yield* controls.isValidTicket(second, "jsapi")).toBe(true)
      }),
      { ticketRenewal: "new-per-call" }
    ))
})

describe("WeChatEmulator: closer to WeChat", () => {
  it.effect("GET /cgi-bin/stable_token answers 43002: the endpoint takes POST only", () =>
    withEmulator(Effect.gen(function*() {
      const answer = yield* request("GET", "/cgi-bin/stable_token", {
        grant_type: "client_credential",
        appid: APP,
        secret: SECRET
      })
      expect(answer.status).toBe(200)
      expect(errcode(answer)).toBe(43002)
      expect(String(answer.json?.["errmsg"])).toMatch(/^require POST method rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/)
    })))

  it.effect("every errmsg ends in a request id, a different one per answer", () =>
    withEmulator(Effect.gen(function*() {
      const first = String((yield* classic("wrong")).json?.["errmsg"])
      const second = String((yield* classic("wrong")).json?.["errmsg"])
      expect(first).toMatch(/ rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/)
      expect(second).toMatch(/ rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/)
      expect(first).not.toBe(second)
    })))

  it.effect("getcallbackip counts against a daily quota: 10,000 calls, then 45009 until clear_quota", () =>
    withEmulator(Effect.gen(function*() {
      const controls = yield* emulator
      const token = tokenOf(yield* classic())
      for (let call = 0; call < 10_000; call++) expect(errcode(yield* callbackIp(token))).toBeUndefined()
      expect(errcode(yield* callbackIp(token))).toBe(45009)
      yield* controls.clearQuota(APP)
      expect(errcode(yield* callbackIp(token))).toBeUndefined()
    })))
})

describe("WeChatEmulator: faults", () => {
  it.effect("a rule with `times` answers that many matching requests, then WeChat is normal again", () =>
    withEmulator(Effect.gen(function*() {
      const controls = yield* emulator
      yield* controls.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["token"], times: 2 })
      expect(errcode(yield* classic())).toBe(-1)
      expect(errcode(yield* stable())).toBeUndefined()
      expect(errcode(yield* classic())).toBe(-1)
      expect(errcode(yield* classic())).toBeUndefined()
      expect((yield* controls.stats).apps[APP]).toMatchObject({ classicCalls: 3, stableCalls: 1 })
    })))

  it.effect("rules match by app; HTTP status, malformed and errcode answers look like WeChat's", () =>
    withEmulator(Effect.gen(function*() {
      const controls = yield* emulator
      yield* controls.injectFault({ fault: Emulator.Fault.HttpStatus(502), appId: "wxffffffffffffffff" })
      expect(errcode(yield* classic())).toBeUndefined()
      yield* controls.clearFaults
      yield* controls.injectFault({ fault: Emulator.Fault.HttpStatus(502), times: 1 })
      const gateway = yield* classic()
      expect(gateway.status).toBe(502)
      expect(gateway.body).toContain("nginx")
      yield* controls.injectFault({ fault: Emulator.Fault.Malformed(), times: 1 })
      expect((yield* classic()).body).toBe(TRUNCATED_BODY)
      yield* controls.injectFault({ fault: Emulator.Fault.Errcode(89503, "risky ip"), times: 1 })
      expect(errcode(yield* classic())).toBe(89503)
    })))

  it.effect("Slow answers after the delay on the Clock; peakInFlight counts the waiting requests", () =>
    withEmulator(Effect.gen(function*() {
      const controls = yield* emulator
      yield* controls.injectFault({ fault: Emulator.Fault.Slow("10 seconds"), times: 3 })
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(classic()))
      yield* TestClock.adjust(Duration.seconds(9))
      expect(yield* Effect.forEach(fibers, (fiber) => Fiber.poll(fiber))).toEqual(
        fibers.map(() => expect.objectContaining({ _tag: "None" }))
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const answers = yield* Effect.forEach(fibers, Fiber.join)
      expect(answers.every((answer) => typeof answer.json?.["access_token"] === "string")).toBe(true)
      expect((yield* controls.stats).peakInFlight).toBe(3)
    })))

  it.effect("through the in-process HttpClient, a refused connection is a transport RequestError", () =>
    Effect.gen(function*() {
      const controls = yield* emulator
      yield* controls.injectFault({ fault: Emulator.Fault.ConnectionRefused(), times: 1 })
      const client = yield* HttpClient.HttpClient
      const url = `http://wechat.test/cgi-bin/token?grant_type=client_credential&appid=${APP}&secret=${SECRET}`
      const refused = yield* Effect.flip(client.execute(HttpClientRequest.get(url)))
      expect(refused).toMatchObject({ _tag: "RequestError", reason: "Transport" })
      const ok = yield* client.execute(HttpClientRequest.get(url)).pipe(Effect.flatMap((response) => response.json))
      expect(ok).toMatchObject({ expires_in: 7200 })
    }).pipe(
      Effect.provide(Emulator.layerClient),
      Effect.provide(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] }))
    ))
})

describe("WeChatEmulator over loopback HTTP", () => {
  it.scoped("serves the endpoints to a real HTTP client; a reset fault drops the connection", () =>
    Effect.gen(function*() {
      const served = yield* Emulator.serve({ apps: [{ appId: APP, secret: SECRET }] })
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const fetchJson = (path: string, init?: RequestInit) =>
        Effect.promise(() =>
          fetch(`${served.url}${path}`, init).then((response) => response.json() as Promise<Record<string, unknown>>)
        )
      const token = yield* fetchJson(`/cgi-bin/token?grant_type=client_credential&appid=${APP}&secret=${SECRET}`)
      expect(token["expires_in"]).toBe(7200)
      const stableToken = yield* fetchJson("/cgi-bin/stable_token", {
        method: "POST",
        body: JSON.stringify({ grant_type: "client_credential", appid: APP, secret: SECRET })
      })
      expect(typeof stableToken["access_token"]).toBe("string")
      const ips = yield* fetchJson(`/cgi-bin/getcallbackip?access_token=${String(token["access_token"])}`)
      expect(Array.isArray(ips["ip_list"])).toBe(true)
      yield* served.emulator.injectFault({ fault: Emulator.Fault.ConnectionReset(), times: 1 })
      const reset = yield* Effect.promise(() =>
        fetch(`${served.url}/cgi-bin/token?grant_type=client_credential&appid=${APP}&secret=${SECRET}`).then(
          () => "answered",
          () => "dropped"
        )
      )
      expect(reset).toBe("dropped")
      expect((yield* served.emulator.stats).apps[APP]).toMatchObject({
        classicCalls: 2,
        stableCalls: 1,
        tokensIssued: 2
      })
    }))
})
