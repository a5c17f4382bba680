/**
 * deploy/Dockerfile, without docker: its stages parse, the runtime stage runs
 * as a user other than root with a health check on /healthz, everything the
 * build stage copies exists, and the runtime stage's install, run exactly as
 * written against the tarball `npm pack` makes, gives a bin that starts.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = new URL("../../", import.meta.url).pathname
const dockerfile = readFileSync(join(root, "deploy", "Dockerfile"), "utf8")
const version: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version

interface Instruction {
  readonly keyword: string
  readonly args: string
}

// Continuation lines joined, comments dropped: one instruction per entry.
const instructions: Array<Instruction> = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"))
  .map((line) => {
    const space = line.indexOf(" ")
    return { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() }
  })

const stages = instructions.reduce<Array<Array<Instruction>>>((all, instruction) => {
  if (instruction.keyword === "FROM") all.push([instruction])
  else all.at(-1)!.push(instruction)
  return all
}, [])

const named = (stage: Array<Instruction>) => / AS (\S+)$/i.exec(stage[0]!.args)?.[1]
const buildStage = stages.find((stage) => named(stage) === "build")!
const runtimeStage = stages.at(-1)!
const all = (stage: Array<Instruction>, keyword: string) =>
  stage.filter((instruction) => instruction.keyword === keyword)

// npm must not see the test runner's npm_* variables (they point at this repository).
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^(npm_|VITEST|NODE_OPTIONS)/i.test(key))
)

interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

// Asynchronous: npm takes minutes on a loaded machine and the test worker must keep answering meanwhile.
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<Ran>((resolve) => {
    const child = spawn(command, args, { cwd, env: cleanEnv })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("error", (error) => resolve({ status: -1, stdout, stderr: stderr + String(error) }))
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

describe("deploy/Dockerfile", () => {
  it("builds in one stage and runs compiled JavaScript as a non-root user in another, checked on /healthz", () => {
    expect(stages.map(named)).toEqual(["build", "runtime"])
    expect(all(buildStage, "RUN").map((run) => run.args).join(" ")).toMatch(/npm ci\b.*npm run build/)
    // The runtime stage takes nothing from the build context: only the packed tarball from the build stage.
    expect(all(runtimeStage, "COPY").map((copy) => copy.args)).toEqual([
      "--from=build /tmp/package.tgz /tmp/package.tgz"
    ])
    const user = all(runtimeStage, "USER").at(-1)?.args
    expect(user).toBeDefined()
    expect(["root", "0"]).not.toContain(user)
    expect(all(runtimeStage, "HEALTHCHECK").at(-1)?.args).toContain("/healthz")
    expect(all(runtimeStage, "EXPOSE").map((expose) => expose.args)).toEqual(["8787"])
    expect(all(runtimeStage, "ENTRYPOINT").at(-1)?.args).toContain("dist/bin.js")
  })

  it("copies only files the repository has into the build stage", () => {
    const sources = all(buildStage, "COPY").flatMap((copy) => copy.args.split(/\s+/).slice(0, -1))
    expect(sources.length).toBeGreaterThan(0)
    expect(sources.filter((source) => !existsSync(join(root, source)))).toEqual([])
  })

  it("the runtime stage's install, as written, gives a bin that starts and says the package's version", async () => {
    const work = mkdtempSync(join(tmpdir(), "ewt-docker-"))
    try {
      // `npm pack` runs prepack, which builds dist/ afresh: the build stage's tarball.
      const packed = await run("npm", ["pack", "--silent", "--pack-destination", work], root)
      expect(packed.status, packed.stderr).toBe(0)
      const tarball = join(work, readdirSync(work).find((name) => name.endsWith(".tgz"))!)
      const app = join(work, "app")
      mkdirSync(app)
      writeFileSync(join(app, "package.json"), "{}")
      const install = all(runtimeStage, "RUN")
        .map((run) => run.args.split("&&")[0]!.trim())
        .find((command) => command.startsWith("npm install"))!
      expect(install).toContain("--omit=dev")
      const installed = await run("sh", ["-c", `${install.replace("/tmp/package.tgz", tarball)} --prefer-offline`], app)
      expect(installed.status, installed.stderr).toBe(0)
      const entrypoint: Array<string> = JSON.parse(all(runtimeStage, "ENTRYPOINT").at(-1)!.args)
      const bin = entrypoint[1]!.replace("/app/", `${app}/`)
      const ran = await run(process.execPath, [bin, "--version"], app)
      expect({ status: ran.status, stdout: ran.stdout.trim() }).toEqual({ status: 0, stdout: version })
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  }, 300_000)
})
