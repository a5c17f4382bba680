/**
 * The fast path's last-resort guard: a throw in it (a bug, a record no check
 * foresaw) must neither end the process nor go unseen. The request goes on
 * to the Effect app, and the failure is logged through the server's logger,
 * each distinct message once, at most `FastPath.FAILURE_REPORTS` a minute.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, Redacted, TestClock } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as ClientAuth from "../../src/server/ClientAuth.js"
import * as FastPath from "../../src/server/FastPath.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine, type TokenEngineShape } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { APP, auth, KEY, SECRET, send, serveUpstream } from "../support/serverStack.js"

const CLIENT_KEYS = [{ key: Redacted.make(KEY) }]
const PATH = `/v1/apps/${APP}/access-token`

// A real engine that holds APP's token, whose `peek` (the fast path's one
// call into it) throws what `fault` gives, as a bug in the fast path would.
const throwingEngine = (fault: () => Error) =>
  Effect.gen(function*() {
    const upstream = yield* serveUpstream()
    const store = TokenStore.layerMemory
    const context = yield* Layer.build(
      TokenLayer.layer({
        config: TokenConfig.layer({
          apps: [TokenConfig.app(APP, SECRET)],
          mode: "classic",
          apiBaseUrl: upstream.url
        }),
        store,
        httpClient: FetchHttpClient.layer
      }).pipe(Layer.provideMerge(store))
    )
    const engine = Context.get(context, TokenEngine)
    const throwing: TokenEngineShape = {
      ...engine,
      peek: () => {
        throw fault()
      }
    }
    return Context.add(context, TokenEngine, throwing)
  })

describe("the fast path's last-resort guard", () => {
  it.scopedLive("a throw reaches the server's log once per message, and the Effect app answers every request", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
        })
      )
      let thrown = 0
      const context = yield* throwingEngine(() =>
        // Two distinct failures, each thrown many times.
        new RangeError(thrown++ % 2 === 0 ? "Invalid time value" : "Maximum call stack size exceeded")
      )
      const server = yield* Layer.build(
        NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: CLIENT_KEYS, fastPath: true }).pipe(
          Layer.provide(Layer.succeedContext(context))
        )
      ).pipe(Effect.provide(logger))
      const address = Context.get(server, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      for (let i = 0; i < 20; i++) {
        const answer = yield* send(address.port, { path: PATH, headers: auth() })
        expect(answer.status).toBe(200)
        expect(JSON.parse(answer.text)).toMatchObject({ access_token: expect.any(String) })
      }
      expect(thrown).toBe(20)
      expect(lines.filter((line) => line.includes("fast path failed"))).toEqual([
        "ERROR fast path failed, answered by the app instead: RangeError: Invalid time value",
        "ERROR fast path failed, answered by the app instead: RangeError: Maximum call stack size exceeded"
      ])
    }))

  it.scoped("a failure with a new message on every request is reported at most FAILURE_REPORTS a minute", () =>
    Effect.gen(function*() {
      const reported: Array<string> = []
      let thrown = 0
      const context = yield* throwingEngine(() => new Error(`failure ${thrown++}\n${"stack line\n".repeat(1_000)}`))
      const stub = createServer((_request, response) => response.writeHead(299).end())
      FastPath.install(
        stub,
        FastPath.make({
          engine: Context.get(context, TokenEngine),
          clock: yield* Effect.clock,
          auth: ClientAuth.check(CLIENT_KEYS),
          log: (message) => reported.push(message)
        })
      )
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          stub.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => stub.close())
      )
      const port = (stub.address() as AddressInfo).port
      const burst = (requests: number) =>
        Effect.forEach(Array.from({ length: requests }), () => send(port, { path: PATH, headers: auth() }))
      const answers = yield* burst(3 * FastPath.FAILURE_REPORTS)
      expect(answers.every((answer) => answer.status === 299)).toBe(true)
      expect(reported).toHaveLength(FastPath.FAILURE_REPORTS)
      // The first line of each message only: no stack trace in the log.
      expect(reported[0]).toBe("fast path failed, answered by the app instead: Error: failure 0")
      yield* TestClock.adjust(Duration.minutes(1))
      yield* burst(1)
      expect(reported).toHaveLength(FastPath.FAILURE_REPORTS + 1)
      expect(reported.at(-1)).toBe(
        `fast path failed, answered by the app instead: Error: failure ${3 * FastPath.FAILURE_REPORTS} (${
          2 * FastPath.FAILURE_REPORTS
        } failure(s) not reported before it: over the rate limit)`
      )
    }))
})
