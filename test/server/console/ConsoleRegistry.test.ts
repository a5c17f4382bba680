/**
 * The registry's actions in the console, over HTTP against a real server
 * with the admin API and the WeChat emulator: an admin key's session adds,
 * replaces and removes apps and WeCom apps and creates and revokes client
 * keys through plain forms, each tried, confirmed, CSRF-protected and
 * audited in the admin API's own audit log; an ops key's session, a form
 * without its CSRF token or its "Confirm" box, and bad input change nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { callerId } from "../../../src/server/admin/Admin.js"
import { APP, call, KEY, OTHER, SECRET } from "../../support/serverStack.js"
import { ADMIN_KEY, AGENT_SECRET, CORP2, ENV_AGENT, serve, ServedConsole } from "../admin/adminServer.js"
import { form, OPS_KEY, signIn } from "./support.js"

const WRONG = "a-wrong-secret-never-in-any-answer"

const serveWithConsole = serve.pipe(
  Effect.provideService(ServedConsole, { keys: [Redacted.make(OPS_KEY), Redacted.make(ADMIN_KEY)] })
)

/** Posts a registry form as a browser would, with the session's cookie. */
const post = (base: string, cookie: string, action: string, fields: Record<string, string>) =>
  call(`${base}/console/registry/${action}`, { ...form(fields), headers: { ...form(fields).headers, cookie } })

const ENTITIES: Record<string, string> = { "&quot;": "\"", "&#39;": "'", "&lt;": "<", "&gt;": ">", "&amp;": "&" }

