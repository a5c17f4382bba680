/**
 * The 100,000-credential server for `bench/credentials.ts`, in a process of
 * its own so its heap is measured alone: the engine and the HTTP server,
 * built in code (the apps do not fit in an environment variable), fetching
 * from the emulator at `WECHAT_API_BASE_URL`, on the store `TOKEN_STORE`
 * names. Prints one `RESULT {json}` line: seconds to ready (every credential
 * valid), live heap before and after after full collections, fibers alive,
 * and how long `/readyz` and `/metrics` take to answer.
 *
 * Run with `--expose-gc`.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, Schedule, Supervisor } from "effect"
import { writeHeapSnapshot } from "node:v8"
import * as TokenServer from "../src/server/TokenServer.js"
import * as StoreSpec from "../src/StoreSpec.js"
import * as TokenConfig from "../src/TokenConfig.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as TokenLayer from "../src/TokenLayer.js"
import { credentialApps } from "./credentialApps.js"
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

const timed = (url: string) =>
  Effect.promise(async () => {
    const started = performance.now()
    const response = await fetch(url)
    const body = await response.text()
    return { millis: performance.now() - started, status: response.status, bytes: body.length }
  })

const program = Effect.gen(function*() {
  const apps = credentialApps(count)
  const before = liveHeap()
  const supervisor = yield* Supervisor.track
  const started = performance.now()
  const store = StoreSpec.layer(yield* StoreSpec.parse(storeSpec))
  const context = yield* Layer.build(
    TokenServer.layerNode({ host: "127.0.0.1", port: 0, clientKeys: [Redacted.make(CLIENT_KEY)] }).pipe(
      Layer.provideMerge(TokenLayer.make({
        config: TokenConfig.layerWith({
          apps: apps.map((app) => TokenConfig.app(app.appId, app.secret)),
          mode: "classic",
          apiBaseUrl: baseUrl
        }),
        store,
        httpClient: FetchHttpClient.layer
      })),
      Layer.provideMerge(store)
    )
  ).pipe(Effect.supervised(supervisor))
  const engine = Context.get(context, TokenEngine)
  // Ready: every credential held and valid.
  yield* Effect.suspend(() => {
    const now = Date.now()
    const missing = apps.findIndex((app) => engine.peek(app.appId, now) === undefined)
    return missing === -1 ? Effect.void : Effect.fail(missing)
  }).pipe(Effect.retry(Schedule.spaced("200 millis")))
  const readySeconds = (performance.now() - started) / 1000
  const after = liveHeap()
  const snapshot = process.env["HEAP_SNAPSHOT"]
  if (snapshot !== undefined) writeHeapSnapshot(snapshot)
  const fibers = (yield* supervisor.value).length
  const address = Context.get(context, HttpServer.HttpServer).address
  const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : ""
  // The first answers warm up the JIT; the figure is the slower of the next two.
  yield* timed(`${base}/readyz`)
  yield* timed(`${base}/metrics`)
  const readyz = [yield* timed(`${base}/readyz`), yield* timed(`${base}/readyz`)]
  const metrics = [yield* timed(`${base}/metrics`), yield* timed(`${base}/metrics`)]
  const worst = (answers: ReadonlyArray<{ readonly millis: number }>) => Math.max(...answers.map((a) => a.millis))
  console.log(`RESULT ${
    JSON.stringify({
      readySeconds,
      heapBefore: before,
      heapAfter: after,
      fibers,
      readyzMillis: worst(readyz),
      readyzStatus: readyz[0]!.status,
      readyzBytes: readyz[0]!.bytes,
      metricsMillis: worst(metrics),
      metricsBytes: metrics[0]!.bytes,
      rss: process.memoryUsage().rss
    })
  }`)
})

Effect.runPromise(
  Effect.scoped(program).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))
).then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
