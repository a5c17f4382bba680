/**
 * A server with no owner in its environment, only `ADMIN_KEYS` (and the
 * `STORE_ENCRYPTION_KEY` they need), as an operator starts it: it starts,
 * and everything it serves comes through the admin API.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redacted } from "effect"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import { spawnServer, waitReady } from "../../support/serverProcess.js"
import { OTHER, SECRET } from "../../support/serverStack.js"
import { ADMIN_KEY, ENCRYPTION_KEY } from "./adminServer.js"

describe("serve with ADMIN_KEYS and no app", () => {
  it.scopedLive("starts, and serves the apps and keys the admin API adds", () =>
    Effect.gen(function*() {
      const { url } = yield* Emulator.serve({ apps: [{ appId: OTHER, secret: SECRET }] })
      const server = yield* spawnServer({
        ADMIN_KEYS: ADMIN_KEY,
        STORE_ENCRYPTION_KEY: Redacted.value(ENCRYPTION_KEY),
        WECHAT_API_BASE_URL: url
      })
      yield* waitReady(server)
      const call = (method: string, path: string, key: string, body?: unknown) =>
        Effect.promise(async () => {
          const response = await fetch(`${server.base}${path}`, {
            method,
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            ...(body === undefined ? {} : { body: JSON.stringify(body) })
          })
          return { status: response.status, text: await response.text() }
        })
      expect(JSON.parse((yield* call("GET", "/v1/admin/apps", ADMIN_KEY)).text)).toEqual({ apps: [] })
      expect((yield* call("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, { secret: SECRET })).status).toBe(200)
      const created = yield* call("POST", "/v1/admin/keys", ADMIN_KEY, { scope: [OTHER], label: "first" })
      expect(created.status).toBe(201)
      const { key } = JSON.parse(created.text) as { key: string }
      expect((yield* call("GET", `/v1/apps/${OTHER}/access-token`, key)).status).toBe(200)
    }), { timeout: 120_000 })
})
