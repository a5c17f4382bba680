/**
 * The server of the 100,000-credential bench (`bench/credentials.ts`), in a
 * process of its own so its heap is measured alone: the token server with
 * one third-party platform (`credentials`, what `WECHAT_COMPONENTS` would
 * configure) and no app, fetching from the emulator at
 * `WECHAT_API_BASE_URL`, on the store `TOKEN_STORE` names. Its authorizers
 * are whatever that store holds (their refresh tokens admit them).
 *
 * Ready means the component token and `COUNT` authorizer access tokens are
 * held and valid. Prints a `FIGURE {json}` line as soon as each figure is
 * known, so the bench shows a figure even if a later step fails: seconds
 * to ready, then live heap before and after (full collections), fibers
 * alive, and how long `/readyz`, `/metrics` and a page of authorizers take
 * to answer. `HEAP_SNAPSHOT=path` writes a heap snapshot once ready.
 *
 * Run with `--expose-gc`.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schedule, Supervisor } from "effect"
import { writeHeapSnapshot } from "node:v8"
import * as Component from "../src/families/component/Component.js"
import * as ComponentConfig from "../src/families/component/ComponentConfig.js"
import * as WeComConfig from "../src/families/wecom/WeComConfig.js"
import * as UpstreamHttpClient from "../src/server/internal/upstreamHttpClient.js"
import * as NodeServer from "../src/server/NodeServer.js"
import * as StoreSpec from "../src/StoreSpec.js"
import * as TokenConfig from "../src/TokenConfig.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenLayer from "../src/TokenLayer.js"
import { COMPONENT, credentials } from "./credentialApps.js"
import { CLIENT_KEY } from "./Figure.js"

const count = Number(process.env["COUNT"])
const baseUrl = process.env["WECHAT_API_BASE_URL"]!
const storeSpec = process.env["TOKEN_STORE"] ?? "memory"

const gc = (globalThis as { gc?: () => void }).gc
const liveHeap = () => {
  // Twice: the first collection may leave work for finalizers.
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

const report = (name: string, value: unknown) => console.log(`FIGURE ${JSON.stringify({ name, value })}`)

// `/readyz` and `/metrics` are timed in full (every credential), as an ops key sees them.
const OPS_KEY = "bench-ops-key-0123456789abcdef0123456789"

const timed = (url: string, key: string) =>
  Effect.promise(async () => {
    const started = performance.now()
    const cpu = process.cpuUsage()
    const response = await fetch(url, { headers: { authorization: `Bearer ${key}` } })
    const body = await response.text()
    const used = process.cpuUsage(cpu)
    return {
      millis: performance.now() - started,
      // The whole process's CPU meanwhile (the answer, and whatever else ran): on a busy machine the wall clock waits for a core.
      cpuMillis: (used.user + used.system) / 1000,
      status: response.status,
      bytes: body.length
    }
  })

const program = Effect.gen(function*() {
  // From here on the process runs the server, not the module loader.
  const cpuBefore = process.cpuUsage()
  const before = liveHeap()
  const supervisor = yield* Supervisor.track
  const started = performance.now()
  const store = StoreSpec.layer(yield* StoreSpec.parse(storeSpec))
  const context = yield* Layer.build(
    NodeServer.layer({
      host: "127.0.0.1",
      port: 0,
      clientKeys: [Redacted.make(CLIENT_KEY)],
      opsKeys: [Redacted.make(OPS_KEY)]
    }).pipe(
      Layer.provideMerge(TokenLayer.layerFamilies({
        config: TokenConfig.layer({ apps: [], mode: "classic", apiBaseUrl: baseUrl }),
        wecom: WeComConfig.layer({ apps: [], apiBaseUrl: baseUrl }),
        components: ComponentConfig.layer({ components: [credentials], apiBaseUrl: baseUrl }),
        store,
        httpClient: UpstreamHttpClient.layer
      })),
      Layer.provideMerge(store)
    )
  ).pipe(Effect.supervised(supervisor))
  const engine = Context.get(context, TokenEngine)
  report("built", (performance.now() - started) / 1000)
  const cpuBuilt = process.cpuUsage(cpuBefore)
  report("cpuBuiltSeconds", (cpuBuilt.user + cpuBuilt.system) / 1e6)
  // Ready: the component token and every authorizer's access token held and valid.
  // Counted from the engine's columns every 250 ms (`countStatuses`, no
  // status objects), so the polling adds little to the CPU `cold` measures.
  yield* Effect.gen(function*() {
    const { counts, labelled } = yield* engine.countStatuses(0)
    const authorizers = counts.reduce(
      (sum, count) => count.kind === Component.authorizerToken ? sum + count.valid : sum,
      0
    )
    const component = labelled.some((status) =>
      status.valid && status.kind === Component.componentToken && status.appId === COMPONENT
    )
    if (!component || authorizers < count) return yield* Effect.fail(authorizers)
  }).pipe(Effect.retry(Schedule.spaced("250 millis")))
  report("readySeconds", (performance.now() - started) / 1000)
  // On a machine shared with other work, the CPU it took says more than the
  // wall clock: since the engine was asked for (cpuSeconds), and in all.
  const cpu = process.cpuUsage(cpuBefore)
  report("cpuSeconds", (cpu.user + cpu.system) / 1e6)
  const cpuAll = process.cpuUsage()
  report("readyCpuSeconds", (cpuAll.user + cpuAll.system) / 1e6)
  const after = liveHeap()
  report("heap", { before, after, rss: process.memoryUsage().rss })
  const snapshot = process.env["HEAP_SNAPSHOT"]
  if (snapshot !== undefined) writeHeapSnapshot(snapshot)
  report("fibers", (yield* supervisor.value).length)
  const address = Context.get(context, HttpServer.HttpServer).address
  const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  // The first answer of each warms up the JIT; the figure is the slower of the next two.
  const twice = (url: string, key: string) =>
    Effect.gen(function*() {
      yield* timed(url, key)
      const answers = [yield* timed(url, key), yield* timed(url, key)]
      return {
        ...answers[0]!,
        millis: Math.max(...answers.map((answer) => answer.millis)),
        cpuMillis: Math.max(...answers.map((answer) => answer.cpuMillis))
      }
    })
  report("readyz", yield* twice(`${base}/readyz`, OPS_KEY))
  report("metrics", yield* twice(`${base}/metrics`, OPS_KEY))
  report("authorizers", yield* twice(`${base}/v1/components/${COMPONENT}/authorizers?limit=100`, CLIENT_KEY))
})

Effect.runPromise(
  Effect.scoped(program).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
).then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
