import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Random, Schema } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { TokenRecord } from "../../src/Token.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const writer = fileURLToPath(new URL("./support/fileStoreWriter.ts", import.meta.url))
const APP = "wx0123456789abcdef"
const KINDS = ["access_token", "jsapi_ticket", "wx_card_ticket"] as const
type Kind = typeof KINDS[number]
// Independent store files written side by side, each killed KILLS_EACH times
// (CRASH_KILLS_EACH raises it for a longer run; a writer takes seconds to start on a busy CI box).
const FILES = 3
const KILLS_EACH = Number(process.env["CRASH_KILLS_EACH"] ?? "5")

const decodeRecord = Schema.decodeUnknownEither(TokenRecord)

interface Run {
  readonly started: number
  /** Per kind, the last generation the writer reported as written in this run. */
  readonly acknowledged: Partial<Record<Kind, number>>
  readonly output: string
}

// Starts the writer, lets it write for a random while, then SIGKILLs it.
const killWhileWriting = (path: string) =>
  Effect.gen(function*() {
    const child = spawn(process.execPath, ["--import", "tsx", writer, path], { cwd: root })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = Effect.async<void>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
      child.on("exit", () => resume(Effect.void))
    })
    yield* Effect.async<void>((resume) => {
      const onData = () => {
        if (/^start \d+$/m.test(output)) {
          child.stdout.off("data", onData)
          resume(Effect.void)
        }
      }
      child.stdout.on("data", onData)
      child.on("exit", () => resume(Effect.dieMessage(`the writer exited before it started:\n${output}`)))
    })
    // A write (three records, each fsynced and renamed) takes tens of ms: the kill lands anywhere in a few of them.
    yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 400)))
    child.kill("SIGKILL")
    yield* exited
    const acknowledged: Partial<Record<Kind, number>> = {}
    for (const [, kind, generation] of output.matchAll(/^(\w+) (\d+)$/gm)) {
      if (kind !== "start") acknowledged[kind as Kind] = Number(generation)
    }
    return { started: Number(/^start (\d+)$/m.exec(output)![1]), acknowledged, output } satisfies Run
  })

const killRepeatedly = (fs: FileSystem.FileSystem, dir: string) =>
  Effect.gen(function*() {
    const path = `${dir}/tokens.json`
    // What the file held after the previous kill, per kind (0: no record yet).
    const held: Record<Kind, number> = { access_token: 0, jsapi_ticket: 0, wx_card_ticket: 0 }
    let writes = 0
    for (let kill = 0; kill < KILLS_EACH; kill++) {
      const run = yield* killWhileWriting(path)
      // The restarted writer found exactly what the last one left: nothing
      // lost, nothing thrown away as corrupt.
      expect(run.started).toBe(held.access_token)
      expect(run.output).not.toMatch(/not a valid document|malformed records|moved the unusable/)
      writes += Object.values(run.acknowledged).reduce((sum, generation) => sum + generation - run.started, 0)
      const text = yield* fs.readFileString(path).pipe(
        Effect.orElseSucceed(() => "{\"format\":\"effect-wechat-token/v1\",\"records\":{}}")
      )
      const document = JSON.parse(text)
      expect(document.format).toBe("effect-wechat-token/v1")
      for (const kind of KINDS) {
        const previous = run.acknowledged[kind] ?? held[kind]
        const next = (run.acknowledged[kind] ?? run.started) + 1
        const stored = document.records[`${APP}/${kind}`]
        if (stored === undefined) {
          expect(previous).toBe(0)
          continue
        }
        const record = decodeRecord(stored)
        expect(Either.isRight(record)).toBe(true)
        if (Either.isLeft(record)) continue
        const { generation, value } = record.right
        expect([previous, next]).toContain(generation)
        expect(value).toBe(`${kind}-${generation}-${"x".repeat(500)}-${generation}`)
        held[kind] = generation
      }
    }
    return writes
  })

describe("CrashConsistency", () => {
  it.live(
    `file-store writers SIGKILLed ${
      FILES * KILLS_EACH
    } times at random moments always leave complete previous-or-new records`,
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const results = yield* Effect.forEach(
          Array.from({ length: FILES }),
          () => Effect.flatMap(fs.makeTempDirectoryScoped(), (dir) => killRepeatedly(fs, dir)),
          { concurrency: "unbounded" }
        )
        // The writers did write between kills, so the kills fell among writes.
        expect(results.reduce((sum, writes) => sum + writes, 0)).toBeGreaterThan(FILES * KILLS_EACH)
      }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)),
    60_000 + FILES * KILLS_EACH * 10_000
  )
})
