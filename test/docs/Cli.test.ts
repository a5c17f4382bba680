/**
 * The command line as a user meets it: `--help` through a pipe lists every
 * environment variable (the list behind docs/configuration.md) without
 * colour codes, `emulator` serves the WeChat emulator on its own, and
 * `npx effect-wechat-token` runs in a clone that was never built.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { variables } from "../../src/internal/environment.js"

const root = new URL("../../", import.meta.url).pathname

const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) =>
    !/^(npm_|WECHAT_|WECOM_|CLIENT_KEYS|TOKEN_|VITEST|NODE_OPTIONS)/.test(key)
  )
)

const start = (args: ReadonlyArray<string>) =>
  // stdout is a pipe here, as in `--help | less` or a CI log.
  spawned(spawn(process.execPath, ["--import", "tsx", "src/bin.ts", ...args], { cwd: root, env: cleanEnv }))

const spawned = (child: ReturnType<typeof spawn>) => {
  let stdout = ""
  child.stdout?.on("data", (chunk) => (stdout += chunk))
  child.stderr?.on("data", (chunk) => (stdout += chunk))
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve))
  return { child, exited, stdout: () => stdout }
}

describe("the command line", () => {
  it("--help into a pipe lists every environment variable, without colour codes", async () => {
    const help = start(["--help"])
    expect(await help.exited).toBe(0)
    const text = help.stdout()
    expect(text).toContain("ENVIRONMENT")
    expect(variables.filter((variable) => !text.includes(variable.name)).map((variable) => variable.name)).toEqual([])
    expect(text).toContain("emulator")
    expect(text).not.toContain("\u001b[")
  }, 60_000)

  it("emulator --port 0 serves WeChat's token endpoint for the default app until SIGTERM", async () => {
    const emulator = start(["emulator", "--port", "0"])
    try {
      let url: string | undefined
      for (let attempt = 0; attempt < 600 && url === undefined; attempt++) {
        url = /WeChat emulator at (http:\/\/\S+)/.exec(emulator.stdout())?.[1]
        if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(url, emulator.stdout()).toBeDefined()
      const answer = await fetch(`${url}/cgi-bin/stable_token`, {
        method: "POST",
        body: JSON.stringify({ grant_type: "client_credential", appid: "wx0123456789abcdef", secret: "test-secret" })
      })
      const body = await answer.json() as { access_token?: string; expires_in?: number }
      expect(body.expires_in).toBe(7200)
      expect(body.access_token?.length).toBeGreaterThan(0)
      const refused = await fetch(`${url}/cgi-bin/stable_token`, {
        method: "POST",
        body: JSON.stringify({ grant_type: "client_credential", appid: "wx0123456789abcdef", secret: "wrong" })
      })
      expect(await refused.json()).toMatchObject({ errcode: 40125 })
      emulator.child.kill("SIGTERM")
      expect(await emulator.exited).toBe(0)
    } finally {
      emulator.child.kill("SIGKILL")
    }
  }, 60_000)

  it("npx effect-wechat-token runs in a clone after `npm ci`, with nothing built", async () => {
    // What a clone holds after `npm ci`: the tracked files and node_modules, no dist/.
    const clone = mkdtempSync(join(tmpdir(), "ewt-clone-"))
    try {
      for (const entry of ["package.json", "package-lock.json", "tsconfig.json", "bin", "src"]) {
        cpSync(join(root, entry), join(clone, entry), { recursive: true })
      }
      symlinkSync(join(root, "node_modules"), join(clone, "node_modules"))
      // A cache of its own: npx links the package's bin afresh, as on a new machine.
      const env = { ...cleanEnv, npm_config_cache: join(clone, ".npm") }
      const npx = spawned(spawn("npx", ["--offline", "effect-wechat-token", "--version"], { cwd: clone, env }))
      expect(await npx.exited, npx.stdout()).toBe(0)
      expect(npx.stdout().trim()).toBe(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version)
    } finally {
      rmSync(clone, { recursive: true, force: true })
    }
  }, 240_000)
})
