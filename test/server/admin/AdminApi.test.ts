/**
 * The admin API on a real server: an app added is served at once with the
 * token that checked its secret, a wrong secret is refused with WeChat's
 * errcode and changes nothing, a removed app answers 404, client keys work
 * from creation to revocation, admin and client keys are never each other,
 * and no answer or audit entry carries a secret.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { APP, KEY, OTHER, SECRET, THIRD } from "../../support/serverStack.js"
import { ADMIN_KEY, serve } from "./adminServer.js"

const WRONG = "a-wrong-secret-never-in-any-answer"

describe("admin API", () => {
  it.scopedLive("apps: added and served at once, a wrong secret refused, removed to 404", () =>
    Effect.gen(function*() {
      const { call, fetches, registry } = yield* serve
      const token = `/v1/apps/${OTHER}/access-token`
      expect((yield* call("GET", token, KEY)).status).toBe(404)

      const put = yield* call("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, { secret: SECRET })
      expect(put.status).toBe(200)
      const served = yield* call("GET", token, KEY)
      expect(served.status).toBe(200)
      // The token that checked the secret is the one served: one fetch in all.
      expect(yield* fetches).toBe(1)

      const wrong = yield* call("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, { secret: WRONG })
      expect(wrong.status).toBe(422)
      expect(wrong.text).toMatch(/errcode 40\d{3}/)
      // The old secret stays, and the token with it.
      expect(Redacted.value((yield* registry.current).apps.get(OTHER)!.secret)).toBe(SECRET)
      expect(JSON.parse((yield* call("GET", token, KEY)).text).access_token).toBe(JSON.parse(served.text).access_token)

      // Environment apps are read-only here.
      expect((yield* call("DELETE", `/v1/admin/apps/${APP}`, ADMIN_KEY)).status).toBe(409)
      // Hostile bodies: 4xx, nothing changed.
      const before = (yield* registry.current).version
      for (const body of ["{", "[]", `{"secret":1}`, `{"secret":"${"x".repeat(300)}"}`, `{"secret":"s","mode":"x"}`]) {
        const answer = yield* call("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, body)
        expect(answer.status).toBeGreaterThanOrEqual(400)
        expect(answer.status).toBeLessThan(500)
      }
      expect((yield* registry.current).version).toBe(before)

      const listed = yield* call("GET", "/v1/admin/apps", ADMIN_KEY)
      expect(JSON.parse(listed.text).apps.map((app: { appId: string; source: string }) => `${app.appId}:${app.source}`))
        .toEqual([`${APP}:env`, `${OTHER}:admin`])

      expect((yield* call("DELETE", `/v1/admin/apps/${OTHER}`, ADMIN_KEY)).status).toBe(204)
      expect((yield* call("GET", token, KEY)).status).toBe(404)

      const audit = yield* call("GET", "/v1/admin/audit", ADMIN_KEY)
      const actions = JSON.parse(audit.text).entries.map((entry: { action: string; outcome: string }) =>
        `${entry.action} ${entry.outcome}`
      )
      expect(actions).toEqual([
        "delete-app ok",
        "delete-app read_only",
        expect.stringMatching(/^put-app rejected 40/),
        "put-app ok"
      ])
      for (const answer of [put, wrong, listed, audit]) {
        expect(answer.text).not.toContain(SECRET)
        expect(answer.text).not.toContain(WRONG)
      }
    }))

  it.scopedLive("an app id WeChat does not know: 422 naming 40013, nothing added", () =>
    Effect.gen(function*() {
      const { call, registry } = yield* serve
      const answer = yield* call("PUT", `/v1/admin/apps/${THIRD}`, ADMIN_KEY, { secret: SECRET })
      expect(answer.status).toBe(422)
      expect(answer.text).toMatch(/errcode 40013/)
      expect((yield* registry.current).apps.size).toBe(0)
    }))

  it.scopedLive("keys: created works at once, revoked is refused; admin and client keys are never each other", () =>
    Effect.gen(function*() {
      const { call } = yield* serve
      const token = `/v1/apps/${APP}/access-token`
      expect((yield* call("GET", token, ADMIN_KEY)).status).toBe(401)
      expect((yield* call("GET", "/v1/admin/apps", KEY)).status).toBe(401)

      const created = yield* call("POST", "/v1/admin/keys", ADMIN_KEY, { scope: [APP], label: "shop" })
      expect(created.status).toBe(201)
      const { id, key } = JSON.parse(created.text) as { id: string; key: string }
      expect((yield* call("GET", token, key)).status).toBe(200)
      expect((yield* call("GET", `/v1/apps/${OTHER}/access-token`, key)).status).toBe(404)
      // The key is shown once: never listed.
      const listed = yield* call("GET", "/v1/admin/keys", ADMIN_KEY)
      expect(listed.text).toContain(id)
      expect(listed.text).not.toContain(key)
      expect((yield* call("GET", "/v1/admin/apps", key)).status).toBe(401)

      expect((yield* call("DELETE", `/v1/admin/keys/${id}`, ADMIN_KEY)).status).toBe(204)
      expect((yield* call("GET", token, key)).status).toBe(401)
      expect((yield* call("DELETE", `/v1/admin/keys/${id}`, ADMIN_KEY)).status).toBe(404)
    }))
})
