import { HttpClient, HttpClientResponse, HttpServer } from "@effect/platform"
import { Context, Duration, Effect, Layer, Redacted, Schedule } from "effect"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenServer from "../../src/server/TokenServer.js"

export const APP = "wx0123456789abcdef"
export const OTHER = "wxfedcba9876543210"
export const SECRET = "s3cr3t-app-secret-never-logged"
export const KEY = "client-key-0123456789abcdef"

// A minimal upstream standing in for the emulator: counts token fetches, can fail.
export const makeUpstream = () => {
  const state = { tokenFetches: 0, ticketFetches: 0, faulted: false, seq: 0 }
  const layer = Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.gen(function*() {
        yield* Effect.sleep(Duration.millis(20))
        const url = new URL(request.url)
        let body: unknown
        if (state.faulted) body = { errcode: -1, errmsg: "system error" }
        else if (url.pathname.endsWith("/getticket")) {
          state.ticketFetches++
          body = { errcode: 0, errmsg: "ok", ticket: `ticket-${++state.seq}-${"t".repeat(80)}`, expires_in: 7200 }
        } else {
          state.tokenFetches++
          body = { access_token: `token-${++state.seq}-${"x".repeat(500)}`, expires_in: 7200 }
        }
        return HttpClientResponse.fromWeb(request, new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } }))
      })
    )
  )
  return { state, layer }
}

export const startServer = (options: {
  readonly upstream: Layer.Layer<HttpClient.HttpClient>
  readonly mode?: TokenMode
  readonly apps?: ReadonlyArray<string>
}) =>
  Effect.gen(function*() {
    const store = TokenStore.layerMemory
    const context = yield* Layer.build(
      TokenServer.layerNode({ host: "127.0.0.1", port: 0, clientKeys: [Redacted.make(KEY)] }).pipe(
        Layer.provide(TokenLayer.make({
          config: TokenConfig.layerWith({
            apps: (options.apps ?? [APP]).map((appId) => TokenConfig.app(appId, SECRET)),
            mode: options.mode ?? "classic",
            apiBaseUrl: "http://wechat.test"
          }),
          store,
          httpClient: options.upstream
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
    let json: any // the body of any route, asserted field by field in the tests
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
