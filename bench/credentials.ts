/**
 * 100,000 credentials in one server. The third-party platform family is not
 * on this branch yet, so the credentials are 100,000 official-account apps
 * (the engine treats every owner alike; authorizers differ only in where
 * their refresh token comes from). The server runs in a process of its own
 * (`bench/credentialsServer.ts`, under tsx: the apps do not fit in an
 * environment variable) against the emulator over loopback:
 *
 * - warm start from a file store and from Redis holding a valid token for
 *   each: seconds to ready, upstream fetches (none), live heap per
 *   credential after a full GC, fibers alive, `/readyz` and `/metrics` times;
 * - cold start (nothing stored) of `COLD` credentials: the emulator's peak of
 *   requests in flight;
 * - a simulated day on `TestClock` (in this process) of `DAY` credentials
 *   started cold at one instant: the busiest second of refreshes against
 *   the day's mean.
 */
import { Duration, Effect, Layer, Schema, TestClock, TestContext } from "effect"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FORMAT } from "../src/internal/fileStore.js"
import { recordKey } from "../src/internal/redisStore.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../src/Token.js"
import * as TokenConfig from "../src/TokenConfig.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenLayer from "../src/TokenLayer.js"
import { TokenStore } from "../src/TokenStore.js"
import * as TokenStoreMemory from "../src/TokenStore.js"
import * as RedisServer from "../test/support/redisServer.js"
import { type BenchApp, credentialApps, warmRecords } from "./credentialApps.js"
import type { Figure } from "./Figure.js"

interface Plan {
  readonly count: number
  readonly cold: number
  readonly day: number
  readonly reproduce: string
  readonly smoke: boolean
}

const FULL: Plan = { count: 100_000, cold: 5_000, day: 10_000, reproduce: "npm run bench -- credentials", smoke: false }
// The smoke run skips the simulated day (86,400 clock steps): CI keeps to the counts.
const SMOKE: Plan = { count: 1_000, cold: 100, day: 0, reproduce: "npm run bench:smoke", smoke: true }

const GOAL_HEAP_BYTES = 2048
const GOAL_READY_SECONDS = 30
const GOAL_ANSWER_MILLIS = 100
const MAX_IN_FLIGHT = 16
const DAY_SECONDS = 86_400

interface ServerResult {
  readonly readySeconds: number
  readonly heapBefore: number
  readonly heapAfter: number
  readonly fibers: number
  readonly readyzMillis: number
  readonly readyzStatus: number
  readonly readyzBytes: number
  readonly metricsMillis: number
  readonly metricsBytes: number
  readonly rss: number
}

const RESULT = "RESULT "

