import { FetchHttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, TestClock } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import { AccessToken } from "../../src/AccessToken.js"
import * as Backoff from "../../src/Backoff.js"
import * as WeChatApi from "../../src/families/officialAccount/WeChatApi.js"
import * as Upstream from "../../src/internal/upstream.js"
import * as FastPath from "../../src/server/FastPath.js"
import * as UpstreamHttpClient from "../../src/server/internal/upstreamHttpClient.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as Harness from "../support/engine.js"
import { APP, engineLayer, statsOf, withEngine } from "../support/engine.js"

const HOUR = 3_600_000
const TokenBody = WeChatApi.decodeBody(Upstream.TokenBody)
const decode = (body: unknown) => Effect.either(TokenBody(body, { appId: APP, site: "token-endpoint" }))

describe("a hostile upstream", () => {
  it.effect("expires_in is a whole number of seconds: refused below 10 s, clamped to a day above", () =>
    Effect.gen(function*() {
      for (const expiresIn of [1, 0.001, 9, 7200.5]) {
        const refused = yield* decode({ access_token: "T", expires_in: expiresIn })
        expect(Either.isLeft(refused) && refused.left._tag).toBe("UpstreamUnavailable")
      }
      for (const [expiresIn, planned] of [[7200, 7200], [1e12, 86_400], [1e13, 86_400], [1e308, 86_400]]) {
        const decoded = yield* decode({ access_token: "T", expires_in: expiresIn })
        expect(Either.getOrThrow(decoded).expires_in).toBe(planned)
      }
    }))

  it.effect("a token longer than 512 characters or with spaces is refused; an errmsg is cut to 200 characters", () =>
    Effect.gen(function*() {
      for (const token of ["x".repeat(513), "x".repeat(10_240), "a b", ""]) {
        const refused = yield* decode({ access_token: token, expires_in: 7200 })
        expect(Either.isLeft(refused) && refused.left._tag).toBe("UpstreamUnavailable")
      }
      expect(Either.isRight(yield* decode({ access_token: "x".repeat(512), expires_in: 7200 }))).toBe(true)
      const failed = yield* decode({ errcode: 40013, errmsg: "e".repeat(5_000_000) })
      const error = Either.flip(failed).pipe(Either.getOrThrow)
      expect(error.message.length).toBeLessThan(400)
      expect(JSON.stringify(error).length).toBeLessThan(400)
    }))

  it("the fast path's lifetime is total: absurd expiry times never throw", () => {
    for (const expiresAt of [1e16, 1e13 * 1000, -1e16, Number.NaN, Number.POSITIVE_INFINITY]) {
      const lifetime = FastPath.lifetime({ value: "T", expiresAt }, 1_000)
      expect(lifetime.expires_in).toBeGreaterThanOrEqual(0)
      expect(typeof lifetime.expires_at).toBe("string")
    }
  })

  describe("an hour of callers every second against an upstream that never gives a usable token", () => {
    const faults: ReadonlyArray<readonly [string, Emulator.Fault, number]> = [
      ["HTTP 500", Emulator.Fault.HttpStatus(500), Backoff.maxFailingFetches(HOUR)],
      ["connection refused", Emulator.Fault.ConnectionRefused(), Backoff.maxFailingFetches(HOUR)],
      [
        "expires_in 0.001",
        Emulator.Fault.Malformed("{\"access_token\":\"T\",\"expires_in\":0.001}"),
        Backoff.maxFailingFetches(HOUR)
      ],
      [
        "expires_in 1",
        Emulator.Fault.Malformed("{\"access_token\":\"T\",\"expires_in\":1}"),
        Backoff.maxFailingFetches(HOUR)
      ]
    ]
    for (const [name, fault, bound] of faults) {
      it.scoped(`${name}: at most ${bound} token requests`, () =>
        withEngine(
          engineLayer(),
          Effect.gen(function*() {
            const emulator = yield* Emulator.WeChatEmulator
            yield* emulator.injectFault({ fault, endpoints: ["token"] })
            const tokens = yield* AccessToken
            for (let second = 0; second < 3_600; second++) {
              yield* Effect.either(tokens.get(APP))
              yield* TestClock.adjust(Duration.seconds(1))
            }
            const requests = (yield* statsOf()).classicCalls
            expect(requests).toBeGreaterThan(0)
            expect(requests).toBeLessThanOrEqual(bound)
          })
        ).pipe(Effect.provide(Harness.emulatorLayer())), 120_000)
    }
  })
})

describe("a redirect from the token endpoint", () => {
  // Two loopback servers: WeChat's host answers 301 to another host, which
  // counts what reaches it. Following the redirect would hand that host the
  // classic `secret=` in the query string.
  const listen = (handler: Http.RequestListener) =>
    Effect.acquireRelease(
      Effect.async<Http.Server>((resume) => {
        const server = Http.createServer(handler)
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        })
    ).pipe(Effect.map((server) => ({ server, url: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}` })))

  for (
    const [name, httpClient] of [
      ["fetch", FetchHttpClient.layer],
      ["node:http", NodeHttpClient.layer],
      ["the server's client", UpstreamHttpClient.layer]
    ] as const
  ) {
    it.scopedLive(`${name}: a 301 is a typed error naming the status, and the other host receives nothing`, () =>
      Effect.gen(function*() {
        const elsewhere: Array<string> = []
        const other = yield* listen((request, response) => {
          elsewhere.push(request.url ?? "")
          response.end("{\"access_token\":\"FROM_ELSEWHERE\",\"expires_in\":7200}")
        })
        const wechat = yield* listen((request, response) => {
          response.writeHead(301, { location: `${other.url}${request.url ?? "/"}` })
          response.end()
        })
        const engine = yield* Layer.build(TokenLayer.layer({
          config: TokenConfig.layer({
            apps: [TokenConfig.app(APP, "redirect-test-secret")],
            mode: "classic",
            apiBaseUrl: wechat.url
          }),
          store: TokenStore.layerMemory,
          httpClient
        }))
        const tokens = Context.get(engine, AccessToken)
        const failed = yield* Effect.flip(tokens.get(APP))
        expect(String(failed.message)).toContain("301")
        expect(elsewhere).toEqual([])
      }))
  }
})
