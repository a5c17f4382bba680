/**
 * The admin API on a real server: an app added is served at once with the
 * token that checked its secret, a wrong secret is refused with WeChat's
 * errcode and changes nothing, a removed app answers 404, client keys work
 * from creation to revocation, admin and client keys are never each other,
 * and no answer or audit entry carries a secret.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import * as CredentialRegistry from "../../../src/CredentialRegistry.js"
import * as Admin from "../../../src/server/admin/Admin.js"
import * as NodeServer from "../../../src/server/NodeServer.js"
import * as StoreDocuments from "../../../src/StoreDocuments.js"
import * as TokenConfig from "../../../src/TokenConfig.js"
import * as TokenLayer from "../../../src/TokenLayer.js"
import * as TokenStore from "../../../src/TokenStore.js"
import { APP, KEY, OTHER, SECRET, serveUpstream } from "../../support/serverStack.js"

const ADMIN_KEY = "admin-key-0123456789abcdef-0123456789"
const ENCRYPTION_KEY = Redacted.make("0123456789abcdef".repeat(4))
const WRONG = "a-wrong-secret-never-in-any-answer"

const serve = Effect.gen(function*() {
  const upstream = yield* serveUpstream()
  const store = TokenStore.layerMemory
  const admin = Admin.layer({
    adminKeys: [Redacted.make(ADMIN_KEY)],
    envApps: [APP as never],
    mode: "classic",
    apiBaseUrl: upstream.url,
    upstreamTimeout: Duration.seconds(5)
  }).pipe(
    Layer.provideMerge(CredentialRegistry.layer(ENCRYPTION_KEY)),
    Layer.provide(StoreDocuments.layerMemory),
    Layer.provide(FetchHttpClient.layer)
  )
  const engine = TokenLayer.layer({
    config: TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], mode: "classic", apiBaseUrl: upstream.url }),
    store,
    httpClient: FetchHttpClient.layer
  }).pipe(Layer.provide(admin))
  const context = yield* Layer.build(
    NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: [{ key: Redacted.make(KEY) }] }).pipe(
      Layer.provideMerge(Admin.layerFollow),
      Layer.provideMerge(engine),
      Layer.provideMerge(admin),
      Layer.provide(store)
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const base = `http://127.0.0.1:${address.port}`
  const call = (method: string, path: string, key: string, body?: unknown) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
      })
      return { status: response.status, text: await response.text() }
    })
  return {
    call,
    registry: Context.get(context, CredentialRegistry.CredentialRegistry),
    fetches: Effect.map(upstream.emulator.appStats(OTHER), (stats) => stats.classicCalls + stats.stableCalls)
  }
})

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
      expect((yield* call("GET", token, KEY)).text).toBe(served.text)

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