// The server process to completion; its one RESULT line.
const runServer = (env: Readonly<Record<string, string>>) =>
  Effect.async<ServerResult, Error>((resume) => {
    const child = spawn(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=4096", "--import", "tsx", "bench/credentialsServer.ts"],
      {
        cwd: new URL("../", import.meta.url).pathname,
        env: { PATH: process.env["PATH"] ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("exit", (code) => {
      const line = output.split("\n").find((text) => text.startsWith(RESULT))
      resume(
        code === 0 && line !== undefined
          ? Effect.succeed(JSON.parse(line.slice(RESULT.length)) as ServerResult)
          : Effect.fail(new Error(`credentials server exited with ${code}:\n${output.slice(-4000)}`))
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const encodeRecord = Schema.encodeSync(TokenRecord)

const writeFileStore = (path: string, records: ReadonlyArray<TokenRecord>) =>
  Effect.promise(() =>
    writeFile(
      path,
      JSON.stringify({
        format: FORMAT,
        records: Object.fromEntries(records.map((record) => [`${record.appId}/${record.kind}`, encodeRecord(record)]))
      }),
      { mode: 0o600 }
    )
  )

const fillRedis = (url: string, records: ReadonlyArray<TokenRecord>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Redis(url)),
    (client) =>
      Effect.promise(async () => {
        for (let start = 0; start < records.length; start += 5_000) {
          const pipeline = client.pipeline()
          for (const record of records.slice(start, start + 5_000)) {
            pipeline.set(recordKey(record), JSON.stringify(encodeRecord(record)))
          }
          await pipeline.exec()
        }
      }),
    (client) => Effect.promise(() => client.quit())
  )

const upstreamCalls = (emulator: Emulator.WeChatEmulatorShape) =>
  Effect.map(
    emulator.stats,
    (stats) => Object.values(stats.apps).reduce((sum, app) => sum + app.classicCalls + app.stableCalls, 0)
  )

// Refreshes (records after an app's first) per second of a simulated day.
const refreshesPerSecond = (apps: ReadonlyArray<BenchApp>) =>
  Effect.gen(function*() {
    const perSecond = new Map<number, number>()
    const counting = Layer.effect(
      TokenStore,
      Effect.map(TokenStore, (store) => ({
        ...store,
        set: (record: TokenRecord) =>
          Effect.tap(store.set(record), () =>
            Effect.sync(() => {
              if (record.generation < 2) return
              const second = Math.floor(record.fetchedAt / 1000)
              perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
            }))
      }))
    ).pipe(Layer.provide(TokenStoreMemory.layerMemory))
    yield* Effect.gen(function*() {
      const engine = yield* TokenEngine
      yield* Effect.forEach(apps, (app) => engine.get(app.appId), { concurrency: 64, discard: true })
      for (let second = 0; second < DAY_SECONDS; second++) yield* TestClock.adjust(Duration.seconds(1))
    }).pipe(
      Effect.provide(TokenLayer.make({
        config: TokenConfig.layerWith({
          apps: apps.map((app) => TokenConfig.app(app.appId, app.secret)),
          mode: "classic",
          apiBaseUrl: "http://wechat.test"
        }),
        store: counting,
        httpClient: Emulator.layerClient.pipe(Layer.provide(Emulator.layer({ apps })))
      })),
      Effect.scoped,
      Effect.provide(TestContext.TestContext)
    )
    const total = [...perSecond.values()].reduce((sum, n) => sum + n, 0)
    return { busiest: Math.max(0, ...perSecond.values()), mean: total / DAY_SECONDS, total }
  })

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const { reproduce } = plan
    const scenario = `${plan.count.toLocaleString("en")} credentials`
    const apps = credentialApps(plan.count)
    const wechat = yield* Emulator.serve({ apps })
    const records = warmRecords(apps, Date.now())
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "bench-credentials-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const file = join(directory, "tokens.json")
    yield* writeFileStore(file, records)
    const redis = yield* RedisServer.make
    yield* fillRedis(redis.url, records)
    const env = { COUNT: String(plan.count), WECHAT_API_BASE_URL: wechat.url }

    const warm = (label: string, store: string) =>
      Effect.gen(function*() {
        const before = yield* upstreamCalls(wechat.emulator)
        const result = yield* runServer({ ...env, TOKEN_STORE: store })
        const fetches = (yield* upstreamCalls(wechat.emulator)) - before
        const perCredential = (result.heapAfter - result.heapBefore) / plan.count
        const figures: Array<Figure> = [
          {
            scenario,
            name: `warm start from ${label}: start-up to ready`,
            value: result.readySeconds,
            unit: "s",
            goal: `≤ ${GOAL_READY_SECONDS}`,
            met: result.readySeconds <= GOAL_READY_SECONDS,
            reproduce
          },
          {
            scenario,
            name: `warm start from ${label}: upstream fetches`,
            value: fetches,
            unit: "",
            goal: "= 0",
            met: fetches === 0,
            reproduce
          }
        ]
        return { figures, result, perCredential }
      })

    const fromFile = yield* warm("a file store", `file:${file}`)
    const fromRedis = yield* warm("Redis", redis.url)
    const { perCredential, result } = fromRedis

    // Cold: nothing stored, a subset of the apps.
    yield* wechat.emulator.resetStats
    yield* runServer({ ...env, COUNT: String(plan.cold), TOKEN_STORE: "memory" })
    const peak = (yield* wechat.emulator.stats).peakInFlight

    const dayScenario = `${plan.day.toLocaleString("en")} credentials, simulated day`
    const dayFigures: ReadonlyArray<Figure> = plan.day === 0 ? [] : yield* Effect.map(
      refreshesPerSecond(credentialApps(plan.day)),
      (day): ReadonlyArray<Figure> => [
        {
          scenario: dayScenario,
          name: "refreshes in 24 h (after the cold start at one instant)",
          value: day.total,
          unit: "",
          reproduce
        },
        {
          scenario: dayScenario,
          name: `busiest second of refreshes (${day.busiest}) / the day's mean (${day.mean.toFixed(2)})`,
          value: day.busiest / day.mean,
          unit: "×",
          goal: "≤ 2",
          met: day.busiest / day.mean <= 2,
          reproduce
        }
      ]
    )

    return [
      ...fromFile.figures,
      ...fromRedis.figures,
      {
        scenario,
        name: "live heap per credential after a full GC (warm from Redis)",
        value: perCredential,
        unit: "bytes",
        ...(plan.smoke ? {} : { goal: `≤ ${GOAL_HEAP_BYTES}`, met: perCredential <= GOAL_HEAP_BYTES }),
        reproduce
      },
      {
        scenario,
        name: "live heap in all after a full GC (warm from Redis)",
        value: result.heapAfter / 2 ** 20,
        unit: "MB",
        reproduce
      },
      { scenario, name: "RSS (warm from Redis)", value: result.rss / 2 ** 20, unit: "MB", reproduce },
      {
        scenario,
        name: "fibers alive once ready",
        value: result.fibers,
        unit: "",
        goal: "< 10",
        met: result.fibers < 10,
        reproduce
      },
      {
        scenario,
        name: `/readyz answer (${Math.round(result.readyzBytes / 1024)} KB, status ${result.readyzStatus})`,
        value: result.readyzMillis,
        unit: "ms",
        ...(plan.smoke ? {} : { goal: `< ${GOAL_ANSWER_MILLIS}`, met: result.readyzMillis < GOAL_ANSWER_MILLIS }),
        reproduce
      },
      {
        scenario,
        name: `/metrics answer (${Math.round(result.metricsBytes / 1024)} KB)`,
        value: result.metricsMillis,
        unit: "ms",
        ...(plan.smoke ? {} : { goal: `< ${GOAL_ANSWER_MILLIS}`, met: result.metricsMillis < GOAL_ANSWER_MILLIS }),
        reproduce
      },
      {
        scenario: `${plan.cold.toLocaleString("en")} credentials, cold start`,
        name: "peak upstream requests in flight",
        value: peak,
        unit: "",
        goal: `≤ ${MAX_IN_FLIGHT}`,
        met: peak <= MAX_IN_FLIGHT,
        reproduce
      },
      ...dayFigures
    ]
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
