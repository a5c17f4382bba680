/**
 * Scale: one server process (compiled, `dist/bin.js serve`) with 1,000 apps against the
 * emulator over loopback (50 ms a token, like WeChat): its RSS after a
 * warm-up, the peak number of upstream requests in flight (start-up fetches
 * every app's token), and, on `TestClock`, how the apps' refresh times spread.
 */
import { Duration, Effect, Layer, Option, Schedule, TestContext } from "effect"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../src/TokenConfig.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenLayer from "../src/TokenLayer.js"
import * as TokenStore from "../src/TokenStore.js"
import { appIdOf, CLIENT_KEY, type Figure, SECRET, UPSTREAM_LATENCY } from "./Figure.js"
import { fetchWhenReady, rssMb, type ServerProcess, start, tokenServer, tsxScript } from "./ServerProcess.js"

const APPS = 1_000
const SMOKE_APPS = 100
const GOAL_RSS_MB = 200
const WARM_UP_PASSES = 3
const WARM_UP_CONCURRENCY = 50
const MARGIN_SECONDS = 300
// The engine's default bound on upstream calls in flight.
const MAX_CONCURRENT_FETCHES = 16
// Without jitter all 1,000 would fall in one second; with it (0 to margin/2,
// 151 s) the mean is under 7 a second.
const GOAL_REFRESHES_PER_SECOND = 20

type Apps = ReadonlyArray<{ readonly appId: string; readonly secret: string }>

const appsOf = (count: number): Apps =>
  Array.from({ length: count }, (_, index) => ({ appId: appIdOf(index + 1), secret: `${SECRET}-${index}` }))

const MB = 1024 * 1024

// Asks the probe for the server's live heap after a full collection. (RSS
// right after it says nothing: V8 keeps the freed pages committed.)
const memoryAfterFullGc = (server: ServerProcess) =>
  Effect.sync(() => process.kill(server.pid, "SIGUSR2")).pipe(
    Effect.zipRight(
      Effect.suspend(() => {
        const line = /MEMORY (\{.*\})/.exec(server.output())?.[1]
        return line === undefined
          ? Effect.fail(new Error("the memory probe has not answered"))
          : Effect.succeed(JSON.parse(line) as { readonly heapUsed: number })
      }).pipe(Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }))
    ),
    Effect.map((memory) => ({ heapUsed: memory.heapUsed / MB }))
  )

const serverProcess = (apps: Apps, command: ReadonlyArray<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const wechat = yield* Emulator.serve({ apps })
    yield* wechat.emulator.injectFault({
      fault: Emulator.Fault.Slow(UPSTREAM_LATENCY),
      endpoints: ["token", "stable_token"]
    })
    const started = performance.now()
    // The probe reports memory after a full collection when asked (SIGUSR2).
    const server = yield* start(["--expose-gc", "--import", "./bench/memoryProbe.mjs", ...command], {
      WECHAT_APPS: apps.map((app) => `${app.appId}:${app.secret}`).join(","),
      WECHAT_API_BASE_URL: wechat.url,
      CLIENT_KEYS: CLIENT_KEY,
      PORT: "0",
      LOG_FORMAT: "json"
    })
    // Ready once every app has a valid token.
    yield* Effect.tryPromise(async () => {
      const response = await fetch(`${server.url}/readyz`)
      if (response.status !== 200) throw new Error(`readyz ${response.status}`)
    }).pipe(Effect.retry({ times: 1_200, schedule: Schedule.spaced("100 millis") }))
    const readySeconds = (performance.now() - started) / 1000
    for (let pass = 0; pass < WARM_UP_PASSES; pass++) {
      yield* Effect.forEach(apps, (app) => fetchWhenReady(`${server.url}/v1/apps/${app.appId}/access-token`), {
        concurrency: WARM_UP_CONCURRENCY,
        discard: true
      })
    }
    const rss = rssMb(server.pid)
    const collected = yield* memoryAfterFullGc(server)
    const stats = yield* wechat.emulator.stats
    const fetches = Object.values(stats.apps).reduce((sum, app) => sum + app.classicCalls + app.stableCalls, 0)
    return { rss, collected, peak: stats.peakInFlight, readySeconds, fetches }
  }))