// The message the page shows after a form, as a person reads it.
const outcomeOf = (text: string) =>
  /<p id="outcome"[^>]*>([^<]*)<\/p>/.exec(text)?.[1]?.replace(/&(quot|#39|lt|gt|amp);/g, (entity) => ENTITIES[entity]!)

describe("Console: the registry's actions", () => {
  it.live(
    "apps: added (its secret tried first), a wrong secret refused with its errcode, removed; all audited",
    () =>
      Effect.gen(function*() {
        const server = yield* serveWithConsole
        const { base, registry } = server
        const { cookie, csrf, page } = yield* signIn(base, ADMIN_KEY)
        expect(page.text).toContain(`href="/console/registry"`)
        const listed = yield* call(`${base}/console/registry`, { headers: { cookie } })
        expect(listed.status).toBe(200)
        expect(listed.text).toContain(`<code>${APP}</code>`)
        expect(listed.text).toContain("environment (read-only)")

        const added = yield* post(base, cookie, "apps", { csrf, confirm: "yes", appId: OTHER, secret: SECRET })
        expect([added.status, outcomeOf(added.text)]).toEqual([200, `Added ${OTHER}; its secret works.`])
        expect(added.text).toContain(`<code>${OTHER}</code>`)
        const token = `/v1/apps/${OTHER}/access-token`
        const served = yield* server.call("GET", token, KEY)
        expect(served.status).toBe(200)
        // The token that checked the secret is the one served: one fetch in all.
        expect(yield* server.fetches).toBe(1)

        const wrong = yield* post(base, cookie, "apps", { csrf, confirm: "yes", appId: OTHER, secret: WRONG })
        expect(wrong.status).toBe(422)
        expect(outcomeOf(wrong.text)).toMatch(/^WeChat refused the secret \(errcode 40\d{3}\); nothing changed$/)
        expect(Redacted.value((yield* registry.current).apps.get(OTHER)!.secret)).toBe(SECRET)
        expect(JSON.parse((yield* server.call("GET", token, KEY)).text).access_token)
          .toBe(JSON.parse(served.text).access_token)

        const envApp = yield* post(base, cookie, "apps/remove", { csrf, confirm: "yes", appId: APP })
        expect([envApp.status, outcomeOf(envApp.text)]).toEqual([
          409,
          `app ${APP} is configured by the environment; change it there`
        ])
        const removed = yield* post(base, cookie, "apps/remove", { csrf, confirm: "yes", appId: OTHER })
        expect([removed.status, outcomeOf(removed.text)]).toEqual([200, `Removed ${OTHER}.`])
        expect((yield* server.call("GET", token, KEY)).status).toBe(404)

        // The admin API's audit, under the admin key's same id.
        const audit = JSON.parse((yield* server.call("GET", "/v1/admin/audit", ADMIN_KEY)).text).entries as Array<
          { actor: string; action: string; outcome: string }
        >
        expect(audit.map((entry) => `${entry.actor} ${entry.action} ${entry.outcome}`)).toEqual([
          `${callerId(ADMIN_KEY)} delete-app ok`,
          `${callerId(ADMIN_KEY)} delete-app read_only`,
          expect.stringMatching(new RegExp(`^${callerId(ADMIN_KEY)} put-app rejected 40\\d{3}$`)),
          `${callerId(ADMIN_KEY)} put-app ok`
        ])
        for (const answer of [listed, added, wrong, removed]) {
          expect(answer.text).not.toContain(SECRET)
          expect(answer.text).not.toContain(WRONG)
          expect(answer.text).not.toContain(ADMIN_KEY)
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "WeCom apps: added with the secret WeCom accepts, removed; the environment's read-only",
    () =>
      Effect.gen(function*() {
        const server = yield* serveWithConsole
        const { base, registry } = server
        const { cookie, csrf } = yield* signIn(base, ADMIN_KEY)
        const fields = { csrf, confirm: "yes", corpId: CORP2, agent: "1000003" }
        const added = yield* post(base, cookie, "wecom", { ...fields, secret: AGENT_SECRET })
        expect([added.status, outcomeOf(added.text)]).toEqual([200, `Added ${CORP2}/1000003; its secret works.`])
        expect(added.text).toContain(`<code>${CORP2}/1000003</code>`)
        expect(added.text).not.toContain(AGENT_SECRET)
        expect((yield* registry.current).agents.has(`${CORP2}/1000003`)).toBe(true)

        const wrong = yield* post(base, cookie, "wecom", { ...fields, secret: WRONG })
        expect(wrong.status).toBe(422)
        expect(outcomeOf(wrong.text)).toMatch(/errcode \d+\); nothing changed$/)

        const [corpId, agent] = ENV_AGENT.split("/")
        const envAgent = yield* post(base, cookie, "wecom/remove", {
          csrf,
          confirm: "yes",
          corpId: corpId!,
          agent: agent!
        })
        expect(envAgent.status).toBe(409)
        const removed = yield* post(base, cookie, "wecom/remove", fields)
        expect([removed.status, outcomeOf(removed.text)]).toEqual([200, `Removed ${CORP2}/1000003.`])
        expect((yield* registry.current).agents.size).toBe(0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("client keys: created and shown once, working at once; revoked and refused", () =>
    Effect.gen(function*() {
      const server = yield* serveWithConsole
      const { base } = server
      const { cookie, csrf } = yield* signIn(base, ADMIN_KEY)
      const created = yield* post(base, cookie, "keys", { csrf, confirm: "yes", label: "billing", scope: ` ${APP}, ` })
      expect(created.status).toBe(200)
      const key = /id="new-key" readonly value="([^"]+)"/.exec(created.text)?.[1] ?? ""
      const id = /Created the client key ([A-Za-z0-9_-]+) \(billing\)\./.exec(outcomeOf(created.text) ?? "")?.[1] ?? ""
      expect(key).not.toBe("")
      expect(id).not.toBe("")
      expect((yield* server.call("GET", `/v1/apps/${APP}/access-token`, key)).status).toBe(200)
      // Outside its scope, as the admin API's keys are.
      expect((yield* server.call("GET", `/v1/apps/${OTHER}/access-token`, key)).status).toBe(404)
      // Shown once: the page lists the key's id and label, never the key again.
      const listed = yield* call(`${base}/console/registry`, { headers: { cookie } })
      expect(listed.text).toContain(`<code>${id}</code>`)
      expect(listed.text).not.toContain(key)

      const revoked = yield* post(base, cookie, "keys/revoke", { csrf, confirm: "yes", id })
      expect([revoked.status, outcomeOf(revoked.text)]).toEqual([200, `Revoked the client key ${id}.`])
      expect((yield* server.call("GET", `/v1/apps/${APP}/access-token`, key)).status).toBe(401)
      const again = yield* post(base, cookie, "keys/revoke", { csrf, confirm: "yes", id })
      expect([again.status, outcomeOf(again.text)]).toEqual([404, `key ${id} is not in the registry`])
    }).pipe(Effect.scoped), 60_000)

  it.live(
    "refused and nothing changed: no session, no CSRF token, an ops key, no confirmation, bad input",
    () =>
      Effect.gen(function*() {
        const server = yield* serveWithConsole
        const { base, registry } = server
        const admin = yield* signIn(base, ADMIN_KEY)
        const ops = yield* signIn(base, OPS_KEY)
        const held = Effect.map(registry.current, (now) => ({
          apps: Array.from(now.apps.keys()),
          agents: Array.from(now.agents.keys()),
          keys: Array.from(now.keys.keys())
        }))
        // One key to revoke, so that a refused revocation has something to leave alone.
        const created = yield* post(base, admin.cookie, "keys", { csrf: admin.csrf, confirm: "yes", label: "kept" })
        const keyId = /Created the client key ([A-Za-z0-9_-]+)/.exec(created.text)?.[1] ?? ""
        const before = yield* held
        expect(before.keys).toEqual([keyId])

        const forms: ReadonlyArray<readonly [string, Record<string, string>]> = [
          ["apps", { appId: OTHER, secret: SECRET }],
          ["apps/remove", { appId: OTHER }],
          ["wecom", { corpId: CORP2, agent: "1000003", secret: AGENT_SECRET }],
          ["wecom/remove", { corpId: CORP2, agent: "1000003" }],
          ["keys", { label: "refused", scope: "" }],
          ["keys/revoke", { id: keyId }]
        ]
        for (const [action, fields] of forms) {
          const signedOut = yield* post(base, "console_session=forged", action, { ...fields, confirm: "yes" })
          expect([action, signedOut.status]).toEqual([action, 401])
          expect(signedOut.text).toContain(`action="/console/session"`)
          const noCsrf = yield* post(base, admin.cookie, action, { ...fields, confirm: "yes" })
          expect([action, noCsrf.status, outcomeOf(noCsrf.text)]).toEqual([
            action,
            403,
            "This form is stale or not from this session: nothing changed."
          ])
          const otherCsrf = yield* post(base, admin.cookie, action, { ...fields, confirm: "yes", csrf: ops.csrf })
          expect([action, otherCsrf.status]).toEqual([action, 403])
          // An ops key's session, with its own CSRF token or without: refused, and shown nothing of the registry.
          for (const csrf of [{ csrf: ops.csrf }, {}]) {
            const opsKey = yield* post(base, ops.cookie, action, { ...fields, confirm: "yes", ...csrf })
            expect([action, opsKey.status]).toEqual([action, 403])
            expect(opsKey.text).toContain("The registry's actions need an admin key (ADMIN_KEYS)")
            expect(opsKey.text).not.toContain(APP)
            expect(opsKey.text).not.toContain(keyId)
          }
          const unconfirmed = yield* post(base, admin.cookie, action, { ...fields, csrf: admin.csrf })
          expect([action, unconfirmed.status]).toEqual([action, 400])
          expect(outcomeOf(unconfirmed.text)).toMatch(/^Tick "Confirm" to .+: nothing changed\.$/)
        }

        const bad: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
          ["apps", { appId: "wx123", secret: SECRET }, `appId: a WeChat app id is "wx" followed by 16 lowercase hex`],
          ["apps", { appId: OTHER, secret: "" }, "secret: "],
          ["apps", { appId: OTHER, secret: "x".repeat(300) }, "secret: "],
          ["apps", { secret: SECRET }, "appId: is missing"],
          ["apps/remove", { appId: "not-an-app" }, "appId: a WeChat app id"],
          ["wecom", { corpId: "ww1", agent: "1000003", secret: AGENT_SECRET }, "corpId: a WeCom corp id"],
          ["wecom", { corpId: CORP2, agent: "Bad Agent!", secret: AGENT_SECRET }, "agent: a WeCom agent is"],
          ["keys", { label: "", scope: "" }, "label: "],
          ["keys", { label: "x", scope: "not-an-owner" }, "scope.0: "],
          ["keys/revoke", { id: "" }, "id: "]
        ]
        for (const [action, fields, message] of bad) {
          const answer = yield* post(base, admin.cookie, action, { ...fields, confirm: "yes", csrf: admin.csrf })
          expect([action, answer.status]).toEqual([action, 400])
          expect(outcomeOf(answer.text)).toContain(message)
          expect(outcomeOf(answer.text)).toMatch(/: nothing changed\.$/)
          expect(answer.text).not.toContain(SECRET)
          expect(answer.text).not.toContain(AGENT_SECRET)
        }
        expect(yield* held).toEqual(before)
        expect(yield* server.fetches).toBe(0)

        // An ops key's session: no link to the registry, and the page refused.
        expect(ops.page.text).not.toContain(`href="/console/registry"`)
        expect((yield* call(`${base}/console/registry`, { headers: { cookie: ops.cookie } })).status).toBe(403)
      }).pipe(Effect.scoped),
    60_000
  )
})
