import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Emulator from "../../src/testing/WeChatEmulator.js"

const root = new URL("../../", import.meta.url).pathname

// The environment of a bare start: WeChat and server variables removed.
const bareEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (
      /^(WECHAT_|WECOM_|CLIENT_KEYS|TOKEN_|HOST$|PORT$|LOG_|REFRESH_MARGIN|UPSTREAM_TIMEOUT|NODE_OPTIONS|VITEST)/
        .test(key)
    ) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

const run = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", ...args], { cwd: root, env })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("exit", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("bin", () => {
  for (
    const [name, env, variable] of [
      ["WECHAT_APPS=garbage", { WECHAT_APPS: "garbage" }, "WECHAT_APPS"],
      [
        "a malformed app id",
        { WECHAT_APPS: "wxNOPE:TopSecretValue", CLIENT_KEYS: "0123456789abcdef0123" },
        "WECHAT_APPS"
      ],
      ["a bad PORT", {
        WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
        CLIENT_KEYS: "0123456789abcdef0123",
        PORT: "http"
      }, "PORT"],
      ["apps without CLIENT_KEYS", { WECHAT_APPS: "wx0123456789abcdef:TopSecretValue" }, "CLIENT_KEYS"],
      ["a bad SHUTDOWN_DRAIN_SECONDS", {
        WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
        CLIENT_KEYS: "0123456789abcdef0123",
        SHUTDOWN_DRAIN_SECONDS: "-1"
      }, "SHUTDOWN_DRAIN_SECONDS"],
      ["a bad TOKEN_STORE", {
        WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
        CLIENT_KEYS: "0123456789abcdef0123",
        TOKEN_STORE: "s3://x"
      }, "TOKEN_STORE"],
      ["WECOM_APPS=garbage", { WECOM_APPS: "garbage", CLIENT_KEYS: "0123456789abcdef0123" }, "WECOM_APPS"],
      [
        "a malformed WeCom entry",
        {
          WECOM_APPS: "ww0123456789abcdef/1000002:TopSecretValue,ww0123456789abcdef/Bad Agent:TopSecretValue",
          CLIENT_KEYS: "0123456789abcdef0123"
        },
        "WECOM_APPS: entry 2"
      ],
      [
        "WeCom apps without CLIENT_KEYS (production mode)",
        { WECOM_APPS: "ww0123456789abcdef/1000002:TopSecretValue" },
        "CLIENT_KEYS"
      ],
      ["CLIENT_KEYS and CLIENT_KEYS_FILE both set", {
        WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
        CLIENT_KEYS: "0123456789abcdef0123",
        CLIENT_KEYS_FILE: "/dev/null"
      }, "CLIENT_KEYS or CLIENT_KEYS_FILE"],
      ["an unreadable WECHAT_APPS_FILE", {
        WECHAT_APPS_FILE: "/nonexistent/wechat-apps",
        CLIENT_KEYS: "0123456789abcdef0123"
      }, "WECHAT_APPS_FILE: cannot read"],
      ["an empty CLIENT_KEYS_FILE", {
        WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
        CLIENT_KEYS_FILE: "/dev/null"
      }, "CLIENT_KEYS_FILE: the file it names is empty"],
      [
        "a key scoped to an unconfigured WeCom app",
        {
          WECOM_APPS: "ww0123456789abcdef/1000002:TopSecretValue",
          CLIENT_KEYS: "0123456789abcdef0123@ww0123456789abcdef/1000003"
        },
        "CLIENT_KEYS"
      ],
      // A typo beside production settings used to start the demo on 0.0.0.0,
      // against the production store, printing the operator's own key.
      [
        "a typo of WECHAT_APPS beside production settings",
        {
          WECHAT_APP: "wx0123456789abcdef:TopSecretValue",
          CLIENT_KEYS: "0123456789abcdef0123",
          HOST: "0.0.0.0",
          TOKEN_STORE: "redis://127.0.0.1:9"
        },
        "WECHAT_APP is not a setting: did you mean WECHAT_APPS?"
      ],
      ["a typo of a secret file variable", {
        WECHAT_APPS_FLIE: "/run/secrets/apps",
        CLIENT_KEYS: "0123456789abcdef0123"
      }, "did you mean WECHAT_APPS_FILE?"],
      [
        "production settings without any app",
        { CLIENT_KEYS: "0123456789abcdef0123", HOST: "0.0.0.0" },
        "no app is configured, yet CLIENT_KEYS, HOST are set"
      ],
      ["HOST alone (the demo listens on loopback only)", { HOST: "0.0.0.0" }, "no app is configured, yet HOST is set"],
      ["a store without any app", { TOKEN_STORE: "redis://127.0.0.1:9" }, "TOKEN_STORE is set"],
      ["WECHAT_APP_ID without its secret", { WECHAT_APP_ID: "wx0123456789abcdef" }, "WECHAT_APP_SECRET: missing"],
      ["an empty WECHAT_APP_SECRET", {
        WECHAT_APP_ID: "wx0123456789abcdef",
        WECHAT_APP_SECRET: "",
        CLIENT_KEYS: "0123456789abcdef0123"
      }, "WECHAT_APP_SECRET: missing (WECHAT_APP_SECRET is set but empty)"],
      ["ADMIN_KEYS without STORE_ENCRYPTION_KEY", {
        WECHAT_APPS: "wx0123456789abcdef:secret",
        CLIENT_KEYS: "0123456789abcdef0123",
        ADMIN_KEYS: "admin-key-0123456789abcdef-0123456789"
      }, "ADMIN_KEYS needs STORE_ENCRYPTION_KEY"]
    ] as const
  ) {
    it.live(`bad config (${name}) stops start-up with one line naming ${variable}`, () =>
      Effect.gen(function*() {
        const result = yield* run(["serve"], bareEnv(env))
        expect(result.code).not.toBe(0)
        const lines = result.stderr.trim().split("\n")
        expect(lines).toHaveLength(1)
        expect(lines[0]).toContain(variable)
        expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/)
        expect(result.stderr + result.stdout).not.toContain("TopSecretValue")
        // Nothing listened and nothing was printed but the line: no banner, no key.
        expect(result.stdout).toBe("")
        expect(result.stderr).not.toContain("0123456789abcdef0123")
      }))
  }

  it.live(
    "a taken port, a bad HOST and an unreadable file store each stop start-up with one line naming the cause",
    () =>
      Effect.gen(function*() {
        const taken = createServer()
        yield* Effect.async<void>((resume) => void taken.listen(0, "127.0.0.1", () => resume(Effect.void)))
        const port = String((taken.address() as AddressInfo).port)
        const directory = yield* Effect.sync(() => mkdtempSync(join(tmpdir(), "bin-store-")))
        const cases = [
          [{ PORT: port }, `127.0.0.1:${port} is already in use`],
          [{ HOST: "host.invalid", PORT: "0" }, "HOST host.invalid does not resolve"],
          [{ HOST: "10.255.255.1", PORT: "0" }, "HOST 10.255.255.1 is not an address of this machine"],
          [{ TOKEN_STORE: `file:${directory}`, PORT: "0" }, "TOKEN_STORE"]
        ] as const
        // A configured app: without one, HOST and TOKEN_STORE alone stop start-up before it listens.
        const app = {
          WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
          CLIENT_KEYS: "0123456789abcdef0123",
          WECHAT_API_BASE_URL: "http://127.0.0.1:9"
        }
        for (const [env, cause] of cases) {
          const result = yield* run(["serve"], bareEnv({ ...app, ...env }))
          expect(result.code, cause).not.toBe(0)
          const lines = result.stderr.trim().split("\n")
          expect(lines, result.stderr).toHaveLength(1)
          expect(lines[0]).toMatch(/^cannot start: /)
          expect(lines[0]).toContain(cause)
        }
        yield* Effect.sync(() => taken.close())
      }),
    240_000
  )
})

