/**
 * deploy/systemd/effect-wechat-token.service passes `systemd-analyze verify`
 * with nothing to report (an unknown or misspelt key is only a warning
 * there, so any output fails too) and keeps the hardening and the shutdown
 * settings docs/production.md promises.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const unitPath = new URL("../../deploy/systemd/effect-wechat-token.service", import.meta.url).pathname
const unit = readFileSync(unitPath, "utf8")

const settings = (section: string): Map<string, Array<string>> => {
  const body = unit.split(/^\[/m).find((part) => part.startsWith(`${section}]`)) ?? ""
  const found = new Map<string, Array<string>>()
  for (const line of body.split("\n").slice(1)) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (match !== null) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!])
  }
  return found
}

describe("deploy/systemd", () => {
  it("passes systemd-analyze verify without a word", () => {
    // verify insists that ExecStart's program exists: the unit names Debian's /usr/bin/node; where
    // Node lives elsewhere, the copy verified names this Node instead (nothing else changes).
    const dir = mkdtempSync(join(tmpdir(), "ewt-systemd-"))
    try {
      const copy = join(dir, "effect-wechat-token.service")
      writeFileSync(copy, unit.replace("ExecStart=/usr/bin/node ", `ExecStart=${process.execPath} `))
      const verified = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" })
      expect(verified.error, "systemd-analyze is missing: .ci/ensure-tools.sh installs it").toBeUndefined()
      expect({ status: verified.status, output: verified.stdout + verified.stderr }).toEqual({ status: 0, output: "" })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("runs the compiled bin as a user of its own, hardened, stopped with SIGTERM after a drain", () => {
    const service = settings("Service")
    expect(service.get("ExecStart")?.[0]).toMatch(/^\/usr\/bin\/node \S+\/dist\/bin\.js serve$/)
    expect(service.get("DynamicUser")).toEqual(["yes"])
    expect(service.get("ProtectSystem")).toEqual(["strict"])
    expect(service.get("NoNewPrivileges")).toEqual(["yes"])
    expect(service.get("StateDirectory")).toEqual(["effect-wechat-token"])
    expect(service.get("Environment")).toContain("TOKEN_STORE=file:/var/lib/effect-wechat-token/tokens.json")
    expect(service.get("EnvironmentFile")).toBeDefined()
    expect(service.get("LoadCredential")?.length).toBeGreaterThan(0)
    expect(service.get("Restart")).toEqual(["on-failure"])
    expect(service.get("KillSignal")).toEqual(["SIGTERM"])
    // More than the default drain (SHUTDOWN_DRAIN_SECONDS, 10 s), so systemd never SIGKILLs a draining server.
    expect(Number(service.get("TimeoutStopSec")?.[0])).toBeGreaterThan(10)
  })
})
