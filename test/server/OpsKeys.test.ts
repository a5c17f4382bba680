/**
 * `/readyz` and `/metrics` as the network sees them: the verdict and totals
 * for anyone, each credential only with an ops key (`OPS_KEYS`); client and
 * ops keys never stand in for each other; a store that cannot write is
 * named and makes the server unready.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { spawnServer, waitReady } from "../support/serverProcess.js"
import { APP, auth, awaitReady, call, KEY, OPS_KEY, opsAuth, SECRET, startServer, startUpstream } from "./harness.js"

const CLIENT_KEY = "client-key-0123456789abcdef"

describe("ops endpoints and OPS_KEYS", () => {
  it.live("without a key: the verdict and counts per kind, no app id in /readyz or /metrics", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      yield* awaitReady(base)
      const readyz = yield* call(`${base}/readyz`)
      expect(readyz.status).toBe(200)
      expect(readyz.json).toEqual({
        ready: true,
        store: { healthy: true },
        summary: [{ kind: "access_token", total: 1, valid: 1 }]
      })
      const metrics = yield* call(`${base}/metrics`)
      expect(metrics.status).toBe(200)
      expect(metrics.text).not.toContain(APP)
      expect(metrics.text).not.toContain("app=")
      expect(metrics.text).toMatch(/^wechat_token_refreshes_total\{kind="access_token"[^}]*\} 1$/m)
      expect(metrics.text).toMatch(/^wechat_token_valid\{kind="access_token"\} 1$/m)
      // The shortest remaining life per kind, for the alert on credentials about to expire.
      expect(metrics.text).toMatch(/^wechat_token_expires_in_seconds\{kind="access_token"\} [1-9][\d.]*$/m)
    }).pipe(Effect.scoped))

  it.live("process and Node runtime metrics under their standard names, with and without a key", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      for (const headers of [{}, opsAuth()]) {
        const metrics = (yield* call(`${base}/metrics`, { headers })).text
        for (
          const family of [
            "process_cpu_seconds_total counter",
            "process_resident_memory_bytes gauge",
            "process_open_fds gauge",
            "process_start_time_seconds gauge",
            "nodejs_heap_size_used_bytes gauge",
            "nodejs_eventloop_lag_seconds gauge"
          ]
        ) expect(metrics).toContain(`# TYPE ${family}\n`)
      }
    }).pipe(Effect.scoped))

  it.live("with an ops key: each credential in /readyz and series per app in /metrics", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      yield* awaitReady(base)
      const readyz = yield* call(`${base}/readyz`, { headers: opsAuth() })
      expect(readyz.status).toBe(200)
      expect(readyz.json.credentials).toEqual([expect.objectContaining({ app_id: APP, valid: true })])
      const metrics = yield* call(`${base}/metrics`, { headers: opsAuth() })
      expect(metrics.text).toContain(`wechat_token_valid{app="${APP}",kind="access_token"} 1`)
    }).pipe(Effect.scoped))

  it.live("a client key is refused on /readyz and /metrics, an ops key on the client routes", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      for (const path of ["/readyz", "/metrics"]) {
        const answer = yield* call(`${base}${path}`, { headers: auth(KEY) })
        expect(answer.status).toBe(401)
        expect(answer.json.error.code).toBe("unauthorized")
        expect(answer.text).not.toContain(APP)
      }
      const token = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: opsAuth() })
      expect(token.status).toBe(401)
    }).pipe(Effect.scoped))

  // A file where the store's directory should be stops root's writes too.
  it.scopedLive("a file store that cannot write: /readyz 503, store unhealthy, the ops key sees TOKEN_STORE named", () =>
    Effect.gen(function*() {
      const { url } = yield* Emulator.serve({ apps: [{ appId: APP, secret: SECRET }] })
      const directory = NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "ops-store-")), "store")
      const path = NodePath.join(directory, "tokens.json")
      const server = yield* spawnServer({
        WECHAT_APPS: `${APP}:${SECRET}`,
        WECHAT_API_BASE_URL: url,
        CLIENT_KEYS: CLIENT_KEY,
        OPS_KEYS: OPS_KEY,
        TOKEN_STORE: `file:${path}`
      })
      yield* waitReady(server)
      const held = yield* call(`${server.base}/v1/apps/${APP}/access-token`, { headers: auth(CLIENT_KEY) })
      rmSync(directory, { recursive: true })
      writeFileSync(directory, "in the way")
      // The refreshed token cannot be written.
      yield* call(`${server.base}/v1/apps/${APP}/access-token/refresh`, {
        method: "POST",
        headers: { ...auth(CLIENT_KEY), "content-type": "application/json" },
        body: JSON.stringify({ stale_token: held.json.access_token })
      })
      const answer = yield* call(`${server.base}/readyz`)
      expect(answer.status).toBe(503)
      expect(answer.json).toEqual({
        ready: false,
        store: { healthy: false },
        summary: [{ kind: "access_token", total: 1, valid: 1 }]
      })
      const detailed = yield* call(`${server.base}/readyz`, { headers: opsAuth() })
      expect(detailed.status).toBe(503)
      expect(detailed.json.store.healthy).toBe(false)
      expect(detailed.json.store.error).toContain(`TOKEN_STORE file ${path} cannot be written`)
      // The token held in memory is still served.
      const token = yield* call(`${server.base}/v1/apps/${APP}/access-token`, { headers: auth(CLIENT_KEY) })
      expect(token.status).toBe(200)
    }))
})