// The emulated WeChat on loopback, as the child process's upstream.
const APP = "wx0123456789abcdef"
const wechat = Effect.map(
  Emulator.serve({ apps: [{ appId: APP, secret: "TopSecretValue" }] }),
  ({ emulator, url }) => ({
    url,
    isValid: emulator.isValidToken,
    fetches: Effect.map(emulator.appStats(APP), (stats) => stats.classicCalls + stats.stableCalls)
  })
)

// The client key of the servers these tests start.
const KEY = "0123456789abcdef0123456789abcdef"

// `serve` with `APP` over `upstream` and `KEY` alone; its base URL once it listens.
const serve = (upstream: { readonly url: string }, env: Record<string, string> = {}) =>
  Effect.map(
    start(
      ["serve"],
      bareEnv({
        WECHAT_APPS: `${APP}:TopSecretValue`,
        WECHAT_API_BASE_URL: upstream.url,
        CLIENT_KEYS: KEY,
        PORT: "0",
        ...env
      }),
      /Listening on (http:\/\/127\.0\.0\.1:\d+)/
    ),
    (server) => ({ ...server, base: server.match[1]! })
  )

// The access token the server at `base` serves for `APP`.
const servedToken = (base: string) =>
  Effect.promise(() =>
    fetch(`${base}/v1/apps/${APP}/access-token`, { headers: { authorization: `Bearer ${KEY}` } })
      .then((response) => response.json() as Promise<{ access_token: string }>)
  )

