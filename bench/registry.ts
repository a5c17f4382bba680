/**
 * How fast a change made through the admin API reaches the other replicas:
 * 3 replicas of the server as real processes (`src/bin.ts serve`) on one
 * redis-server, the emulator in the bench process. Each change is made on
 * one replica in turn, alternately adding an app (`PUT`, its secret tried
 * against the emulator first) and removing it (`DELETE`); its propagation
 * time runs from the origin's answer until both other replicas answer the
 * app's token route accordingly (200 once added, 404 once removed), each
 * polled back to back, so a figure is late by at most one poll's round trip.
 */
import { Duration, Effect } from "effect"
import { ADMIN_KEY, adminEnv, call, putApp, tokenOf } from "../test/support/adminReplicas.js"
import * as RedisServer from "../test/support/redisServer.js"
import { type Replica, startReplicas, upstreams } from "../test/support/replicas.js"
import { appIdOf, type Figure } from "./Figure.js"

const REPLICAS = 3
const APP = appIdOf(0xa1)
const SECRET = "bench-registry-secret-0123456789"
// The promise: a change on one replica is served by every other within 2 s.
const GOAL_MS = 2_000

interface Plan {
  readonly changes: number
  /** Whether the 2 s goal is judged: the smoke run in CI judges counts only, never speed. */
  readonly judged: boolean
  readonly reproduce: string
}

const FULL: Plan = { changes: 100, judged: true, reproduce: "npm run bench -- registry" }
const SMOKE: Plan = { changes: 10, judged: false, reproduce: "npm run bench:smoke -- registry" }

// Polls `replica` until its token route answers `status`.
const reflects = (replica: Replica, status: number): Effect.Effect<void> =>
  tokenOf(replica, APP).pipe(Effect.repeat({ until: (answer) => answer.status === status }), Effect.asVoid)

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const upstream = yield* upstreams(REPLICAS)
    yield* upstream.emulator.registerApp({ appId: APP, secret: SECRET })
    const replicas = yield* startReplicas(
      REPLICAS,
      (index) => adminEnv({ upstream: upstream.urlOf(index), store: redis.url })
    )
    const times: Array<number> = []
    for (let change = 0; change < plan.changes; change++) {
      const origin = replicas[change % REPLICAS]!
      const adding = change % 2 === 0
      const answer = adding
        ? yield* putApp(origin, APP, SECRET)
        : yield* call(origin, "DELETE", `/v1/admin/apps/${APP}`, ADMIN_KEY)
      if (answer.status !== (adding ? 200 : 204)) {
        return yield* Effect.dieMessage(`change ${change} refused: ${answer.status} ${answer.text}`)
      }
      const [elapsed] = yield* Effect.timed(
        Effect.forEach(replicas.filter((replica) => replica !== origin), (replica) =>
          reflects(replica, adding ? 200 : 404), { concurrency: "unbounded", discard: true })
      )
      times.push(Duration.toMillis(elapsed))
    }
    const sorted = [...times].sort((a, b) =>
      a - b
    )
    const median = percentile(sorted, 0.5)
    const worst = sorted[sorted.length - 1]!
    const who = `${plan.changes} admin changes over ${REPLICAS} replica processes on one Redis`
    return [
      {
        scenario: "registry",
        name: `${who}: propagation to the other two, median`,
        value: median,
        unit: "ms",
        reproduce: plan.reproduce
      },
      {
        scenario: "registry",
        name: `${who}: propagation to the other two, worst`,
        value: worst,
        unit: "ms",
        ...(plan.judged ? { goal: `≤ ${GOAL_MS}`, met: worst <= GOAL_MS } : {}),
        reproduce: plan.reproduce
      }
    ]
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
