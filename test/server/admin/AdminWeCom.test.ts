/**
 * WeCom apps through the admin API on a real server: an app added is served
 * at once (token, agent ticket, corp ticket) with the token that checked its
 * secret, a refused secret or corp changes nothing and names WeCom's errcode,
 * a replaced secret is the one refreshes use, a removed app answers 404 on
 * every route, environment apps are read-only, and no answer carries a secret.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { KEY } from "../../support/serverStack.js"
import { ADMIN_KEY, AGENT_SECRET, CORP, CORP2, ENV_AGENT, serve, UNKNOWN_CORP } from "./adminServer.js"

const WRONG = "a-wrong-corp-secret-never-answered"
const ADDED = `${CORP}/1000002`
const routes = (owner: string) =>
  ["access-token", "agent-ticket", "jsapi-ticket"].map((route) =>
    `/v1/wecom/${owner.replace("/", "/agents/")}/${route}`
  )

describe("admin API: WeCom apps", () => {
  it.scopedLive("added and served at once, a refused secret changes nothing, removed to 404 everywhere", () =>
    Effect.gen(function*() {
      const { call, emulator, registry } = yield* serve
      for (const route of routes(ADDED)) expect((yield* call("GET", route, KEY)).status).toBe(404)

      const put = yield* call("PUT", `/v1/admin/wecom/${CORP}/agents/1000002`, ADMIN_KEY, { secret: AGENT_SECRET })
      expect(put.status).toBe(200)
      expect(JSON.parse(put.text)).toMatchObject({ owner: ADDED, corpId: CORP, agent: "1000002", source: "admin" })
      const served = yield* call("GET", `/v1/wecom/${CORP}/agents/1000002/access-token`, KEY)
      expect(served.status).toBe(200)
      const token = JSON.parse(served.text).access_token as string
      expect(yield* emulator.wecom.isValidToken(token, ADDED)).toBe(true)
      // The token that checked the secret is the one served: one gettoken in all.
      expect((yield* emulator.wecom.stats(ADDED)).gettokenCalls).toBe(1)
      for (const route of routes(ADDED)) expect((yield* call("GET", route, KEY)).status).toBe(200)

      // A wrong secret, and a corp WeCom does not know: 422 with the errcode, nothing changed.
      const wrong = yield* call("PUT", `/v1/admin/wecom/${CORP}/agents/1000002`, ADMIN_KEY, { secret: WRONG })
      expect(wrong.status).toBe(422)
      expect(wrong.text).toMatch(/errcode 40001/)
      const unknown = yield* call("PUT", `/v1/admin/wecom/${UNKNOWN_CORP}/agents/1`, ADMIN_KEY, { secret: WRONG })
      expect(unknown.status).toBe(422)
      expect(unknown.text).toMatch(/errcode 40013/)
      const held = yield* registry.current
      expect(Array.from(held.agents.keys())).toEqual([ADDED])
      expect(Redacted.value(held.agents.get(ADDED)!.secret)).toBe(AGENT_SECRET)
      const after = yield* call("GET", `/v1/wecom/${CORP}/agents/1000002/access-token`, KEY)
      expect(JSON.parse(after.text).access_token).toBe(token)

      // Environment apps are read-only here.
      expect((yield* call("PUT", `/v1/admin/wecom/${CORP}/agents/1000001`, ADMIN_KEY, { secret: AGENT_SECRET })).status)
        .toBe(409)
      expect((yield* call("DELETE", `/v1/admin/wecom/${CORP}/agents/1000001`, ADMIN_KEY)).status).toBe(409)

      const listed = yield* call("GET", "/v1/admin/wecom", ADMIN_KEY)
      expect(
        JSON.parse(listed.text).agents.map((agent: { owner: string; source: string }) =>
          `${agent.owner}:${agent.source}`
        )
      ).toEqual([`${ENV_AGENT}:env`, `${ADDED}:admin`])
      const ofCorp2 = yield* call("GET", `/v1/admin/wecom/${CORP2}/agents`, ADMIN_KEY)
      expect(JSON.parse(ofCorp2.text)).toEqual({ agents: [] })

      expect((yield* call("DELETE", `/v1/admin/wecom/${CORP}/agents/1000002`, ADMIN_KEY)).status).toBe(204)
      for (const route of routes(ADDED)) expect((yield* call("GET", route, KEY)).status).toBe(404)
      expect((yield* call("DELETE", `/v1/admin/wecom/${CORP}/agents/1000002`, ADMIN_KEY)).status).toBe(404)
      // The configured app is untouched.
      for (const route of routes(ENV_AGENT)) expect((yield* call("GET", route, KEY)).status).toBe(200)

      for (const answer of [put, wrong, unknown, listed]) {
        expect(answer.text).not.toContain(AGENT_SECRET)
        expect(answer.text).not.toContain(WRONG)
      }
      const audit = yield* call("GET", "/v1/admin/audit", ADMIN_KEY)
      expect(audit.text).not.toContain(AGENT_SECRET)
      expect(
        JSON.parse(audit.text).entries.map((entry: { action: string; outcome: string }) =>
          `${entry.action} ${entry.outcome}`
        )
      ).toEqual([
        "delete-agent not_found",
        "delete-agent ok",
        "delete-agent read_only",
        "put-agent read_only",
        "put-agent rejected 40013",
        "put-agent rejected 40001",
        "put-agent ok"
      ])
    }))

  it.scopedLive("an app of a corp with no configured app holds its corp's ticket", () =>
    Effect.gen(function*() {
      const { call, emulator } = yield* serve
      expect(
        (yield* call("PUT", `/v1/admin/wecom/${CORP2}/agents/1000003`, ADMIN_KEY, { secret: AGENT_SECRET })).status
      )
        .toBe(200)
      const answer = yield* call("GET", `/v1/wecom/${CORP2}/agents/1000003/jsapi-ticket`, KEY)
      expect(answer.status).toBe(200)
      const ticket = JSON.parse(answer.text).ticket as string
      expect(yield* emulator.wecom.isValidTicket(ticket, "corp", `${CORP2}/1000003`)).toBe(true)
      expect((yield* call("DELETE", `/v1/admin/wecom/${CORP2}/agents/1000003`, ADMIN_KEY)).status).toBe(204)
      expect((yield* call("GET", `/v1/wecom/${CORP2}/agents/1000003/jsapi-ticket`, KEY)).status).toBe(404)
    }))
})
