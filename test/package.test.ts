/**
 * The package as a user gets it: `npm pack`, a fresh project, the tarball
 * installed next to its peers, the user's program type-checked under NodeNext
 * and Bundler resolution (strict, no skipLibCheck), compiled and run with
 * plain `node`; the bin run from another directory, locally and after a
 * global install; and the module graph of the root import.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { blocks, isFragment, pages } from "./docs/markdown.js"

const root = new URL("../", import.meta.url).pathname
const consumerFiles = new URL("./package/consumer/", import.meta.url).pathname

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

// npm passes its own npm_* variables to scripts; a nested npm must not see
// them (they point at this repository), nor the test runner's.
const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(npm_|WECHAT_|CLIENT_KEYS|TOKEN_STORE|HOST$|PORT$|NODE_OPTIONS|VITEST)/i.test(key)) {
      continue
    }
    env[key] = value
  }
  return { ...env, ...extra }
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, env = cleanEnv()) =>
  Effect.async<Ran>((resume) => {
    const child = spawn(command, args, { cwd, env })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("error", (error) => resume(Effect.succeed({ code: -1, stdout, stderr: stderr + String(error) })))
    child.on("exit", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Runs and fails the test with the command's output when it does not exit 0. */
const ok = (command: string, args: ReadonlyArray<string>, cwd: string, env?: Record<string, string>) =>
  Effect.tap(
    run(command, args, cwd, env),
    (ran) =>
      Effect.sync(() =>
        expect(ran.code, `${command} ${args.join(" ")}\n${ran.stdout.slice(-4000)}\n${ran.stderr.slice(-4000)}`).toBe(0)
      )
  )

const installedVersion = (name: string): string =>
  JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

// The peers at the versions this repository tests with, and the consumer's tools.
const peers = ["effect", "@effect/platform", "@effect/platform-node", "ioredis", "typescript", "@types/node"]
  .map((name) => `${name}@${installedVersion(name)}`)

const work = mkdtempSync(join(tmpdir(), "ewt-package-"))
const project = join(work, "consumer")
const elsewhere = join(work, "elsewhere")
let tarball = ""

