import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"

const root = new URL("../", import.meta.url).pathname

// Runs an example as a user would (`npx tsx examples/NAME.ts`) with no
// WeChat configuration in the environment, so it uses the bundled emulator.
const runExample = (name: string) =>
  Effect.async<{ code: number | null; stdout: string }>((resume) => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) =>
        !/^(WECHAT_|WECOM_|TOKEN_|CLIENT_KEYS|VITEST|NODE_OPTIONS)/.test(key)
      )
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

  it.live("wecom.ts gets a WeCom token once, calls agent/get with it and signs wx.config and wx.agentConfig", () =>
    Effect.gen(function*() {
      const result = yield* runExample("wecom")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("agent 1000002: agent 1000002")
      expect(result.stdout).toMatch(/wx\.config appId ww0123456789abcdef, signature [0-9a-f]{40}/)
      expect(result.stdout).toMatch(/wx\.agentConfig agentid 1000002, signature [0-9a-f]{40}/)
      expect(result.stdout).toContain("same token both times: true")
      expect(result.stdout).toContain("upstream calls: gettoken 1, corp ticket 1, agent ticket 1")
    }))

  it.live("component.ts takes pushes, gets the component token once and serves an authorizer from its authorization", () =>
    Effect.gen(function*() {
      const result = yield* runExample("component")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("component token valid: true")
      expect(result.stdout).toContain("send the merchant to https://mp.weixin.qq.com/cgi-bin/componentloginpage")
      expect(result.stdout).toContain("authorizer wx00aa00aa00aa00aa token valid: true")
      expect(result.stdout).toMatch(/wx\.config appId wx00aa00aa00aa00aa, signature [0-9a-f]{40}/)
      expect(result.stdout).toContain("upstream calls: component token 1, query_auth 1, authorizer token 0")
    }))

  it.live("proxy.ts calls WeChat through the proxy with only a client key, and survives a killed token", () =>
    Effect.gen(function*() {
      const result = yield* runExample("proxy")
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("message sent: errcode 0")
      expect(result.stdout).toMatch(/uploaded: media_id \w+/)
      expect(result.stdout).toContain("downloaded: 1048576 bytes of image/jpeg")
      expect(result.stdout).toContain("WeChat answered 40001 then 0, 1 new token, the call survived")
      expect(result.stdout).toContain("asking the proxy for a token: 403")
    }))
})
