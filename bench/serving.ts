/**
 * Serving: `GET /v1/apps/{appId}/access-token` of the real server process
 * (compiled, `dist/bin.js serve`) against bare `node:http` and against Effect's own HTTP
 * floor answering the same JSON, each in its own child process, loaded by
 * autocannon from this process. Rounds alternate so machine noise hits all
 * alike; the goal is judged on requests per CPU second of each server
 * process, which other load on a shared machine barely moves.
 */
import autocannon from "autocannon"
import { Effect } from "effect"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { APP, CLIENT_KEY, type Figure, SECRET } from "./Figure.js"
import { cpuSeconds, fetchWhenReady, headers, start, tokenServer, tsxScript } from "./ServerProcess.js"

const ROUNDS = 3
const SECONDS_PER_ROUND = 5
const WARM_UP_SECONDS = 2
const CONNECTIONS = 50
const GOAL_RATIO = 0.3

const load = (url: string, duration: number) =>
  Effect.promise(() => autocannon({ url, connections: CONNECTIONS, duration, headers }))

interface Side {
  readonly url: string
  readonly pid: number
  requests: number
  seconds: number
  cpu: number | undefined
  readonly p99: Array<number>
}

export const run: Effect.Effect<ReadonlyArray<Figure>, unknown> = Effect.scoped(Effect.gen(function*() {
  const wechat = yield* Emulator.serve({ apps: [{ appId: APP, secret: SECRET }] })
  const server = yield* start(tokenServer, {
    WECHAT_APPS: `${APP}:${SECRET}`,
    WECHAT_API_BASE_URL: wechat.url,
    CLIENT_KEYS: CLIENT_KEY,
    PORT: "0",
    LOG_FORMAT: "json"
  })
  const route = `${server.url}/v1/apps/${APP}/access-token`
  const body = yield* fetchWhenReady(route)
  const bare = yield* start(tsxScript("bench/bareServer.ts"), { BODY: body })
  const floor = yield* start(tsxScript("bench/floorServer.ts"), { BODY: body })
  const side = (url: string, pid: number): Side => ({ url, pid, requests: 0, seconds: 0, cpu: 0, p99: [] })
  const sides = [
    side(bare.url, bare.pid),
    side(`${floor.url}/v1/apps/${APP}/access-token`, floor.pid),
    side(route, server.pid)
  ] as const
  for (const { url } of sides) yield* load(url, WARM_UP_SECONDS)
  let failures = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of sides) {
      const before = cpuSeconds(side.pid)
      const result = yield* load(side.url, SECONDS_PER_ROUND)
      const after = cpuSeconds(side.pid)
      side.requests += result.requests.total
      side.seconds += result.duration
      side.cpu = side.cpu === undefined || before === undefined || after === undefined
        ? undefined
        : side.cpu + after - before
      side.p99.push(result.latency.p99)
      failures += result.errors + result.non2xx
    }
  }
  const [bareSide, floorSide, ours] = sides
  const rate = (side: Side) => side.requests / side.seconds
  // Requests per CPU second of the server process: what one core would
  // serve, whatever else the shared machine was running meanwhile.
  const perCpu = (side: Side) => side.cpu === undefined ? undefined : side.requests / side.cpu
  const oursPerCpu = perCpu(ours)
  const barePerCpu = perCpu(bareSide)
  const floorPerCpu = perCpu(floorSide)
  const ratio = oursPerCpu !== undefined && barePerCpu !== undefined
    ? oursPerCpu / barePerCpu
    : rate(ours) / rate(bareSide)
  const basis = oursPerCpu !== undefined ? "per CPU second" : "per wall second"
  const reproduce = "npm run bench -- serving"
  const scenario = "serving"
  const worst = (side: Side) => Math.max(...side.p99)
  const cpuFigures: ReadonlyArray<Figure> =
    oursPerCpu === undefined || barePerCpu === undefined || floorPerCpu === undefined
      ? []
      : [
        { scenario, name: "server GET access-token, per server CPU second", value: oursPerCpu, unit: "req", reproduce },
        {
          scenario,
          name: "bare node:http, same JSON, per server CPU second",
          value: barePerCpu,
          unit: "req",
          reproduce
        },
        {
          scenario,
          name: "Effect platform floor (one route, same JSON), per server CPU second",
          value: floorPerCpu,
          unit: "req",
          reproduce
        },
        {
          scenario,
          name: "Effect platform floor / bare node:http, per CPU second",
          value: floorPerCpu / barePerCpu,
          unit: "×",
          reproduce
        }
      ]
  return [
    ...cpuFigures,
    {
      scenario,
      name: `server / bare node:http, ${basis}`,
      value: ratio,
      unit: "×",
      goal: `≥ ${GOAL_RATIO}`,
      met: ratio >= GOAL_RATIO,
      reproduce
    },
    { scenario, name: "server GET access-token, wall clock", value: rate(ours), unit: "req/s", reproduce },
    { scenario, name: "bare node:http, wall clock", value: rate(bareSide), unit: "req/s", reproduce },
    { scenario, name: "Effect platform floor, wall clock", value: rate(floorSide), unit: "req/s", reproduce },
    { scenario, name: "server p99 (worst round)", value: worst(ours), unit: "ms", reproduce },
    { scenario, name: "bare node:http p99 (worst round)", value: worst(bareSide), unit: "ms", reproduce },
    { scenario, name: "Effect platform floor p99 (worst round)", value: worst(floorSide), unit: "ms", reproduce },
    {
      scenario,
      name: "errors and non-2xx answers",
      value: failures,
      unit: "",
      goal: "= 0",
      met: failures === 0,
      reproduce
    }
  ]
}))
