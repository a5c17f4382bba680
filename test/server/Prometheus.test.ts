import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { send } from "../support/serverStack.js"
import { APP, auth, awaitReady, call, KEY, opsAuth, startServer, startUpstream } from "./harness.js"

/** Runs a program with `input` on stdin: its exit code and everything it printed. */
const run = (command: string, args: ReadonlyArray<string>, input: string) =>
  Effect.async<{ readonly code: number | null; readonly output: string }>((resume) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("error", (error) => resume(Effect.die(error)))
    child.on("close", (code) => resume(Effect.succeed({ code, output })))
    child.stdin.end(input)
  })

// The families docs/server.md documents. The counters have a series from start-up.
const COUNTERS = [
  "wechat_token_refreshes_total",
  "wechat_token_failures_total",
  "wechat_token_server_requests_total",
  "wechat_token_server_requests_in_flight",
  "effect_fiber_active"
]
const DOCUMENTED = [
  "wechat_token_refreshes_total",
  "wechat_token_failures_total",
  "wechat_upstream_latency_seconds",
  "wechat_token_age_seconds",
  "wechat_token_expires_in_seconds",
  "wechat_token_valid",
  "wechat_token_server_requests_total",
  "wechat_token_server_requests_in_flight",
  "effect_fiber_active"
]

describe("Prometheus", () => {
  it.live("a live /metrics passes promtool check metrics with nothing to report", () =>
    Effect.gen(function*() {
      const upstream = yield* startUpstream
      const base = yield* startServer({ upstream })
      const port = Number(new URL(base).port)
      // Traffic of every kind, so every kind of series is in the scrape.
      yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      yield* call(`${base}/v1/apps/${APP}/access-token`)
      yield* call(`${base}/v1/apps/${APP}/jsapi-ticket`, { headers: auth() })
      yield* call(`${base}/v1/apps/${APP}/access-token`, { method: "DELETE", headers: auth() })
      yield* send(port, { path: "//nowhere/" })
      yield* send(port, {
        method: "POST",
        path: `/v1/apps/${APP}/jssdk-config`,
        headers: auth(KEY),
        body: "x".repeat(20_000)
      })
      yield* upstream.setFaulted(true)
      yield* call(`${base}/v1/apps/${APP}/access-token/refresh`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json" },
        body: JSON.stringify({ stale_token: "dead" })
      })
      const text = (yield* call(`${base}/metrics`)).text
      const check = yield* run("promtool", ["check", "metrics"], text)
      expect(check).toEqual({ code: 0, output: "" })
      expect(text).not.toContain("time_unit")
      expect(text).not.toContain("effect_fiber_lifetimes")
      expect(text).toMatch(/^# TYPE effect_fiber_active gauge$/m)
    }).pipe(Effect.scoped))

  it.live("every documented series is there from start-up, the counters at zero", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      const has = (text: string, family: string) => {
        expect(text, family).toMatch(new RegExp(`^# HELP ${family} `, "m"))
        expect(text, family).toMatch(new RegExp(`^${family}(_bucket|_count|_sum)?(\\{[^\\n]*\\})? [0-9.e+-]+$`, "m"))
      }
      // Before the first token is held: the counters, at zero.
      const first = (yield* call(`${base}/metrics`, { headers: opsAuth() })).text
      for (const family of COUNTERS) has(first, family)
      expect(first).toContain(`wechat_token_failures_total{app="${APP}",kind="access_token"} 0\n`)
      expect(first).toContain(
        `wechat_token_server_requests_total{route="/v1/apps/{appId}/jssdk-config",method="POST",status="200"} 0\n`
      )
      // Once a token is held (the first upstream call timed, a credential to age): every family.
      yield* awaitReady(base)
      const ready = (yield* call(`${base}/metrics`, { headers: opsAuth() })).text
      for (const family of DOCUMENTED) has(ready, family)
    }).pipe(Effect.scoped))
})
