/**
 * One million authorizers in one replica (issue 30, goal 2): the server of
 * `bench/credentialsServer.ts` started warm from a real `redis-server`
 * holding, per authorizer, its refresh token and a valid access token (two
 * credentials each), plus the verify ticket and the component token.
 * Measured: live heap per credential after a full GC, RSS, seconds to ready,
 * upstream fetches (none), fibers alive, and how long `/readyz` and
 * `/metrics` take to answer.
 *
 * Runs only when named (`npm run bench -- million`): it takes minutes and
 * GBs. `BENCH_AUTHORIZERS` scales it down. The authorizers are not
 * generated in the emulator (a million there would cost the bench process
 * GBs of its own): a warm start asks WeChat nothing, and any call it did
 * make would be counted all the same.
 */
import { Effect } from "effect"
import { loadavg } from "node:os"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as RedisServer from "../test/support/redisServer.js"
import {
  accessTokenRecords,
  type BenchAuthorizer,
  componentTokenRecord,
  refreshTokenRecords,
  registration,
  ticketRecord
} from "./credentialApps.js"
import { fibersFigure, fillRedis, runServer, show, upstreamCalls } from "./credentials.js"
import { appIdOf, type Figure } from "./Figure.js"

const DEFAULT_AUTHORIZERS = 1_000_000
const SLICE = 50_000

const GOAL_HEAP_BYTES = 1024
const GOAL_READY_SECONDS = 60
const GOAL_ANSWER_MILLIS = 100
// Per authorizer: its access token and its refresh token.
const CREDENTIALS_PER_AUTHORIZER = 2

/** `BENCH_AUTHORIZERS`, or `fallback`. */
export const authorizersFromEnv = (fallback: number): number => {
  const named = Number(process.env["BENCH_AUTHORIZERS"])
  return Number.isInteger(named) && named > 0 ? named : fallback
}

const sliceOf = (from: number, to: number): Array<BenchAuthorizer> =>
  Array.from({ length: to - from }, (_, index) => ({
    appId: appIdOf(0x100000 + from + index),
    refreshToken: `refreshtoken@@@${(from + index).toString(36).padStart(8, "0")}`
  }))

export const run: Effect.Effect<ReadonlyArray<Figure>, unknown> = Effect.scoped(Effect.gen(function*() {
  const count = authorizersFromEnv(DEFAULT_AUTHORIZERS)
  const reproduce = count === DEFAULT_AUTHORIZERS
    ? "npm run bench -- million"
    : `BENCH_AUTHORIZERS=${count} npm run bench -- million`
  const scenario = `${count.toLocaleString("en")} authorizers, warm from Redis`
  const figures: Array<Figure> = []
  const add = (figure: Figure) => Effect.zipRight(show(figure), Effect.sync(() => figures.push(figure)))

  const wechat = yield* Emulator.serve({ components: [registration] })
  const emulator = wechat.emulator
  const ticket = yield* emulator.component.pushTicket(registration.componentAppId)
  const redis = yield* RedisServer.make
  const now = Date.now()
  yield* fillRedis(redis.url, [ticketRecord(ticket, now), componentTokenRecord(now)])
  for (let from = 0; from < count; from += SLICE) {
    const authorizers = sliceOf(from, Math.min(count, from + SLICE))
    yield* fillRedis(redis.url, [
      ...refreshTokenRecords(authorizers, now),
      ...accessTokenRecords(authorizers, now, from, count)
    ])
  }
  console.error(`  ${scenario}: store filled in ${((Date.now() - now) / 1000).toFixed(1)} s`)

  const credentials = count * CREDENTIALS_PER_AUTHORIZER
  const before = yield* upstreamCalls(emulator)
  // About 1.5 KB of heap per authorizer and the start-up's garbage on top;
  // `BENCH_HEAP_MIB` sets another limit, to find the least a size starts in.
  const heapMiB = Number(process.env["BENCH_HEAP_MIB"] ?? Math.max(4096, Math.ceil(count / 1_000_000) * 8192))
  if (!Number.isInteger(heapMiB) || heapMiB <= 0) {
    return yield* Effect.dieMessage("BENCH_HEAP_MIB: a whole number of MiB")
  }
  yield* add({
    scenario,
    name: "the server's heap limit (--max-old-space-size)",
    value: heapMiB,
    unit: "MiB",
    reproduce
  })
  yield* runServer(
    { COUNT: String(count), WECHAT_API_BASE_URL: wechat.url, TOKEN_STORE: redis.url },
    Math.max(240, Math.ceil(count / 1_000)),
    ({ name, value }) => {
      switch (name) {
        case "readySeconds": {
          const seconds = value as number
          return Effect.zipRight(
            add({
              scenario,
              name: "warm start: start-up to ready",
              value: seconds,
              unit: "s",
              goal: `≤ ${GOAL_READY_SECONDS}`,
              met: seconds <= GOAL_READY_SECONDS,
              reproduce
            }),
            // Other work on the machine slows every wall-clock figure.
            add({
              scenario,
              name: "machine load (1 min average) when ready",
              value: loadavg()[0]!,
              unit: "",
              reproduce
            })
          )
        }
        case "readyCpuSeconds":
          return add({
            scenario,
            name: "warm start: CPU of the server process until ready (user + system)",
            value: value as number,
            unit: "s",
            reproduce
          })
        case "heap": {
          const heap = value as { before: number; after: number; rss: number }
          const perCredential = (heap.after - heap.before) / credentials
          return Effect.all([
            add({
              scenario,
              name: "live heap per credential after a full GC",
              value: perCredential,
              unit: "bytes",
              goal: `≤ ${GOAL_HEAP_BYTES}`,
              met: perCredential <= GOAL_HEAP_BYTES,
              reproduce
            }),
            add({
              scenario,
              name: "live heap per authorizer after a full GC",
              value: perCredential * CREDENTIALS_PER_AUTHORIZER,
              unit: "bytes",
              reproduce
            }),
            add({ scenario, name: "RSS once ready", value: heap.rss / 2 ** 20, unit: "MB", reproduce })
          ], { discard: true })
        }
        case "fibers":
          return add(fibersFigure(scenario, value as number, reproduce))
        case "readyz":
        case "metrics": {
          const answer = value as { millis: number; cpuMillis: number; status: number; bytes: number }
          return Effect.zipRight(
            add({
              scenario,
              name: `/${name} answer (${Math.round(answer.bytes / 1024)} KB, status ${answer.status})`,
              value: answer.millis,
              unit: "ms",
              goal: `≤ ${GOAL_ANSWER_MILLIS}`,
              met: answer.millis <= GOAL_ANSWER_MILLIS,
              reproduce
            }),
            add({
              scenario,
              name: `/${name}: the server process's CPU during the answer`,
              value: answer.cpuMillis,
              unit: "ms",
              reproduce
            })
          )
        }
        default:
          return Effect.void
      }
    },
    heapMiB
  ).pipe(
    Effect.catchAll((error) => Effect.sync(() => console.error(`  the warm start did not finish: ${error.message}`)))
  )
  const fetches = (yield* upstreamCalls(emulator)) - before
  yield* add({
    scenario,
    name: "warm start: upstream fetches",
    value: fetches,
    unit: "",
    goal: "= 0",
    met: fetches === 0,
    reproduce
  })
  return figures
}))
