/**
 * The monitoring files in `deploy/` against the real thing: the alert rules
 * pass `promtool check rules` and their unit tests, and every metric the
 * rules and the Grafana dashboard query is one the server exports (scraped
 * from the demo server, which runs every family and the proxy).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as NodePath from "node:path"
import { spawnServer, waitReady } from "../support/serverProcess.js"

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
      const server = yield* spawnServer()
      yield* waitReady(server)
      const scrape = yield* Effect.promise(() => fetch(`${server.base}/metrics`).then((response) => response.text()))
      const exported = new Set(Array.from(scrape.matchAll(/^# TYPE (\S+) /gm), (match) => match[1]!))
      expect(Array.from(queried).filter((name) => !exported.has(name))).toEqual([])
      // The two gauges the rules need most say "ready" and "store up" on a healthy demo.
      expect(scrape).toMatch(/^wechat_token_ready 1$/m)
      expect(scrape).toMatch(/^wechat_token_store_up 1$/m)
    }).pipe(Effect.scoped), 60_000)
})