// Refresh times of 1,000 apps fetched at the same instant: only jitter spreads them.
const refreshSpread = (apps: Apps) =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    // Start-up fetches run in the engine's own fibers: wait for every token.
    yield* Effect.forEach(apps, (app) => engine.get(app.appId), { concurrency: "unbounded", discard: true })
    const statuses = yield* engine.status
    const perSecond = new Map<number, number>()
    for (const status of statuses) {
      if (Option.isNone(status.record)) continue
      const second = Math.floor(status.record.value.refreshAt / 1000)
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
    }
    const seconds = [...perSecond.keys()]
    return {
      maxPerSecond: Math.max(...perSecond.values()),
      windowSeconds: Math.max(...seconds) - Math.min(...seconds) + 1,
      scheduled: statuses.filter((status) => Option.isSome(status.record)).length
    }
  }).pipe(
    Effect.provide(TokenLayer.layer({
      config: TokenConfig.layer({
        apps: apps.map((app) => TokenConfig.app(app.appId, app.secret)),
        mode: "classic",
        refreshMargin: Duration.seconds(MARGIN_SECONDS),
        apiBaseUrl: "http://wechat.test"
      }),
      store: TokenStore.layerMemory,
      httpClient: Emulator.layerClient.pipe(Layer.provide(Emulator.layer({ apps })))
    })),
    Effect.provide(TestContext.TestContext)
  )

const runWith = (
  count: number,
  command: ReadonlyArray<string>,
  reproduce: string
): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.gen(function*() {
    const apps = appsOf(count)
    const server = yield* serverProcess(apps, command)
    const spread = yield* refreshSpread(apps)
    const smoke = count !== APPS
    const scenario = `scale (${count.toLocaleString("en")} apps)`
    return [
      // Under tsx (the smoke run) the compiler stays resident: RSS says nothing then.
      ...(server.rss === undefined || smoke ? [] : [{
        scenario,
        name: "server RSS after warm-up",
        value: server.rss,
        unit: "MB",
        goal: `< ${GOAL_RSS_MB}`,
        met: server.rss < GOAL_RSS_MB,
        reproduce
      }]),
      { scenario, name: "server live heap after a full GC", value: server.collected.heapUsed, unit: "MB", reproduce },
      { scenario, name: "start-up to ready (every app has a token)", value: server.readySeconds, unit: "s", reproduce },
      {
        scenario,
        name: "upstream fetches at start-up",
        value: server.fetches,
        unit: "",
        goal: `= ${count}`,
        met: server.fetches === count,
        reproduce
      },
      {
        scenario,
        name: "peak upstream requests in flight",
        value: server.peak,
        unit: "",
        goal: `≤ ${MAX_CONCURRENT_FETCHES}`,
        met: server.peak <= MAX_CONCURRENT_FETCHES,
        reproduce
      },
      {
        scenario,
        name: `first refreshes, tokens all fetched at one instant: busiest second (of ${spread.scheduled})`,
        value: spread.maxPerSecond,
        unit: "refreshes",
        goal: `≤ ${GOAL_REFRESHES_PER_SECOND}`,
        met: spread.scheduled === count && spread.maxPerSecond <= GOAL_REFRESHES_PER_SECOND,
        reproduce
      },
      { scenario, name: "first refreshes: spread over", value: spread.windowSeconds, unit: "s", reproduce }
    ]
  })

export const run = runWith(APPS, tokenServer, "npm run bench -- scale")

// 100 apps under tsx (CI does not build): the counts, not the memory.
export const smoke = runWith(SMOKE_APPS, [...tsxScript("src/bin.ts"), "serve"], "npm run bench:smoke")
