/**
 * The shell snippets of the README and the guides: each one either runs here,
 * with bash, against the bin's `serve` in a real process and the WeChat
 * emulator over HTTP, or says why it cannot (`<!-- not run: REASON -->` on
 * the line above its fence). A snippet added without either fails here.
 *
 * A snippet runs as written but for the addresses: its `127.0.0.1:8787` or
 * `localhost:8787` becomes the server's free port, `127.0.0.1:9000` the
 * emulator's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Emulator from "../../src/testing/index.js"
import { spawnServer, waitReady } from "../support/serverProcess.js"
import { type Block, blocks, pages, root } from "./markdown.js"

const shell = pages.flatMap(blocks).filter((block) => block.language === "sh" || block.language === "bash")

/** A snippet named by its page and first line: stable while others edit the page around it. */
const keyOf = (block: Block) => `${block.page} ${block.code.split("\n")[0]}`

const KEY = "docs-client-key-0123456789"
const ADMIN_KEY = "docs-admin-key-0123456789abcdef0123456789"
const OPS_KEY = "docs-ops-key-0123456789abcdef0123456789ab"
// The secret the snippets of the admin API send for the apps they add.
const ADMIN_SECRET = "…"

interface Run {
  readonly keys: ReadonlyArray<string>
  /**
   * Where it runs: a scratch folder, the clone (where `npx effect-wechat-token` finds the bin, as after `npm ci`),
   * or a reader's project holding the README's Library snippet as `program.ts`, the package resolved to `src/`.
   */
  readonly cwd?: "clone" | "program"
  /** What the run's standard output shows when the snippets did what their page says. */
  readonly check: (stdout: string) => void
}

