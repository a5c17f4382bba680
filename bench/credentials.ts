/**
 * 100,000 credentials in one server: the authorizers of one third-party
 * platform, generated in the emulator (`generateAuthorizers`). The server
 * runs in a process of its own (`bench/credentialsServer.ts`, under tsx,
 * `--expose-gc`) against the emulator over loopback:
 *
 * - warm start from a file store and from Redis (a real `redis-server`),
 *   each holding the verify ticket, the component token, and per authorizer
 *   its refresh token and a valid access token, written in the store's own
 *   format: seconds to ready, upstream fetches (none), live heap per
 *   authorizer after a full GC, fibers alive, `/readyz`, `/metrics` and a
 *   page of authorizers, how long each takes;
 * - the file store's write cost at that size: concurrent sets on the warm
 *   file, how many file writes they took and how long;
 * - a cold start of `cold` authorizers (the store holds the ticket and
 *   their refresh tokens, no token): the emulator's peak of requests in
 *   flight, fetches, seconds to ready.
 *
 * Every figure is printed (stderr) as soon as it is measured, so a slow or
 * failing step never hides the others; the table comes at the end.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Layer, Option } from "effect"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FileStore from "../src/internal/fileStore.js"
import { recordKey } from "../src/internal/redisStore.js"
import { encodeJson } from "../src/internal/storedRecord.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../src/Token.js"
import * as RedisServer from "../test/support/redisServer.js"
import { type BenchAuthorizer, COMPONENT, inputRecords, registration, warmRecords } from "./credentialApps.js"
import { type Figure, UPSTREAM_LATENCY } from "./Figure.js"

interface Plan {
  readonly count: number
  readonly cold: number
  /** Concurrent sets for the file store's write cost. */
  readonly sets: number
  readonly reproduce: string
  readonly smoke: boolean
  /** A server process that is not done by then is stopped and reported. */
  readonly serverSeconds: number
}

const FULL: Plan = {
  count: 100_000,
  cold: 3_000,
  sets: 200,
  reproduce: "npm run bench -- credentials",
  smoke: false,
  serverSeconds: 240
}
const SMOKE: Plan = {
  count: 1_000,
  cold: 100,
  sets: 50,
  reproduce: "npm run bench:smoke",
  smoke: true,
  serverSeconds: 60
}

const GOAL_HEAP_BYTES = 2048
const GOAL_READY_SECONDS = 30
const GOAL_ANSWER_MILLIS = 100
const MAX_IN_FLIGHT = 16

// Shown as it comes, in the table's words.
export const show = (figure: Figure) =>
  Effect.sync(() => {
    const value = Number.isInteger(figure.value) ? figure.value.toLocaleString("en") : figure.value.toFixed(2)
    const goal = figure.goal === undefined ? "" : ` (goal ${figure.goal}: ${figure.met === true ? "met" : "NOT met"})`
    console.error(`  ${figure.scenario} | ${figure.name}: ${value} ${figure.unit}${goal}`)
  })

export interface ServerFigure {
  readonly name: string
  readonly value: unknown
}

const FIGURE = "FIGURE "

// `BENCH_PROFILE=DIR npm run bench -- credentials` writes a CPU profile of each server process into DIR.
const profile = process.env["BENCH_PROFILE"]
const profileArgs = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]

