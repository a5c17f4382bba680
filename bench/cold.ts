/**
 * A cold start's herd (issue 30, goal 3): `count` authorizers of one
 * third-party platform whose store holds the verify ticket and their
 * refresh tokens but no token, the emulator answering each fetch in 50 ms,
 * the server's 16 permits. Measured on the file store and on Redis (a real
 * `redis-server`), the server in a process of its own (the one
 * `credentials` runs): upstream fetches, seconds to ready, the rate against
 * the permits' (16 in flight, each 50 ms: 320 fetches a second), and the
 * server's CPU per upstream fetch from its first line of work to ready.
 *
 * `BENCH_PROFILE=DIR npm run bench -- cold` writes a CPU profile of each
 * server process into DIR.
 */
import { Duration, Effect } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as RedisServer from "../test/support/redisServer.js"
import { COMPONENT, inputRecords } from "./credentialApps.js"
import { fillRedis, runServer, show, upstreamCalls, withAuthorizers, writeFileStore } from "./credentials.js"
import { type Figure, UPSTREAM_LATENCY } from "./Figure.js"

interface Plan {
  readonly count: number
  readonly reproduce: string
  readonly smoke: boolean
  readonly serverSeconds: number
}

const FULL: Plan = { count: 3_000, reproduce: "npm run bench -- cold", smoke: false, serverSeconds: 240 }
const SMOKE: Plan = { count: 100, reproduce: "npm run bench:smoke -- cold", smoke: true, serverSeconds: 60 }

const PERMITS = 16
const PERMITS_RATE = PERMITS / Duration.toSeconds(UPSTREAM_LATENCY)
const GOAL_RATE = 0.9
const GOAL_CPU_MILLIS = 1

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const { reproduce } = plan
    const scenario = `${plan.count.toLocaleString("en")} authorizers, cold start, ${UPSTREAM_LATENCY} answers`
    const figures: Array<Figure> = []
    const add = (figure: Figure) => Effect.zipRight(show(figure), Effect.sync(() => figures.push(figure)))

    const { authorizers, emulator, wechat } = yield* withAuthorizers(plan.count)
    const ticket = yield* emulator.component.pushTicket(COMPONENT)
    yield* emulator.injectFault({
      fault: Emulator.Fault.Slow(UPSTREAM_LATENCY),
      endpoints: ["api_component_token", "api_authorizer_token"]
    })
    const directory = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "bench-cold-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
    )
    const redis = yield* RedisServer.make

    const cold = (label: string, store: string, fill: Effect.Effect<void>) =>
      Effect.gen(function*() {
        yield* fill
        yield* emulator.resetStats
        const before = yield* upstreamCalls(emulator)
        // The server says when its layers are built (the store read, the
        // herd under way) and when it is ready; the herd is measured between.
        const seen: Record<string, number> = {}
        let fetchesBuilt = 0
        yield* runServer(
          { COUNT: String(plan.count), WECHAT_API_BASE_URL: wechat.url, TOKEN_STORE: store },
          plan.serverSeconds,
          ({ name, value }) =>
            Effect.gen(function*() {
              seen[name] = value as number
              if (name === "built") fetchesBuilt = (yield* upstreamCalls(emulator)) - before
            })
        ).pipe(
          Effect.catchAll((error) => Effect.sync(() => console.error(`  cold start on ${label}: ${error.message}`)))
        )
        const fetches = (yield* upstreamCalls(emulator)) - before
        const peak = (yield* emulator.stats).peakInFlight
        yield* add({ scenario, name: `${label}: upstream fetches`, value: fetches, unit: "", reproduce })
        yield* add({
          scenario,
          name: `${label}: peak upstream requests in flight`,
          value: peak,
          unit: "",
          goal: `≤ ${PERMITS}`,
          met: peak <= PERMITS,
          reproduce
        })
        const { built, cpuBuiltSeconds, cpuSeconds, readySeconds } = seen
        if (
          built === undefined || cpuBuiltSeconds === undefined || cpuSeconds === undefined || readySeconds === undefined
        ) return
        yield* add({
          scenario,
          name: `${label}: start-up to ready (layers built in ${built.toFixed(2)} s, ${fetchesBuilt} fetches by then)`,
          value: readySeconds,
          unit: "s",
          reproduce
        })
        const herd = fetches - fetchesBuilt
        const seconds = readySeconds - built
        const rate = herd / seconds / PERMITS_RATE
        yield* add({
          scenario,
          name: `${label}: fetches a second from built to ready (${
            Math.round(herd / seconds)
          }) / the permits' rate (${PERMITS_RATE})`,
          value: rate,
          unit: "×",
          ...(plan.smoke ? {} : { goal: `≥ ${GOAL_RATE}`, met: rate >= GOAL_RATE }),
          reproduce
        })
        const perFetch = 1_000 * (cpuSeconds - cpuBuiltSeconds) / herd
        yield* add({
          scenario,
          name: `${label}: server CPU per upstream fetch from built to ready (${
            (cpuSeconds - cpuBuiltSeconds).toFixed(1)
          } s; ${cpuSeconds.toFixed(1)} s from start-up)`,
          value: perFetch,
          unit: "ms",
          ...(plan.smoke ? {} : { goal: `≤ ${GOAL_CPU_MILLIS}`, met: perFetch <= GOAL_CPU_MILLIS }),
          reproduce
        })
      })

    const inputs = inputRecords(ticket, authorizers, Date.now())
    yield* cold(
      "file store",
      `file:${join(directory, "cold.json")}`,
      writeFileStore(join(directory, "cold.json"), inputs)
    )
    yield* cold("Redis", redis.url, fillRedis(redis.url, inputs))
    return figures
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