/** Snippets run here, each group in order in one shell (later blocks of a page use the variables of earlier ones). */
const RUNS: ReadonlyArray<Run> = [
  {
    keys: [
      "docs/server.md curl -s -H \"Authorization: Bearer $KEY\" http://127.0.0.1:8787/v1/apps/wx0123456789abcdef/access-token"
    ],
    cwd: "clone",
    check: (stdout) => {
      // curl's JSON (no newline after it), then the `token` command's line: the token the route answered.
      const end = stdout.indexOf("}") + 1
      expect(stdout.slice(end).trim()).toBe(JSON.parse(stdout.slice(0, end)).access_token)
    }
  },
  {
    keys: [
      "docs/emulator.md WECHAT_API_BASE_URL=http://127.0.0.1:9000 WECHAT_APPS=wx0123456789abcdef:test-secret npx tsx program.ts"
    ],
    cwd: "program",
    // The README's program got a token from the emulator: it logs when that token expires.
    check: (stdout) => expect(stdout).toMatch(/message="expires at \d{4}-\d\d-\d\dT/)
  },
  {
    keys: ["docs/proxy.md BASE=http://127.0.0.1:8787"],
    check: (stdout) => {
      expect(stdout).toContain(`"errcode":0`)
      expect(stdout).toContain("downloaded what was uploaded")
    }
  },
  {
    keys: ["README.md ADMIN=\"Authorization: Bearer $ADMIN_KEY\""],
    check: (stdout) => {
      expect(stdout).toContain(`"appId":"wx00000000000000aa"`)
      expect(stdout).toContain(`"source":"admin"`)
      expect(stdout).toMatch(/"key":"[^"]{16,}"/)
      expect(stdout).toContain(`"action":"put-app"`)
    }
  },
  {
    keys: [
      "docs/admin.md BASE=http://localhost:8787",
      "docs/admin.md # create or replace (\"mode\" is optional; it must be the server's WECHAT_TOKEN_MODE)",
      "docs/admin.md curl -X PUT $BASE/v1/admin/wecom/ww0123456789abcdef/agents/1000002 -H \"$ADMIN\" -H \"$JSON\" -d '{\"secret\":\"…\"}'",
      "docs/admin.md # scope: the owners the key may ask for (app ids, corpid/agent); [] for every owner",
      "docs/admin.md curl $BASE/v1/admin/audit -H \"$ADMIN\""
    ],
    check: (stdout) => {
      expect(stdout).toContain(`"owner":"ww0123456789abcdef/1000002"`)
      expect(stdout).toContain(`"appId":"wx00000000000000aa"`)
      expect(stdout).toMatch(/"key":"[^"]{16,}"/)
      expect(stdout).toContain(`"entries":[`)
    }
  },
  {
    keys: ["docs/operations.md OPS_KEYS=\"$(openssl rand -hex 24)\""],
    // The ops key sees each credential.
    check: (stdout) =>
      expect(JSON.parse(stdout).credentials).toContainEqual(expect.objectContaining({ app_id: "wx0123456789abcdef" }))
  }
]

const bash = (code: string, cwd: string, env: Record<string, string>) =>
  Effect.async<{ readonly status: number | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", code], { cwd, env })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("close", (status) => resume(Effect.succeed({ status, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("the shell snippets of the README and docs/*.md", () => {
  it("each runs here or says why it cannot", () => {
    const run = new Set(RUNS.flatMap((group) => group.keys))
    expect(shell.filter((block) => block.notRun === undefined && !run.has(keyOf(block))).map(keyOf)).toEqual([])
    expect(shell.filter((block) => block.notRun !== undefined && run.has(keyOf(block))).map(keyOf)).toEqual([])
    // No entry outlives its snippet, and a reason is a reason.
    const present = new Set(shell.map(keyOf))
    expect([...run].filter((key) => !present.has(key))).toEqual([])
    expect(shell.filter((block) => block.notRun !== undefined && block.notRun.length < 20).map(keyOf)).toEqual([])
  })

  it.live(
    "the runnable ones do what their page says, against a real server and the emulator",
    () =>
      Effect.gen(function*() {
        const wechat = yield* Emulator.serve({
          apps: [{ appId: "wx0123456789abcdef", secret: "test-secret" }, {
            appId: "wx00000000000000aa",
            secret: ADMIN_SECRET
          }],
          corps: [{ corpId: "ww0123456789abcdef", apps: [{ agent: "1000002", secret: ADMIN_SECRET }] }]
        })
        const work = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "ewt-docs-shell-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        const server = yield* spawnServer({
          WECHAT_API_BASE_URL: wechat.url,
          WECOM_API_BASE_URL: wechat.url,
          WECHAT_APPS: "wx0123456789abcdef:test-secret",
          CLIENT_KEYS: KEY,
          ADMIN_KEYS: ADMIN_KEY,
          OPS_KEYS: OPS_KEY,
          STORE_ENCRYPTION_KEY: "0123456789abcdef".repeat(4),
          TOKEN_STORE: `file:${join(work, "tokens.json")}`,
          LOG_FORMAT: "json"
        })
        yield* waitReady(server)
        // The reader's project: the README's Library program, `effect-wechat-token` resolved to the sources (tsx
        // follows tsconfig paths), under the root so that effect and tsx are found in node_modules.
        const program = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(root, ".docs-program-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        const library = blocks(pages.find((page) => page.path === "README.md")!).find((block) =>
          block.language === "ts"
        )!
        writeFileSync(join(program, "program.ts"), library.code)
        writeFileSync(
          join(program, "tsconfig.json"),
          JSON.stringify({ compilerOptions: { paths: { "effect-wechat-token": ["../src/index.ts"] } } })
        )
        const cwds = { clone: root, program, scratch: work }
        const address = server.base.replace("http://", "")
        const byKey = new Map(shell.map((block) => [keyOf(block), block]))
        for (const group of RUNS) {
          const code = group.keys.map((key) => byKey.get(key)!.code).join("\n")
            .replaceAll("127.0.0.1:8787", address).replaceAll("localhost:8787", address)
            .replaceAll("127.0.0.1:9000", wechat.url.replace("http://", ""))
          const ran = yield* bash(code, cwds[group.cwd ?? "scratch"], {
            PATH: process.env.PATH ?? "",
            HOME: process.env.HOME ?? work,
            KEY,
            ADMIN_KEY,
            OPS_KEY
          })
          const context = `${group.keys[0]}\n${ran.stdout}\n${ran.stderr}`
          expect(ran.status, context).toBe(0)
          try {
            group.check(ran.stdout)
          } catch (error) {
            throw new Error(`${context}\n${String(error)}`)
          }
        }
      }).pipe(Effect.scoped),
    180_000
  )
})
