/**
 * In-process: `AccessToken.get` of a warm engine inside an Effect program,
 * against the floor of reading a bare `Ref` in the same loop. Rounds
 * alternate between the two so that machine noise hits both alike.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { AccessToken } from "../src/AccessToken.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../src/TokenConfig.js"
import * as TokenLayer from "../src/TokenLayer.js"
import * as TokenStore from "../src/TokenStore.js"
import { APP, type Figure, SECRET } from "./Figure.js"

const OPS_PER_ROUND = 500_000
const ROUNDS = 5
const GOAL_OPS_PER_SECOND = 1_000_000

// Operations per second of this process's CPU time, `op` repeated in one
// fiber; the loop itself is the same for both contenders. CPU time, not wall
// time: on a shared 2-core machine other processes take the CPU away for
// whole time slices, which wall time would count against us.
const opsPerSecond = <A, E>(op: Effect.Effect<A, E>): Effect.Effect<number, E> =>
  Effect.gen(function*() {
    const started = process.cpuUsage()
    for (let i = 0; i < OPS_PER_ROUND; i++) yield* op
    const used = process.cpuUsage(started)
    return OPS_PER_ROUND / ((used.user + used.system) / 1e6)
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

export const run: Effect.Effect<ReadonlyArray<Figure>, unknown> = Effect.scoped(Effect.gen(function*() {
  const engine = TokenLayer.layer({
    config: TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], apiBaseUrl: "http://wechat.test" }),
    store: TokenStore.layerMemory,
    httpClient: Emulator.layerClient.pipe(Layer.provide(Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] })))
  })
  const tokens = Context.get(yield* Layer.build(engine), AccessToken)
  const first = yield* tokens.get(APP)
  const ref = yield* Ref.make(first)
  const get = tokens.get(APP)
  const read = Ref.get(ref)
  const gets: Array<number> = []
  const reads: Array<number> = []
  // One unmeasured round each warms the JIT.
  yield* opsPerSecond(read)
  yield* opsPerSecond(get)
  for (let round = 0; round < ROUNDS; round++) {
    reads.push(yield* opsPerSecond(read))
    gets.push(yield* opsPerSecond(get))
  }
  const reproduce = "npm run bench -- inProcess"
  return [
    {
      scenario: "in-process",
      name: "AccessToken.get, per CPU second (median of 5 rounds of 500,000)",
      value: median(gets),
      unit: "ops/s",
      goal: `≥ ${GOAL_OPS_PER_SECOND.toLocaleString("en")}`,
      met: median(gets) >= GOAL_OPS_PER_SECOND,
      reproduce
    },
    { scenario: "in-process", name: "bare Ref.get, same loop", value: median(reads), unit: "ops/s", reproduce },
    {
      scenario: "in-process",
      name: "AccessToken.get / Ref.get",
      value: median(gets) / median(reads),
      unit: "×",
      reproduce
    }
  ]
}))