// The server process to completion; `onFigure` sees each of its figures as it prints it.
export const runServer = (
  env: Readonly<Record<string, string>>,
  seconds: number,
  onFigure: (figure: ServerFigure) => Effect.Effect<void>,
  heapMiB = 4096
) =>
  Effect.async<void, Error>((resume) => {
    const child = spawn(
      process.execPath,
      [
        ...profileArgs,
        "--expose-gc",
        `--max-old-space-size=${heapMiB}`,
        "--import",
        "tsx",
        "bench/credentialsServer.ts"
      ],
      {
        cwd: new URL("../", import.meta.url).pathname,
        env: { PATH: process.env["PATH"] ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let output = ""
    let pending = ""
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString()
      const lines = pending.split("\n")
      pending = lines.pop()!
      for (const line of lines) {
        if (line.startsWith(FIGURE)) Effect.runSync(onFigure(JSON.parse(line.slice(FIGURE.length)) as ServerFigure))
        else output += `${line}\n`
      }
    })
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("exit", (code) =>
      resume(
        code === 0
          ? Effect.void
          : Effect.fail(new Error(`credentials server exited with ${code}:\n${output.slice(-4000)}`))
      ))
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(
    Effect.timeoutFail({
      duration: `${seconds} seconds`,
      onTimeout: () => new Error(`credentials server not done within ${seconds} s`)
    })
  )

export const writeFileStore = (path: string, records: ReadonlyArray<TokenRecord>) =>
  Effect.promise(() => writeFile(path, FileStore.render(records), { mode: 0o600 }))

export const fillRedis = (url: string, records: ReadonlyArray<TokenRecord>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Redis(url)),
    (client) =>
      Effect.promise(async () => {
        for (let start = 0; start < records.length; start += 5_000) {
          const pipeline = client.pipeline()
          for (const record of records.slice(start, start + 5_000)) pipeline.set(recordKey(record), encodeJson(record))
          await pipeline.exec()
        }
      }),
    (client) => Effect.promise(() => client.quit())
  )

// Every request the emulator received for the component and its authorizers.
export const upstreamCalls = (emulator: Emulator.WeChatEmulatorShape) =>
  Effect.gen(function*() {
    const component = yield* emulator.component.stats(COMPONENT)
    const apps = (yield* emulator.stats).apps
    return component.componentTokenCalls + component.startPushCalls + component.preAuthCodes +
      component.queryAuthCalls + component.authorizerTokenCalls + component.listCalls +
      Object.values(apps).reduce((sum, app) => sum + app.classicCalls + app.stableCalls + app.ticketCalls, 0)
  })

// A FileSystem that counts completed renames: one per file store write.
/**
 * The emulator serving the bench's component with `count` authorizers
 * generated in it, and each one's refresh token as WeChat holds it.
 */
export const withAuthorizers = (count: number) =>
  Effect.gen(function*() {
    const wechat = yield* Emulator.serve({ components: [registration] })
    const emulator = wechat.emulator
    const ids = yield* emulator.component.generateAuthorizers(COMPONENT, count)
    const authorizers: Array<BenchAuthorizer> = []
    for (const appId of ids) {
      const refreshToken = yield* emulator.component.currentRefreshToken(COMPONENT, appId)
      authorizers.push({ appId, refreshToken: refreshToken! })
    }
    return { wechat, emulator, authorizers }
  })

/** The fibers a server keeps once ready: a handful whatever the count, never one per credential. */
export const fibersFigure = (scenario: string, fibers: number, reproduce: string): Figure => ({
  scenario,
  name: "fibers alive once ready",
  value: fibers,
  unit: "",
  goal: "< 10",
  met: fibers < 10,
  reproduce
})

const countingRenames = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  let renames = 0
  const layer = Layer.succeed(FileSystem.FileSystem, {
    ...fs,
    rename: (from: string, to: string) => Effect.tap(fs.rename(from, to), () => Effect.sync(() => renames++))
  })
  return { layer, renames: () => renames }
})

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const { reproduce } = plan
    const scenario = `${plan.count.toLocaleString("en")} authorizers`
    const figures: Array<Figure> = []
    const add = (figure: Figure) => Effect.zipRight(show(figure), Effect.sync(() => figures.push(figure)))

    const { authorizers, emulator, wechat } = yield* withAuthorizers(plan.count)
    // No push URL: WeChat "pushes" into the void, and the bench puts the ticket in the stores.
    const ticket = yield* emulator.component.pushTicket(COMPONENT)
    const records = warmRecords(ticket, authorizers, Date.now())
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "bench-credentials-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const file = join(directory, "tokens.json")
    yield* writeFileStore(file, records)
    const redis = yield* RedisServer.make
    yield* fillRedis(redis.url, records)
    const env = { COUNT: String(plan.count), WECHAT_API_BASE_URL: wechat.url }

    const warm = (label: string, store: string, answers: boolean) =>
      Effect.gen(function*() {
        const before = yield* upstreamCalls(emulator)
        // `HEAP_SNAPSHOT=path npm run bench -- credentials`: a heap snapshot of the server warm from Redis, once ready.
        const snapshot = answers && process.env["HEAP_SNAPSHOT"] !== undefined
          ? { HEAP_SNAPSHOT: process.env["HEAP_SNAPSHOT"] }
          : {}
        yield* runServer({ ...env, ...snapshot, TOKEN_STORE: store }, plan.serverSeconds, ({ name, value }) => {
          switch (name) {
            case "readySeconds": {
              const seconds = value as number
              return add({
                scenario,
                name: `warm start from ${label}: start-up to ready`,
                value: seconds,
                unit: "s",
                goal: `≤ ${GOAL_READY_SECONDS}`,
                met: seconds <= GOAL_READY_SECONDS,
                reproduce
              })
            }
            case "heap": {
              const heap = value as { before: number; after: number; rss: number }
              const perAuthorizer = (heap.after - heap.before) / plan.count
              return Effect.all([
                add({
                  scenario,
                  name: `live heap per authorizer after a full GC (warm from ${label})`,
                  value: perAuthorizer,
                  unit: "bytes",
                  ...(plan.smoke ? {} : { goal: `≤ ${GOAL_HEAP_BYTES}`, met: perAuthorizer <= GOAL_HEAP_BYTES }),
                  reproduce
                }),
                add({
                  scenario,
                  name: `live heap in all after a full GC (warm from ${label})`,
                  value: heap.after / 2 ** 20,
                  unit: "MB",
                  reproduce
                }),
                add({ scenario, name: `RSS (warm from ${label})`, value: heap.rss / 2 ** 20, unit: "MB", reproduce })
              ], { discard: true })
            }
            case "fibers":
              return answers ? add(fibersFigure(scenario, value as number, reproduce)) : Effect.void
            case "readyz":
            case "metrics":
            case "authorizers": {
              if (!answers) return Effect.void
              const answer = value as { millis: number; status: number; bytes: number }
              const what = name === "authorizers" ? "a page of 100 authorizers" : `/${name}`
              return add({
                scenario,
                name: `${what} answer (${Math.round(answer.bytes / 1024)} KB, status ${answer.status})`,
                value: answer.millis,
                unit: "ms",
                ...(plan.smoke || name === "authorizers" ? {} : {
                  goal: `< ${GOAL_ANSWER_MILLIS}`,
                  met: answer.millis < GOAL_ANSWER_MILLIS
                }),
                reproduce
              })
            }
            default:
              return Effect.void
          }
        }).pipe(
          Effect.catchAll((error) =>
            Effect.sync(() => console.error(`  warm start from ${label} did not finish: ${error.message}`))
          )
        )
        const fetches = (yield* upstreamCalls(emulator)) - before
        yield* add({
          scenario,
          name: `warm start from ${label}: upstream fetches`,
          value: fetches,
          unit: "",
          goal: "= 0",
          met: fetches === 0,
          reproduce
        })
      })

    yield* warm("a file store", `file:${file}`, false)
    yield* warm("Redis", redis.url, true)

    // The file store at this size: concurrent sets on a copy of the warm file.
    const copy = join(directory, "writes.json")
    yield* Effect.promise(() => copyFile(file, copy))
    const counting = yield* countingRenames.pipe(Effect.provide(NodeFileSystem.layer))
    const fileStore = yield* FileStore.make(copy).pipe(Effect.provide(counting.layer))
    const updates = records.filter((record) => record.kind === "authorizer_access_token").slice(0, plan.sets)
      .map((record) => new TokenRecord({ ...record, generation: record.generation + 1 }))
    const writesBefore = counting.renames()
    const setsStarted = performance.now()
    yield* Effect.forEach(updates, (record) => fileStore.set(record), { concurrency: "unbounded", discard: true })
    const setsSeconds = (performance.now() - setsStarted) / 1000
    const written = yield* fileStore.get(updates[0]!)
    yield* add({
      scenario: `file store of ${records.length.toLocaleString("en")} records`,
      name: `${plan.sets} concurrent sets: file writes made`,
      value: counting.renames() - writesBefore,
      unit: "",
      reproduce
    })
    yield* add({
      scenario: `file store of ${records.length.toLocaleString("en")} records`,
      name: `${plan.sets} concurrent sets: seconds until the last is durable`,
      value: setsSeconds,
      unit: "s",
      reproduce
    })
    if (Option.getOrUndefined(written)?.generation !== 2) {
      return yield* Effect.dieMessage("the file store lost a set")
    }

    // Cold: the store holds the inputs of a subset of the authorizers, no token.
    const coldScenario = `${plan.cold.toLocaleString("en")} authorizers, cold start`
    const coldFile = join(directory, "cold.json")
    yield* writeFileStore(coldFile, inputRecords(ticket, authorizers.slice(0, plan.cold), Date.now()))
    // WeChat answers in tens of milliseconds: with instant answers nothing would ever be in flight together.
    yield* emulator.injectFault({
      fault: Emulator.Fault.Slow(UPSTREAM_LATENCY),
      endpoints: ["api_component_token", "api_authorizer_token"]
    })
    yield* emulator.resetStats
    const coldBefore = yield* upstreamCalls(emulator)
    yield* runServer(
      { ...env, COUNT: String(plan.cold), TOKEN_STORE: `file:${coldFile}` },
      plan.serverSeconds,
      ({ name, value }) =>
        name === "readySeconds"
          ? add({
            scenario: coldScenario,
            name: "start-up to ready (file store)",
            value: value as number,
            unit: "s",
            reproduce
          })
          : Effect.void
    ).pipe(
      Effect.catchAll((error) => Effect.sync(() => console.error(`  cold start did not finish: ${error.message}`)))
    )
    yield* add({
      scenario: coldScenario,
      name: "upstream fetches (component token + authorizer tokens)",
      value: (yield* upstreamCalls(emulator)) - coldBefore,
      unit: "",
      reproduce
    })
    const peak = (yield* emulator.stats).peakInFlight
    yield* add({
      scenario: coldScenario,
      name: "peak upstream requests in flight",
      value: peak,
      unit: "",
      goal: `≤ ${MAX_IN_FLIGHT}`,
      met: peak <= MAX_IN_FLIGHT,
      reproduce
    })
    return figures
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