// Starts the CLI and waits until a stdout line matches `ready`.
const start = (args: ReadonlyArray<string>, env: Record<string, string>, ready: RegExp) =>
  Effect.acquireRelease(
    Effect.async<{ child: ChildProcessWithoutNullStreams; output: () => string; match: RegExpExecArray }>((resume) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", ...args], { cwd: root, env })
      let output = ""
      let done = false
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const match = ready.exec(output)
        if (match !== null && !done) {
          done = true
          resume(Effect.succeed({ child, output: () => output, match }))
        }
      }
      child.stdout.on("data", onData)
      child.stderr.on("data", onData)
      child.on("exit", (code) => {
        if (!done) resume(Effect.dieMessage(`exited with ${code} before it was ready:\n${output}`))
      })
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  )

const exitOf = (child: ChildProcessWithoutNullStreams) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
    child.on("exit", (code) => resume(Effect.succeed(code)))
  })

describe("bin serve", () => {
  it.live("serves configured apps, logs JSON without secrets or whole tokens, and exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const upstream = yield* wechat
      const server = yield* serve(upstream, { WECHAT_UNRELATED_SETTING: "x" })
      const answer = yield* servedToken(server.base)
      expect(yield* upstream.isValid(answer.access_token)).toBe(true)
      expect(yield* upstream.fetches).toBe(1)
      server.child.kill("SIGTERM")
      expect(yield* exitOf(server.child)).toBe(0)
      const output = server.output()
      // Not a TTY: one JSON object a line.
      for (const line of output.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow()
      expect(output).toContain("token refreshed")
      // Not a near miss of any setting: start-up goes on, and says it is ignored.
      expect(output).toContain("WECHAT_UNRELATED_SETTING is not a setting of effect-wechat-token; ignored")
      expect(output).not.toContain("TopSecretValue")
      expect(output).not.toContain(answer.access_token)
    }).pipe(Effect.scoped))
})

