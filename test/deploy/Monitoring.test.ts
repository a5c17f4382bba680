/**
 * The monitoring files in `deploy/` against the real thing: the alert rules
 * pass `promtool check rules` and their unit tests, and every metric the
 * rules and the Grafana dashboard query is one the server exports (scraped
 * from the demo server, which runs every family and the proxy).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import * as NodePath from "node:path"

const ROOT = NodePath.join(import.meta.dirname, "..", "..")
const PROMETHEUS = NodePath.join(ROOT, "deploy", "prometheus")
const DASHBOARD = NodePath.join(ROOT, "deploy", "grafana", "effect-wechat-token.json")

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<{ readonly code: number | null; readonly output: string }>((resume) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("error", (error) => resume(Effect.die(error)))
    child.on("close", (code) => resume(Effect.succeed({ code, output })))
  })

const freePort = Effect.async<number>((resume) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as { port: number }
    probe.close(() => resume(Effect.succeed(port)))
  })
})

// The demo server as a user starts it: nothing configured.
const demoServer = Effect.acquireRelease(
  Effect.gen(function*() {
    const port = yield* freePort
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", PORT: String(port), HOME: ROOT }
    const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "serve"], {
      cwd: ROOT,
      env,
      stdio: "ignore"
    })
    return { child, base: `http://127.0.0.1:${port}` }
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
)

const isReady = (base: string) =>
  Effect.promise(() => fetch(`${base}/readyz`).then((response) => response.status === 200, () => false))

const waitReady = (base: string, child: ChildProcess) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (child.exitCode !== null) return yield* Effect.die(new Error(`demo server exited ${child.exitCode}`))
      if (yield* isReady(base)) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.die(new Error("demo server never became ready"))
  })

// Metric names in PromQL: the histogram's series carry suffixes the family does not.
const metricNames = (text: string): ReadonlyArray<string> =>
  Array.from(new Set(Array.from(text.matchAll(/\b((?:wechat|effect)_[a-z_]+)\b/g), (match) => match[1]!)))
    .map((name) => name.replace(/_(bucket|sum|count)$/, ""))

describe("Monitoring", () => {
  it.live("the alert rules pass promtool check rules and promtool test rules", () =>
    Effect.gen(function*() {
      const check = yield* run("promtool", ["check", "rules", "rules.yml"], PROMETHEUS)
      expect(check.output).toContain("SUCCESS: 6 rules found")
      expect(check.code).toBe(0)
      const tests = yield* run("promtool", ["test", "rules", "rules.test.yml"], PROMETHEUS)
      expect(tests.output).toContain("SUCCESS")
      expect(tests.code).toBe(0)
    }))

  it.live("every metric the rules and the dashboard query is one the server exports", () =>
    Effect.gen(function*() {
      const rules = readFileSync(NodePath.join(PROMETHEUS, "rules.yml"), "utf8")
      const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
        readonly panels: ReadonlyArray<{ readonly targets: ReadonlyArray<{ readonly expr: string }> }>
      }
      const queried = new Set([
        ...metricNames(rules),
        ...dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => metricNames(target.expr)))
      ])
      expect(queried.size).toBeGreaterThan(10)
      const { base, child } = yield* demoServer
      yield* waitReady(base, child)
      const scrape = yield* Effect.promise(() => fetch(`${base}/metrics`).then((response) => response.text()))
      const exported = new Set(Array.from(scrape.matchAll(/^# TYPE (\S+) /gm), (match) => match[1]!))
      expect(Array.from(queried).filter((name) => !exported.has(name))).toEqual([])
      // The two gauges the rules need most say "ready" and "store up" on a healthy demo.
      expect(scrape).toMatch(/^wechat_token_ready 1$/m)
      expect(scrape).toMatch(/^wechat_token_store_up 1$/m)
    }).pipe(Effect.scoped), 60_000)
})