beforeAll(async () => {
  await Effect.runPromise(Effect.gen(function*() {
    // `npm pack` runs prepack, which builds dist/ afresh.
    yield* ok("npm", ["pack", "--silent", "--pack-destination", work], root)
    tarball = join(work, readdirSync(work).find((name) => name.endsWith(".tgz"))!)
    mkdirSync(project)
    mkdirSync(elsewhere)
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    for (const file of ["main.ts", "tsconfig.nodenext.json", "tsconfig.bundler.json", "graph.mjs", "graph-hooks.mjs"]) {
      copyFileSync(join(consumerFiles, file), join(project, file))
    }
    // Every TypeScript snippet of the README and the guides, exactly as written, is type-checked with the
    // program (all but the fragments and the one written for a test runner the scratch project does not install).
    const snippets = pages.flatMap(blocks).filter((block) =>
      block.language === "ts" && !isFragment(block) && !block.code.includes("@effect/vitest")
    )
    expect(snippets.length).toBeGreaterThan(5)
    snippets.forEach((snippet, index) => writeFileSync(join(project, `readme-${index + 1}.ts`), snippet.code))
    yield* ok("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball, ...peers], project)
  }))
}, 300_000)

afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("the packed tarball", () => {
  it.live("holds compiled ESM with types and source maps, the README, the guides it links and the LICENSE, and no TypeScript sources", () =>
    Effect.gen(function*() {
      const listing = yield* ok("tar", ["tzf", tarball], work)
      const files = listing.stdout.trim().split("\n").map((line) => line.replace(/^package\//, ""))
      for (
        const file of [
          "dist/index.js",
          "dist/index.d.ts",
          "dist/index.js.map",
          "dist/testing/index.js",
          "dist/bin.js",
          "README.md",
          "LICENSE",
          "package.json"
        ]
      ) {
        expect(files).toContain(file)
      }
      // The README's links work on npm's page and in node_modules: every file it links is packed.
      const linked = Array.from(
        readFileSync("README.md", "utf8").matchAll(/\]\(((?:docs\/)?[\w./-]+\.(?:md|png))(?:#[^)]*)?\)/g)
      )
        .map((match) => match[1]!)
      expect(linked.length).toBeGreaterThan(5)
      expect(linked.filter((file) => !files.includes(file))).toEqual([])
      expect(files.filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toEqual([])
      expect(files.filter((file) => file.startsWith("src/") || file.startsWith("test/"))).toEqual([])
      yield* Effect.log(`tarball: ${statSync(tarball).size} bytes, ${files.length} files`)
    }))

  it.live(
    "type-checks a strict user program and the snippets of the README and docs/ under NodeNext and Bundler without skipLibCheck",
    () =>
      Effect.gen(function*() {
        const tsc = join(project, "node_modules", "typescript", "bin", "tsc")
        yield* ok(process.execPath, [tsc, "-p", "tsconfig.nodenext.json", "--noEmit"], project)
        yield* ok(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], project)
      }),
    300_000
  )

  it.live(
    "runs the compiled program with plain node: one fetch per token lifetime, every token valid",
    () =>
      Effect.gen(function*() {
        const tsc = join(project, "node_modules", "typescript", "bin", "tsc")
        yield* ok(process.execPath, [tsc, "-p", "tsconfig.nodenext.json"], project)
        const ran = yield* ok(process.execPath, ["out/main.js"], project)
        const result = JSON.parse(ran.stdout.trim().split("\n").at(-1)!)
        // 6 hours of 7,200 s stable tokens refreshed 150-300 s before expiry: fetches at 0, ~2 h, ~4 h, ~6 h.
        expect(result).toEqual({ served: 36, invalid: 0, fetches: 4 })
      }),
    300_000
  )

  it.live("importing the root loads neither the server, nor @effect/platform-node, nor ioredis", () =>
    Effect.gen(function*() {
      const graphOf = (specifier: string) =>
        Effect.map(
          ok(process.execPath, ["graph.mjs", specifier], project),
          (ran): Array<string> => JSON.parse(ran.stdout.trim().split("\n").at(-1)!)
        )
      const rootGraph = yield* graphOf("effect-wechat-token")
      expect(rootGraph.some((url) => url.endsWith("/effect-wechat-token/dist/index.js"))).toBe(true)
      const forbidden =
        /\/ioredis\/|\/@effect\/platform-node\/|\/effect-wechat-token\/dist\/server\/|HttpApiSwagger|HttpApiScalar/
      expect(rootGraph.filter((url) => forbidden.test(url))).toEqual([])
      // The detector sees adapters when they are asked for.
      const redisGraph = yield* graphOf("effect-wechat-token/TokenStoreRedis")
      expect(redisGraph.some((url) => url.includes("/ioredis/"))).toBe(true)
      const serverGraph = yield* graphOf("effect-wechat-token/server")
      expect(serverGraph.some((url) => url.includes("/@effect/platform-node/"))).toBe(true)
    }))

  it.live(
    "the contract (api/) and the client derived from it (client/) load no engine, ioredis or node:fs",
    () =>
      Effect.gen(function*() {
        const dist = join(project, "node_modules", "effect-wechat-token", "dist")
        const engine = /\/dist\/internal\/tokenEngine\.js$|\/dist\/internal\/engine\/|\/ioredis\/|^node:fs$/
        const graphOf = (files: ReadonlyArray<string>) =>
          Effect.map(
            ok(process.execPath, ["graph.mjs", ...files.map((file) => pathToFileURL(file).href)], project),
            (ran): Array<string> => JSON.parse(ran.stdout.trim().split("\n").at(-1)!)
          )
        const modules = ["api", "client"].flatMap((folder) =>
          readdirSync(join(dist, folder)).filter((name) => name.endsWith(".js")).map((name) => join(dist, folder, name))
        )
        expect(modules.map((file) => file.slice(dist.length))).toContain("/client/RemoteTokenLayer.js")
        expect((yield* graphOf(modules)).filter((url) => engine.test(url))).toEqual([])
        // The detector sees the engine where it is.
        expect((yield* graphOf([join(dist, "TokenEngine.js")])).some((url) => engine.test(url))).toBe(true)
      }),
    300_000
  )

  it.live(
    "the bin runs from another directory: --help, and serve in demo mode answering /healthz",
    () =>
      Effect.gen(function*() {
        const bin = join(project, "node_modules", ".bin", "effect-wechat-token")
        const help = yield* ok(bin, ["--help"], elsewhere)
        expect(help.stdout).toContain("serve")
        expect(help.stdout).toContain("token")
        yield* serveAnswersHealthz(bin)
      }),
    300_000
  )

  it.live("the bin works after a global install", () =>
    Effect.gen(function*() {
      const prefix = join(work, "global")
      yield* ok("npm", [
        "install",
        "--global",
        "--prefix",
        prefix,
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        tarball
      ], elsewhere)
      const bin = join(prefix, "bin", "effect-wechat-token")
      const help = yield* ok(bin, ["--help"], elsewhere)
      expect(help.stdout).toContain("serve")
      yield* serveAnswersHealthz(bin)
    }), 300_000)
})

/** `serve` with nothing configured (demo mode) on a free port: /healthz answers 200, SIGTERM stops it with 0. */
const serveAnswersHealthz = (bin: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const started = Date.now()
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(bin, ["serve"], {
          cwd: elsewhere,
          env: cleanEnv({ PORT: String(port), LOG_FORMAT: "json" })
        })
        child.stdout.on("data", (chunk) => (output += chunk))
        child.stderr.on("data", (chunk) => (output += chunk))
        return { child, exited: new Promise<number | null>((resolve) => child.on("exit", resolve)) }
      }),
      ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
    )
    const status = yield* Effect.promise(async () => {
      for (let attempt = 0; attempt < 300; attempt++) {
        const answer = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
        if (answer !== undefined) return answer.status
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      return -1
    })
    expect(status, output).toBe(200)
    const rss = readFileSync(`/proc/${child.child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1]
    yield* Effect.log(`serve from the installed package: /healthz after ${Date.now() - started} ms, RSS ${rss} kB`)
    child.child.kill("SIGTERM")
    expect(yield* Effect.promise(() => child.exited), output).toBe(0)
  }).pipe(Effect.scoped)