describe("bin token", () => {
  it.live(
    "asks a running server by default: the server's token, and no fetch from WeChat",
    () =>
      Effect.gen(function*() {
        const upstream = yield* wechat
        const { base } = yield* serve(upstream)
        const served = yield* servedToken(base)
        expect(yield* upstream.fetches).toBe(1)
        // The server and key from the environment, as a business server has them; no WeChat setting at all.
        const fromEnv = yield* run(["token", APP], bareEnv({ TOKEN_SERVER_URL: base, TOKEN_SERVER_KEY: KEY }))
        expect(fromEnv.stderr).toBe("")
        expect(fromEnv.code).toBe(0)
        expect(fromEnv.stdout).toBe(`${served.access_token}\n`)
        // The flags win over the variables.
        const fromFlags = yield* run(
          ["token", "--server", base, "--key", KEY, APP],
          bareEnv({ TOKEN_SERVER_URL: "http://127.0.0.1:9", TOKEN_SERVER_KEY: "a-key-the-server-refuses" })
        )
        expect(fromFlags.code, fromFlags.stderr).toBe(0)
        expect(fromFlags.stdout).toBe(`${served.access_token}\n`)
        expect(yield* upstream.fetches).toBe(1)
        // A refused key is one line saying so, and names the variable to check.
        const refused = yield* run(
          ["token", "--server", base, APP],
          bareEnv({ TOKEN_SERVER_KEY: "wrong-key-0123456789" })
        )
        expect(refused.code).not.toBe(0)
        expect(refused.stdout).toBe("")
        expect(refused.stderr.trim().split("\n")).toHaveLength(1)
        expect(refused.stderr).toContain("the client key was refused; check TOKEN_SERVER_KEY")
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("with no server named, refuses in one line naming --server, TOKEN_SERVER_URL and --direct", () =>
    Effect.gen(function*() {
      const result = yield* run(["token", APP], bareEnv({ WECHAT_APPS: "wx0123456789abcdef:TopSecretValue" }))
      expect(result.code).not.toBe(0)
      expect(result.stdout).toBe("")
      const lines = result.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain("--server")
      expect(lines[0]).toContain("TOKEN_SERVER_URL")
      expect(lines[0]).toContain("--direct")
    }))

  it.live("--direct fetches from WeChat and prints the token alone on stdout", () =>
    Effect.gen(function*() {
      const upstream = yield* wechat
      const result = yield* run(
        ["token", "--direct", "wx0123456789abcdef"],
        bareEnv({
          WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
          WECHAT_API_BASE_URL: upstream.url
        })
      )
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^\S+\n$/)
      expect(yield* upstream.isValid(result.stdout.trim())).toBe(true)
      expect(yield* upstream.fetches).toBe(1)
      expect(result.stderr).not.toContain("TopSecretValue")
      // Stable mode cannot hurt anyone else's token: no warning.
      expect(result.stderr).not.toContain("warning")
      const unknown = yield* run(
        ["token", "--direct", "wxfedcba9876543210"],
        bareEnv({
          WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
          WECHAT_API_BASE_URL: upstream.url
        })
      )
      expect(unknown.code).not.toBe(0)
      expect(unknown.stderr.trim().split("\n")).toHaveLength(1)
      expect(unknown.stderr).toContain("wxfedcba9876543210")
    }).pipe(Effect.scoped))

  it.live("--direct in classic mode warns that every other holder of the token loses it", () =>
    Effect.gen(function*() {
      const upstream = yield* wechat
      const result = yield* run(
        ["token", "--direct", "wx0123456789abcdef"],
        bareEnv({
          WECHAT_APPS: "wx0123456789abcdef:TopSecretValue",
          WECHAT_API_BASE_URL: upstream.url,
          WECHAT_TOKEN_MODE: "classic"
        })
      )
      expect(result.code).toBe(0)
      expect(yield* upstream.isValid(result.stdout.trim())).toBe(true)
      expect(result.stderr).toContain("warning: --direct in classic mode")
      expect(result.stderr).toContain("a token server included")
    }).pipe(Effect.scoped))
})

describe("demo mode", () => {
  // Effect counts a fiber that ends interrupted as a failure: a healthy server's
  // effect_fiber_failures_total is fibers interrupted by design around upstream
  // calls (start-up's fetches, refreshes), never a request answered from what the
  // server holds, refused or not. docs/operations.md says so.
  it.live(
    "requests answered from held credentials, refused ones included, add nothing to effect_fiber_failures_total",
    () =>
      Effect.gen(function*() {
        const demo = yield* start(["serve"], bareEnv({ PORT: "0" }), /base URL: +(\S+)\n +client key: +([0-9a-f]+)/)
        const [, base, key] = demo.match
        const get = (path: string, headers: Record<string, string> = {}) =>
          Effect.promise(() =>
            fetch(`${base}${path}`, { headers }).then(async (response) => ({
              status: response.status,
              body: await response.text()
            }))
          )
        const fibers = Effect.map(get("/metrics"), ({ body }) => ({
          failures: Number(/^effect_fiber_failures_total (\d+)$/m.exec(body)![1]),
          successes: Number(/^effect_fiber_successes_total (\d+)$/m.exec(body)![1])
        }))
        // Every demo credential fetched first: what start-up interrupts is done by then.
        while ((yield* get("/readyz")).status !== 200) yield* Effect.sleep("200 millis")
        const auth = { authorization: `Bearer ${key}` }
        // The jsapi ticket is fetched on first use; that upstream call interrupts the losers of its races.
        expect((yield* get("/v1/apps/wx0123456789abcdef/jsapi-ticket", auth)).status).toBe(200)
        const before = yield* fibers
        for (let round = 0; round < 10; round++) {
          expect((yield* get("/v1/wecom/ww0123456789abcdef/agents/1000002/access-token", auth)).status).toBe(200)
          expect((yield* get("/v1/apps/wx0123456789abcdef/jsapi-ticket", auth)).status).toBe(200)
          expect((yield* get("/v1/apps/wxffffffffffffffff/access-token", auth)).status).toBe(404)
          expect((yield* get("/v1/apps/wx0123456789abcdef/access-token", { authorization: "Bearer wrong" })).status)
            .toBe(401)
          expect((yield* get("/readyz")).status).toBe(200)
        }
        const after = yield* fibers
        expect(after.successes).toBeGreaterThan(before.successes)
        expect(after.failures).toBe(before.failures)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("a bare `npm start` serves the demo app and its printed curl line works", () =>
    Effect.gen(function*() {
      // PORT=0 only so parallel runs cannot collide; nothing else is set.
      const demo = yield* Effect.acquireRelease(
        Effect.async<{ output: () => string; pid: number }>((resume) => {
          const child = spawn("npm", ["start", "--silent"], { cwd: root, env: bareEnv({ PORT: "0" }), detached: true })
          let output = ""
          let done = false
          const onData = (chunk: Buffer) => {
            output += chunk.toString()
            if (!done && /^curl .*\/v1\/wecom\/.*$/m.test(output)) {
              done = true
              resume(Effect.succeed({ output: () => output, pid: child.pid! }))
            }
          }
          child.stdout.on("data", onData)
          child.stderr.on("data", onData)
          child.on("exit", (code) => {
            if (!done) resume(Effect.dieMessage(`npm start exited with ${code}:\n${output}`))
          })
        }),
        // npm runs the server in a child of its own: stop the whole group we started.
        ({ pid }) => Effect.sync(() => process.kill(-pid, "SIGTERM"))
      )
      const line = /^curl .*$/m.exec(demo.output())![0]
      const [, key, url] = /-H 'Authorization: Bearer ([0-9a-f]+)' (\S+)$/.exec(line)!
      expect(key!.length).toBeGreaterThanOrEqual(64)
      const answer = yield* Effect.async<{ code: number | null; stdout: string }>((resume) => {
        const curl = spawn("curl", ["-s", "-H", `Authorization: Bearer ${key}`, url!])
        let stdout = ""
        curl.stdout.on("data", (chunk) => (stdout += chunk))
        curl.on("exit", (code) => resume(Effect.succeed({ code, stdout })))
      })
      expect(answer.code).toBe(0)
      const body = JSON.parse(answer.stdout) as { access_token: string; expires_in: number }
      expect(body.access_token.length).toBeGreaterThan(12)
      expect(body.expires_in).toBeGreaterThan(0)
      expect(demo.output()).not.toContain(body.access_token)
      // The demo corp's line works too.
      const weComLine = /^curl .*\/v1\/wecom\/.*$/m.exec(demo.output())![0]
      const weComUrl = /(\S+)$/.exec(weComLine)![1]!
      expect(weComUrl).toMatch(/\/v1\/wecom\/ww[0-9a-f]{16}\/agents\/\d+\/access-token$/)
      const weCom = yield* Effect.promise(() =>
        fetch(weComUrl, { headers: { authorization: `Bearer ${key}` } }).then((response) =>
          response.json() as Promise<{ access_token: string }>
        )
      )
      expect(weCom.access_token.length).toBeGreaterThan(12)
      expect(weCom.access_token).not.toBe(body.access_token)
    }).pipe(Effect.scoped))

  it.live("SIGTERM to the `npm start` process stops the server: npm exits 0 and the port is free", () =>
    Effect.gen(function*() {
      const npm = yield* Effect.acquireRelease(
        Effect.async<{ child: ChildProcessWithoutNullStreams; base: string }>((resume) => {
          // Not detached: a supervisor signals npm's pid alone, never its group.
          const child = spawn("npm", ["start", "--silent"], { cwd: root, env: bareEnv({ PORT: "0" }) })
          let output = ""
          let done = false
          const onData = (chunk: Buffer) => {
            output += chunk.toString()
            const base = /base URL: +(\S+)/.exec(output)
            if (!done && base !== null && /^curl /m.test(output)) {
              done = true
              resume(Effect.succeed({ child, base: base[1]! }))
            }
          }
          child.stdout.on("data", onData)
          child.stderr.on("data", onData)
          child.on("exit", (code) => {
            if (!done) resume(Effect.dieMessage(`npm start exited with ${code}:\n${output}`))
          })
        }),
        ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
      )
      const healthy = () =>
        Effect.promise(() => fetch(`${npm.base}/healthz`).then((response) => response.status, () => 0))
      expect(yield* healthy()).toBe(200)
      npm.child.kill("SIGTERM")
      expect(yield* exitOf(npm.child)).toBe(0)
      // Nothing answers on the port any more: the server is gone with npm.
      expect(yield* healthy()).toBe(0)
    }).pipe(Effect.scoped))
})
