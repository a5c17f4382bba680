/**
 * Every TypeScript snippet of the README and the guides, exactly as written,
 * type-checks against this repository's sources (strict, the project's own
 * compiler options), `effect-wechat-token` and its subpaths resolved to
 * `src/`. The packed tarball's test checks them again against the compiled
 * declarations a user installs.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { blocks, FRAGMENTS, isFragment, pages, root } from "./markdown.js"

const typescript = pages.flatMap(blocks).filter((block) => block.language === "ts")

const snippets = typescript.filter((block) => !isFragment(block))

// Under the root, so the snippets' imports of effect, @effect/* and vitest find node_modules as a user's would.
const scratch = mkdtempSync(join(root, ".snippets-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const fileOf = (index: number) => `snippet-${index + 1}.ts`

describe("the TypeScript snippets of the README and docs/*.md", () => {
  it("leave out only the fragments listed, each with its reason", () => {
    const listed = Object.keys(FRAGMENTS)
    expect(typescript.length - snippets.length).toBe(listed.length)
  })

  it.live("type-check as written", () =>
    Effect.gen(function*() {
      expect(snippets.length).toBeGreaterThanOrEqual(10)
      snippets.forEach((snippet, index) => writeFileSync(join(scratch, fileOf(index)), snippet.code))
      const self = (subpath: string, file: string) => ({ [`effect-wechat-token${subpath}`]: [`../src/${file}`] })
      writeFileSync(
        join(scratch, "tsconfig.json"),
        JSON.stringify({
          extends: "../tsconfig.json",
          compilerOptions: {
            // A snippet shows a value being built; it need not use every one.
            noUnusedLocals: false,
            paths: {
              ...self("", "index.ts"),
              ...self("/testing", "testing/index.ts"),
              ...self("/server", "server/index.ts"),
              ...self("/TokenStoreFile", "TokenStoreFile.ts"),
              ...self("/TokenStoreRedis", "TokenStoreRedis.ts")
            }
          },
          include: ["*.ts"]
        })
      )
      const tsc = yield* Effect.async<{ readonly status: number | null; readonly output: string }>((resume) => {
        const child = spawn(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", scratch])
        let output = ""
        child.stdout.on("data", (chunk) => (output += chunk))
        child.stderr.on("data", (chunk) => (output += chunk))
        child.on("close", (status) => resume(Effect.succeed({ status, output })))
        return Effect.sync(() => child.kill("SIGKILL"))
      })
      // Name each error by the page and line of its snippet, not the scratch file.
      const located = tsc.output.replace(/^\.snippets-\w+\//gm, "").replace(
        /snippet-(\d+)\.ts\((\d+),(\d+)\)/g,
        (_, index: string, line: string) => {
          const snippet = snippets[Number(index) - 1]!
          return `${snippet.page}:${snippet.line + Number(line)}`
        }
      )
      expect(located).toBe("")
      expect(tsc.status).toBe(0)
    }), 180_000)
})
