import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"

const root = new URL("../", import.meta.url).pathname

// Runs an example as a user would (`npx tsx examples/NAME.ts`) with no
// WeChat configuration in the environment, so it uses the bundled emulator.
const runExample = (name: string) =>
  Effect.async<{ code: number | null; stdout: string }>((resume) => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(WECHAT_|TOKEN_|CLIENT_KEYS|VITEST|NODE_OPTIONS)/.test(key))
    )
    const child = spawn(process.execPath, ["--import", "tsx", `examples/${name}.ts`], { cwd: root, env })
    let stdout = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stdout += chunk))
    child.on("exit", (code) => resume(Effect.succeed({ code, stdout })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("examples", () => {
  it.live("library.ts gets a token once and calls getcallbackip with it", () =>
    Effect.gen(function*() {
      const result = yield* runExample("library")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("WeChat calls back from 101.226.103.0/25")
      expect(result.stdout).toContain("same token both times: true")
      expect(result.stdout).toContain("upstream token fetches: 1")
    }))

  it.live("api-call.ts survives a token killed behind its back with one refresh and one replay", () =>
    Effect.gen(function*() {
      const result = yield* runExample("api-call")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("replaying once with the new token")
      expect(result.stdout).toContain("the call survived")
      expect(result.stdout).toMatch(/tokensIssued\W+1\b/)
    }))
})
