/**
 * The WeChat-compatible gateway over loopback: an SDK-shaped caller → the
 * token server at WeChat's own paths → the emulator. What the emulator saw
 * is the evidence: only real tokens and the real secret ever arrived, and
 * nothing at all for a refused key or token.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import * as OwnerId from "../../../src/OwnerId.js"
import { awaitReady, call, OPS_KEY } from "../../support/serverStack.js"
import { AGENT, APP, CORP, KEY, OTHER, SCOPED_KEY, SECRET, startProxyStack } from "../ProxyStack.js"

/** A key for the WeCom app only. */
const WECOM_KEY = "wecom-client-key-0123456789abcdef"

const tokenOf = (base: string, appId: string, secret: string) =>
  call(`${base}/cgi-bin/token?grant_type=client_credential&appid=${appId}&secret=${encodeURIComponent(secret)}`)

const gatewayToken = (base: string, appId: string = APP, secret: string = KEY) =>
  Effect.map(tokenOf(base, appId, secret), (answer) => {
    expect(answer.json).toEqual({ access_token: expect.stringMatching(/^gw1\.[A-Za-z0-9._-]+$/), expires_in: 7200 })
    return answer.json.access_token as string
  })

const sendMessage = (base: string, token: string) =>
  call(`${base}/cgi-bin/message/custom/send?access_token=${encodeURIComponent(token)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "hello" } })
  })

const scrape = (base: string) => Effect.map(call(`${base}/metrics`), (answer) => answer.text)

const sample = (text: string, name: string, ...having: ReadonlyArray<string>): number =>
  text.split("\n")
    .filter((line) => line.startsWith(`${name}{`) && having.every((label) => line.includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)

const weComKeys = [
  { key: Redacted.make(KEY) },
  { key: Redacted.make(SCOPED_KEY), apps: [Schema.decodeSync(OwnerId.OwnerId)(OTHER)] },
  { key: Redacted.make(WECOM_KEY), apps: [Schema.decodeSync(OwnerId.OwnerId)(`${CORP}/${AGENT}`)] }
]

describe("Gateway", () => {
  it.scopedLive("cgi-bin/token with a client key answers a gateway token; a call with it reaches WeChat with the real token", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const before = yield* emulator.appStats(APP)
      const token = yield* gatewayToken(base)
      expect(token.length).toBeLessThanOrEqual(512)
      // Issuing a gateway token asks nothing of WeChat.
      expect(yield* emulator.appStats(APP)).toEqual(before)
      const real = yield* engine.get(APP)
      expect(token).not.toContain(real.value)

      const answer = yield* sendMessage(base, token)
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ errcode: 0, errmsg: "ok" })
      const calls = yield* emulator.apis.calls
      expect(calls.map(({ owner, path, query, token }) => ({ owner, path, query, token }))).toEqual([
        { owner: APP, path: "/cgi-bin/message/custom/send", query: {}, token: real.value }
      ])
    }))

  it.scopedLive("stable_token with force_refresh answers a gateway token and never forces WeChat", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const before = yield* emulator.appStats(APP)
      const answer = yield* call(`${base}/cgi-bin/stable_token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credential", appid: APP, secret: KEY, force_refresh: true })
      })
      expect(answer.json).toEqual({ access_token: expect.stringMatching(/^gw1\./), expires_in: 7200 })
      expect(yield* emulator.appStats(APP)).toEqual(before)
      expect((yield* sendMessage(base, answer.json.access_token)).json).toEqual({ errcode: 0, errmsg: "ok" })
    }))

  it.scopedLive("a wrong key, a key not scoped to the app, an unknown app: WeChat's errors, and nothing reaches WeChat", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const before = yield* emulator.stats
      const wrong = yield* tokenOf(base, APP, "not-a-client-key-0123456789")
      expect(wrong.status).toBe(200)
      expect(wrong.json).toEqual({ errcode: 40125, errmsg: "invalid appsecret" })
      expect((yield* tokenOf(base, APP, SCOPED_KEY)).json).toEqual({ errcode: 40013, errmsg: "invalid appid" })
      expect((yield* tokenOf(base, "wx00112233445566ff", KEY)).json).toEqual({
        errcode: 40013,
        errmsg: "invalid appid"
      })
      // The app's own secret is not a client key either.
      expect((yield* tokenOf(base, APP, SECRET)).json.errcode).toBe(40125)
      const stable = yield* call(`${base}/cgi-bin/stable_token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credential", appid: APP, secret: "wrong-key-0123456789abcdef" })
      })
      expect(stable.json).toEqual({ errcode: 40125, errmsg: "invalid appsecret" })
      expect((yield* emulator.stats).apps).toEqual(before.apps)
      expect(yield* emulator.apis.calls).toEqual([])
    }))

  it.scopedLive("a real WeChat token, a forged or foreign token, no token: 40001 and nothing forwarded", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const real = yield* engine.get(APP)
      const token = yield* gatewayToken(base)
      const [version, id, kind, issued, , mac] = token.split(".")
      const otherOwner = [version, id, kind, issued, Buffer.from(OTHER).toString("base64url"), mac].join(".")
      for (const presented of [real.value, otherOwner, `${token}x`, token.slice(0, -2), "gw1.a.a.a.a.a", ""]) {
        const answer = yield* sendMessage(base, presented)
        expect({ presented, status: answer.status, errcode: answer.json.errcode }).toEqual({
          presented,
          status: 200,
          errcode: 40001
        })
      }
      // Two tokens in one call, ours first: which one counts would be a guess.
      const twice = yield* call(
        `${base}/cgi-bin/message/custom/send?access_token=${token}&access_token=${real.value}`,
        { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }
      )
      expect(twice.json.errcode).toBe(40001)
      // Ours, plus the name in another spelling WeChat might read.
      const spelled = yield* call(
        `${base}/cgi-bin/message/custom/send?access_token=${token}&ACCESS_TOKEN=${real.value}`,
        { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }
      )
      expect(spelled.json.errcode).toBe(40001)
      expect(yield* emulator.apis.calls).toEqual([])
    }))

  it.scopedLive("a gateway token works on another server with the same client keys, and not once its key is removed", () =>
    Effect.gen(function*() {
      const first = yield* startProxyStack({ gateway: true })
      const same = yield* startProxyStack({ gateway: true })
      const keyRemoved = yield* startProxyStack({ gateway: true, clientKeys: [{ key: Redacted.make(SCOPED_KEY) }] })
      yield* Effect.forEach([first, same, keyRemoved], ({ base }) => awaitReady(base), { discard: true })
      const token = yield* gatewayToken(first.base)
      expect((yield* sendMessage(same.base, token)).json).toEqual({ errcode: 0, errmsg: "ok" })
      expect((yield* sendMessage(keyRemoved.base, token)).json.errcode).toBe(40001)
      expect(yield* keyRemoved.emulator.apis.calls).toEqual([])
    }))

  it.scopedLive("the real token killed mid-run: the call is replayed with a new one, the caller sees no error", () =>
    Effect.gen(function*() {
      const { base, emulator, engine } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const token = yield* gatewayToken(base)
      const dead = yield* engine.get(APP)
      yield* emulator.killTokens(APP)
      const issuedBefore = (yield* emulator.appStats(APP)).tokensIssued
      const answers = yield* Effect.forEach(
        Array.from({ length: 20 }),
        () => sendMessage(base, token),
        { concurrency: "unbounded" }
      )
      expect(answers.map((answer) => answer.json)).toEqual(answers.map(() => ({ errcode: 0, errmsg: "ok" })))
      expect((yield* emulator.appStats(APP)).tokensIssued - issuedBefore).toBe(1)
      const fresh = yield* engine.get(APP)
      expect(fresh.value).not.toBe(dead.value)
      const tokens = new Set((yield* emulator.apis.calls).map((seen) => seen.token))
      expect([...tokens].every((seen) => seen === dead.value || seen === fresh.value)).toBe(true)
    }))

  it.scopedLive("ticket/getticket is the engine's ticket in WeChat's shape; a held ticket costs no upstream call", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const token = yield* gatewayToken(base)
      const first = yield* call(`${base}/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`)
      expect(first.json).toEqual({
        errcode: 0,
        errmsg: "ok",
        ticket: expect.any(String),
        expires_in: expect.any(Number)
      })
      expect(yield* emulator.isValidTicket(first.json.ticket, "jsapi")).toBe(true)
      const calls = (yield* emulator.appStats(APP)).ticketCalls
      const again = yield* call(`${base}/cgi-bin/ticket/getticket?access_token=${token}&type=jsapi`)
      expect(again.json.ticket).toBe(first.json.ticket)
      expect((yield* emulator.appStats(APP)).ticketCalls).toBe(calls)
      const card = yield* call(`${base}/cgi-bin/ticket/getticket?access_token=${token}&type=wx_card`)
      expect(yield* emulator.isValidTicket(card.json.ticket, "wx_card")).toBe(true)
      const real = yield* call(`${base}/cgi-bin/ticket/getticket?access_token=nope&type=jsapi`)
      expect(real.json.errcode).toBe(40001)
    }))

  it.scopedLive("jscode2session with the client key as secret: WeChat got the real secret, the caller never sees it", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const answer = yield* call(
        `${base}/sns/jscode2session?appid=${APP}&secret=${KEY}&js_code=CODE1&grant_type=authorization_code`
      )
      expect(answer.json).toEqual({ openid: expect.stringMatching(/^o/), session_key: expect.any(String) })
      expect(answer.text).not.toContain(SECRET)
      const oauth = yield* call(
        `${base}/sns/oauth2/access_token?appid=${APP}&secret=${KEY}&code=CODE2&grant_type=authorization_code`
      )
      expect(oauth.json).toMatchObject({ openid: expect.stringMatching(/^o/), scope: "snsapi_base" })
      const refused = yield* call(
        `${base}/sns/jscode2session?appid=${APP}&secret=${SCOPED_KEY}&js_code=CODE1&grant_type=authorization_code`
      )
      expect(refused.json).toEqual({ errcode: 40013, errmsg: "invalid appid" })
      const wrong = yield* call(
        `${base}/sns/jscode2session?appid=${APP}&secret=${SECRET}&js_code=CODE1&grant_type=authorization_code`
      )
      expect(wrong.json).toEqual({ errcode: 40125, errmsg: "invalid appsecret" })
      const calls = yield* emulator.apis.calls
      expect(calls.map(({ path, query }) => ({ path, secret: query["secret"] }))).toEqual([
        { path: "/sns/jscode2session", secret: SECRET },
        { path: "/sns/oauth2/access_token", secret: SECRET }
      ])
    }))

  it.scopedLive("WeCom: gettoken with a client key, the corp and agent tickets from the engine, calls forwarded to WeCom", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true, clientKeys: weComKeys })
      yield* awaitReady(base)
      const answer = yield* call(`${base}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${WECOM_KEY}`)
      expect(answer.json).toEqual({
        errcode: 0,
        errmsg: "ok",
        access_token: expect.stringMatching(/^gw1\./),
        expires_in: 7200
      })
      const token = answer.json.access_token as string
      // A key for every app names the agent.
      const named = yield* call(`${base}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${AGENT}:${KEY}`)
      expect(named.json.errcode).toBe(0)
      expect((yield* call(`${base}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=${SCOPED_KEY}`)).json.errcode).toBe(
        40013
      )
      expect((yield* call(`${base}/cgi-bin/gettoken?corpid=${CORP}&corpsecret=nope-0123456789abcdef`)).json.errcode)
        .toBe(40001)
      const corpTicket = yield* call(`${base}/cgi-bin/get_jsapi_ticket?access_token=${token}`)
      expect(yield* emulator.wecom.isValidTicket(corpTicket.json.ticket, "corp", `${CORP}/${AGENT}`)).toBe(true)
      const agentTicket = yield* call(`${base}/cgi-bin/ticket/get?access_token=${token}&type=agent_config`)
      expect(yield* emulator.wecom.isValidTicket(agentTicket.json.ticket, "agent", `${CORP}/${AGENT}`)).toBe(true)
      const sent = yield* call(`${base}/cgi-bin/message/send?access_token=${token}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ touser: "@all", msgtype: "text", agentid: AGENT, text: { content: "hi" } })
      })
      expect(sent.json).toEqual({ errcode: 0, errmsg: "ok" })
      const calls = yield* emulator.apis.calls
      expect(calls.map(({ owner, path }) => ({ owner, path }))).toEqual([
        { owner: `${CORP}/${AGENT}`, path: "/cgi-bin/message/send" }
      ])
      expect(yield* emulator.wecom.isValidToken(calls[0]!.token!, `${CORP}/${AGENT}`)).toBe(true)
    }))

  it.scopedLive("paths that mint credentials stay refused through the gateway, in WeChat's shape", () =>
    Effect.gen(function*() {
      const { base, emulator } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const token = yield* gatewayToken(base)
      for (const path of ["cgi-bin/clear_quota", "CGI-BIN/Token", "cgi-bin/component/api_create_preauthcode"]) {
        const answer = yield* call(`${base}/${path}?access_token=${token}`, { method: "POST", body: "{}" })
        expect({ path, status: answer.status, errcode: answer.json.errcode }).toEqual({
          path,
          status: 200,
          errcode: 48001
        })
      }
      expect(yield* emulator.apis.calls).toEqual([])
    }))

  it.scopedLive("counted in /metrics per kind of call and outcome", () =>
    Effect.gen(function*() {
      const { base } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const before = yield* scrape(base)
      const token = yield* gatewayToken(base)
      yield* tokenOf(base, APP, "wrong-key-0123456789abcdef")
      yield* sendMessage(base, token)
      const after = yield* scrape(base)
      const delta = (...labels: ReadonlyArray<string>) =>
        sample(after, "wechat_gateway_requests_total", ...labels) -
        sample(before, "wechat_gateway_requests_total", ...labels)
      expect(delta("call=\"token\"", "outcome=\"ok\"")).toBe(1)
      expect(delta("call=\"token\"", "outcome=\"refused\"")).toBe(1)
      expect(delta("call=\"forward\"", "outcome=\"ok\"")).toBe(1)
    }))

  it.scopedLive("with the gateway on, the server's own pages stay the server's: the console serves its page and signs in", () =>
    Effect.gen(function*() {
      const { base } = yield* startProxyStack({ gateway: true, console: true })
      const page = yield* Effect.promise(() => fetch(`${base}/console`))
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toContain("text/html")
      const signIn = yield* Effect.promise(() =>
        fetch(`${base}/console/session`, {
          method: "POST",
          redirect: "manual",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ key: OPS_KEY }).toString()
        })
      )
      expect(signIn.status).toBe(303)
      // And a WeChat path next to it is still the gateway's.
      const wechat = yield* Effect.promise(() =>
        fetch(`${base}/consoles`).then((answer) => answer.json() as Promise<{ errcode: number }>)
      )
      expect(wechat.errcode).toBe(40001)
    }))

  it.scopedLive("without the gateway, WeChat's paths are the server's 404", () =>
    Effect.gen(function*() {
      const { base } = yield* startProxyStack()
      const answer = yield* tokenOf(base, APP, KEY)
      expect(answer.status).toBe(404)
      expect(answer.json.error.code).toBe("not_found")
    }))
})
