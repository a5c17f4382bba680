import { FetchHttpClient, HttpServer, type HttpServerError } from "@effect/platform"
import { Context, type Duration, Effect, Layer, Redacted, Schedule, type Scope } from "effect"
import * as TokenServer from "../../src/server/TokenServer.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"

export const APP = "wx0123456789abcdef"
export const OTHER = "wxfedcba9876543210"
export const SECRET = "s3cr3t-app-secret-never-logged"
export const KEY = "client-key-0123456789abcdef"

/** The emulator serving WeChat on loopback, and the counts the server tests read. */
export interface Upstream {
  readonly url: string
  readonly emulator: Emulator.WeChatEmulatorShape
  /** Token endpoint calls (classic and stable) for `APP`. */
  readonly tokenFetches: Effect.Effect<number>
  readonly ticketFetches: Effect.Effect<number>
  /** While on, every upstream call answers WeChat's "system busy". */
  readonly setFaulted: (faulted: boolean) => Effect.Effect<void>
}

export const startUpstream: Effect.Effect<Upstream, HttpServerError.ServeError, Scope.Scope> = Effect.map(
  Emulator.serve({ apps: [{ appId: APP, secret: SECRET }, { appId: OTHER, secret: SECRET }] }),
  ({ emulator, url }) => {
    const stats = emulator.appStats(APP)
    return {
      url,
      emulator,
      tokenFetches: Effect.map(stats, (app) => app.classicCalls + app.stableCalls),
      ticketFetches: Effect.map(stats, (app) => app.ticketCalls),
      setFaulted: (faulted) => faulted ? emulator.injectFault({ fault: Emulator.Fault.Busy() }) : emulator.clearFaults
    }
  }
)

export const startServer = (options: {
  readonly upstream: Upstream
  readonly mode?: TokenMode
  readonly apps?: ReadonlyArray<string>
  readonly maxBodyBytes?: number
  readonly requestTimeout?: Duration.DurationInput
}) =>
  Effect.gen(function*() {
    const store = TokenStore.layerMemory
    const context = yield* Layer.build(
      TokenServer.layerNode({
        host: "127.0.0.1",
        port: 0,
        clientKeys: [Redacted.make(KEY)],
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
        ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout })
      }).pipe(
        Layer.provide(TokenLayer.make({
          config: TokenConfig.layerWith({
            apps: (options.apps ?? [APP]).map((appId) => TokenConfig.app(appId, SECRET)),
            mode: options.mode ?? "classic",
            apiBaseUrl: options.upstream.url
          }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })

export const call = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    const text = await response.text()
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the body of any route, asserted field by field in the tests
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, text, json, headers: response.headers }
  })

// The engine fetches every app's token at start-up: tests that count fetches
// caused by requests wait for that first.
export const awaitReady = (base: string) =>
  call(`${base}/readyz`).pipe(
    Effect.flatMap((answer) => answer.status === 200 ? Effect.void : Effect.fail("not ready")),
    Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") }),
    Effect.orDie
  )

export const auth = (key: string = KEY) => ({ authorization: `Bearer ${key}` })
