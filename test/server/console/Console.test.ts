/**
 * The console over HTTP against a real server on loopback and the WeChat
 * emulator: who may sign in, what a session is, what is readable without
 * one, the CSRF token on every action, the table's paging and filters over
 * 100,000 credentials, and the actions' effect upstream and in the audit log.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Redacted } from "effect"
import { APP, call, KEY, send, serveUpstream } from "../../support/serverStack.js"
import { authorizerOf, form, OPS_KEY, serveConsole, signIn } from "./support.js"

const API_ROUTES: ReadonlyArray<readonly [string, string]> = [
  ["GET", "/console/api/credentials"],
  ["GET", "/console/api/timeline"],
  ["GET", "/console/api/budgets"],
  ["GET", "/console/api/traffic"],
  ["GET", "/console/api/replicas"],
  ["POST", "/console/api/refresh"],
  ["POST", "/console/api/retire"]
]

describe("Console", () => {
  it.live("without a session: the sign-in form only, and every API route 401", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({ upstream })
      const page = yield* call(`${base}/console`)
      expect(page.status).toBe(200)
      expect(page.text).toContain(`<form method="post" action="/console/session">`)
      expect(page.text).not.toContain(APP)
      expect(page.text).not.toContain("csrf-token")
      for (const [method, path] of API_ROUTES) {
        const answer = yield* call(`${base}${path}`, {
          method,
          headers: { "content-type": "application/json", cookie: "console_session=forged" },
          ...(method === "POST" ? { body: JSON.stringify({ owner: APP }) } : {})
        })
        expect([path, answer.status, answer.json?.error?.code]).toEqual([path, 401, "unauthorized"])
      }
    }).pipe(Effect.scoped))

  it.live("an ops key signs in with a short-lived HttpOnly, SameSite=Strict cookie; a client key cannot", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({ upstream })
      const refused = yield* call(`${base}/console/session`, form({ key: KEY }))
      expect(refused.status).toBe(401)
      expect(refused.headers.get("set-cookie")).toBeNull()
      expect(refused.text).toContain("This key may not sign in")
      const empty = yield* call(`${base}/console/session`, form({}))
      expect(empty.status).toBe(401)

      const { answer, cookie, page } = yield* signIn(base)
      expect(answer.status).toBe(303)
      expect(answer.headers.get("location")).toBe("/console")
      const setCookie = answer.headers.get("set-cookie") ?? ""
      expect(setCookie).toMatch(/^console_session=[A-Za-z0-9_-]{43}; /)
      expect(setCookie).toContain("; HttpOnly")
      expect(setCookie).toContain("; SameSite=Strict")
      expect(setCookie).toContain("; Path=/console")
      expect(setCookie).toContain("; Max-Age=900")
      expect(page.status).toBe(200)
      expect(page.text).toContain(`<code>${APP}</code>`)
      expect(page.text).not.toContain(OPS_KEY)
      const rows = yield* call(`${base}/console/api/credentials`, { headers: { cookie } })
      expect(rows.status).toBe(200)
      expect(rows.json.rows.map((row: { owner: string }) => row.owner)).toContain(APP)
    }).pipe(Effect.scoped))

  it.live("a flood of wrong keys from one address gets 429; a right key from another address signs in at once", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base, port } = yield* serveConsole({ upstream })
      const post = (key: string, localAddress: string) =>
        send(port, {
          method: "POST",
          path: "/console/session",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ key }).toString(),
          localAddress
        })
      const flood: Array<number> = []
      for (let attempt = 0; attempt < 30; attempt++) flood.push((yield* post(`${KEY}-${attempt}`, "127.0.0.1")).status)
      expect(flood.slice(0, 10)).toEqual(Array(10).fill(401))
      expect(flood.slice(10)).toEqual(Array(20).fill(429))
      const limited = yield* post(KEY, "127.0.0.1")
      expect(limited.status).toBe(429)
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0)
      expect(limited.text).toContain("Too many wrong keys from this address")
      // The flooded address is refused before its key is compared, even the right one: guessing stops there.
      expect((yield* post(OPS_KEY, "127.0.0.1")).status).toBe(429)
      const elsewhere = yield* post(OPS_KEY, "127.0.0.2")
      expect([elsewhere.status, elsewhere.headers.location]).toEqual([303, "/console"])
      expect((yield* call(`${base}/console`)).status).toBe(200)
    }).pipe(Effect.scoped))

  it.live("a session ends after its lifetime without use, and on sign-out", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({
        upstream,
        console: { keys: [Redacted.make(OPS_KEY)], sessionLifetime: "1 second" }
      })
      const first = yield* signIn(base)
      expect(first.page.text).toContain("csrf-token")
      yield* Effect.sleep("1500 millis")
      const expired = yield* call(`${base}/console/api/credentials`, { headers: { cookie: first.cookie } })
      expect(expired.status).toBe(401)
      const page = yield* call(`${base}/console`, { headers: { cookie: first.cookie } })
      expect(page.text).not.toContain("csrf-token")

      const second = yield* signIn(base)
      const noCsrf = yield* call(`${base}/console/session/end`, {
        ...form({}),
        headers: { ...form({}).headers, cookie: second.cookie }
      })
      expect(noCsrf.status).toBe(403)
      const out = yield* call(`${base}/console/session/end`, {
        ...form({ csrf: second.csrf }),
        headers: { ...form({}).headers, cookie: second.cookie }
      })
      expect(out.status).toBe(303)
      expect(out.headers.get("set-cookie")).toContain("Max-Age=0")
      const after = yield* call(`${base}/console/api/replicas`, { headers: { cookie: second.cookie } })
      expect(after.status).toBe(401)
    }).pipe(Effect.scoped))

  it.live("an action without the session's CSRF token is refused; with it, it runs upstream and is audited", () => {
    const lines: Array<string> = []
    const logger = Logger.map(Logger.logfmtLogger, (line) => lines.push(line))
    return Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({ upstream, logger })
      const { cookie, csrf } = yield* signIn(base)
      const other = yield* signIn(base)
      const before = yield* upstream.tokenFetches
      const refresh = (headers: Record<string, string>) =>
        call(`${base}/console/api/refresh`, {
          method: "POST",
          headers: { "content-type": "application/json", cookie, ...headers },
          body: JSON.stringify({ owner: APP, kind: "access_token" })
        })
      for (const headers of [{}, { "x-csrf-token": "" }, { "x-csrf-token": other.csrf }]) {
        const refused = yield* refresh(headers)
        expect([refused.status, refused.json.error.code]).toEqual([403, "csrf_token_mismatch"])
      }
      expect(yield* upstream.tokenFetches).toBe(before)

      const done = yield* refresh({ "x-csrf-token": csrf })
      expect(done.status).toBe(200)
      expect(done.json.message).toContain(`Refreshed the access_token of ${APP}`)
      expect(yield* upstream.tokenFetches).toBe(before + 1)
      const audit = lines.filter((line) => line.includes("console action"))
      expect(audit).toHaveLength(1)
      expect(audit[0]).toContain("action=refresh")
      expect(audit[0]).toContain(`owner=${APP}`)
      expect(audit[0]).toMatch(/by="key [0-9a-f]{8}"/)
      expect(lines.join("\n")).not.toContain(OPS_KEY)

      const retire = yield* call(`${base}/console/api/retire`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie, "x-csrf-token": csrf },
        body: JSON.stringify({ owner: APP })
      })
      expect([retire.status, retire.json.error.code]).toEqual([400, "not_an_authorizer"])
      const timeline = yield* call(`${base}/console/api/timeline`, { headers: { cookie } })
      expect(timeline.json.timeline.times).toHaveLength(1_440)
      const issued: Array<number> = timeline.json.timeline.series.issued
      expect(issued.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2)
      expect(timeline.json.owners).toContain(APP)
    }).pipe(Effect.scoped)
  })

  it.live("the table pages, searches and filters 100,000 credentials on the server", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({ upstream, authorizers: 100_000 })
      const { cookie } = yield* signIn(base)
      const get = (query: string) => call(`${base}/console/api/credentials?${query}`, { headers: { cookie } })
      const first = yield* get("size=100")
      expect([first.json.total, first.json.matched, first.json.pages, first.json.rows.length])
        .toEqual([100_001, 100_001, 1_001, 100])
      const last = yield* get("size=100&page=1001")
      expect(last.json.rows.map((row: { owner: string }) => row.owner)).toEqual([authorizerOf(99_999)])
      const found = yield* get(`q=${encodeURIComponent(authorizerOf(4_321))}`)
      expect(found.json.rows.map((row: { owner: string }) => row.owner)).toEqual([authorizerOf(4_321)])
      const invalid = yield* get("family=authorizer&state=invalid&size=25")
      expect(invalid.json.matched).toBe(10_000)
      expect(invalid.json.rows[0]).toMatchObject({
        owner: authorizerOf(3),
        state: "invalid",
        expiresIn: null,
        lastFailure: { code: "upstream_busy", advice: expect.stringContaining("system busy") },
        retirable: true
      })
      const official = yield* get("family=official-account")
      expect(official.json.rows.map((row: { owner: string }) => row.owner)).toEqual([APP])
      const bad = yield* get("size=7&state=sleepy")
      expect([bad.status, bad.json.error.code]).toEqual([400, "invalid_request"])
      expect(bad.json.error.message).toBe(
        "state: one of valid, failing, invalid, retired, or empty; size: one of 25, 50, 100"
      )
      const page = yield* call(`${base}/console?q=${encodeURIComponent(authorizerOf(7))}&state=failing`, {
        headers: { cookie }
      })
      expect(page.text).toContain(`<code>${authorizerOf(7)}</code>`)
      expect(page.text).toContain("Showing 1–1 of 1 matching · 100,001 credentials")
    }).pipe(Effect.scoped))
})
