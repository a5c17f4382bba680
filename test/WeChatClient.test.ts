import { FetchHttpClient, HttpClient, HttpServer, UrlParams } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Logger, LogLevel, Option, Redacted, Schema, TestClock } from "effect"
import { AccessToken } from "../src/AccessToken.js"
import * as RemoteTokenLayer from "../src/client/RemoteTokenLayer.js"
import * as NodeServer from "../src/server/NodeServer.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../src/Token.js"
import * as TokenConfig from "../src/TokenConfig.js"
import * as TokenLayer from "../src/TokenLayer.js"
import * as TokenStore from "../src/TokenStore.js"
import * as WeChatClient from "../src/WeChatClient.js"
import { APP, awaitReady, KEY, SECRET } from "./server/harness.js"
import { waitFor } from "./support/fixtures.js"

// "101.226.103.0/25" decoded into its parts: the caller's own schema, with a
// transformation, so the test sees that the client decodes with it.
const Cidr = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/)),
  Schema.Struct({ address: Schema.String, prefixLength: Schema.Int }),
  {
    strict: true,
    decode: (cidr) => {
      const [address = "", prefixLength = ""] = cidr.split("/")
      return { address, prefixLength: Number(prefixLength) }
    },
    encode: ({ address, prefixLength }) => `${address}/${prefixLength}`
  }
)
const CallbackIps = Schema.Struct({ ip_list: Schema.NonEmptyArray(Cidr) })
const getCallbackIp: WeChatClient.ApiRequest = { method: "GET", path: "/cgi-bin/getcallbackip" }

const callbackIps = Effect.flatMap(WeChatClient.WeChatClient, (client) => client.call(APP, getCallbackIp, CallbackIps))

const statsOf = (emulator: Emulator.WeChatEmulatorShape) => emulator.appStats(APP)

const delta = (before: Emulator.AppStats, after: Emulator.AppStats) => ({
  tokenFetches: after.classicCalls + after.stableCalls - before.classicCalls - before.stableCalls,
  tokensIssued: after.tokensIssued - before.tokensIssued,
  forceRefreshes: after.forceRefreshes - before.forceRefreshes,
  callbackIpCalls: after.callbackIpCalls - before.callbackIpCalls,
  deadTokenUses: after.deadTokenUses - before.deadTokenUses
})

// What one dead token costs: one token fetch, one replay of the call.
const ONE_REPLAY = { tokenFetches: 1, tokensIssued: 1, callbackIpCalls: 2, deadTokenUses: 1 }

// One call so a token is held, then WeChat answers `fault` to the next `times` calls; the counts before them.
const rejectAfterOneCall = (emulator: Emulator.WeChatEmulatorShape, fault: Emulator.Fault, times: number) =>
  Effect.gen(function*() {
    yield* callbackIps
    yield* emulator.injectFault({ fault, endpoints: ["getcallbackip"], times })
    return yield* statsOf(emulator)
  })

// The access tokens the client presented on its API calls, in order.
const recordingClient = (presented: Array<string>) =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(
      HttpClient.HttpClient,
      HttpClient.tapRequest((request) =>
        Effect.sync(() => {
          presented.push(Option.getOrElse(UrlParams.getFirst(request.urlParams, "access_token"), () => ""))
        })
      )
    )
  ).pipe(Layer.provide(Emulator.layerClient))

// The client over the local engine, both answered in-process by the emulator in context.
const inProcess = (presented: Array<string>, mode: TokenMode = "classic") =>
  WeChatClient.layer({ baseUrl: "http://wechat.test" }).pipe(
    Layer.provideMerge(TokenLayer.layer({
      config: TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], mode, apiBaseUrl: "http://wechat.test" }),
      store: TokenStore.layerMemory,
      httpClient: Emulator.layerClient
    })),
    Layer.provide(recordingClient(presented))
  )

const emulatorLayer = Emulator.layer({ apps: [{ appId: APP, secret: SECRET }] })

// Runs `body` with a fresh emulator, engine and client; the client's presented
// tokens are in `presented`. Built inside the test so TestClock drives it.
const withClient = <A, E>(
  body: (presented: ReadonlyArray<string>, emulator: Emulator.WeChatEmulatorShape) => Effect.Effect<
    A,
    E,
    WeChatClient.WeChatClient | AccessToken | Emulator.WeChatEmulator
  >,
  mode: TokenMode = "classic"
) =>
  Effect.suspend(() => {
    const presented: Array<string> = []
    return Effect.flatMap(Emulator.WeChatEmulator, (emulator) => body(presented, emulator)).pipe(
      Effect.provide(inProcess(presented, mode)),
      Effect.provide(emulatorLayer)
    )
  })

describe("WeChatClient.call", () => {
  it.scoped("injects the current token and decodes the body with the caller's schema", () =>
    withClient((presented, emulator) =>
      Effect.gen(function*() {
        const client = yield* WeChatClient.WeChatClient
        const body = yield* client.call(APP, { ...getCallbackIp, query: { lang: "zh_CN" } }, CallbackIps)
        expect(body.ip_list[0]).toEqual({ address: "101.226.103.0", prefixLength: 25 })
        const token = yield* Effect.flatMap(AccessToken, (tokens) => tokens.get(APP))
        expect(presented).toEqual([token.value])
        expect(yield* statsOf(emulator)).toMatchObject({ tokensIssued: 1, callbackIpCalls: 1, deadTokenUses: 0 })
      })
    ))

  it.scoped("a body the caller's schema rejects is a typed malformed-body error, not replayed", () =>
    withClient((_, emulator) =>
      Effect.gen(function*() {
        const client = yield* WeChatClient.WeChatClient
        const result = yield* Effect.flip(
          client.call(APP, getCallbackIp, Schema.Struct({ domain_list: Schema.Array(Schema.String) }))
        )
        expect(result).toMatchObject({ _tag: "UpstreamUnavailable", reason: "malformed-body" })
        expect((yield* statsOf(emulator)).callbackIpCalls).toBe(1)
      })
    ))

  it.scoped("a token killed mid-run: one token refresh, one replay with the new token", () =>
    withClient((presented, emulator) =>
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        yield* callbackIps
        const dead = presented[0]!
        yield* TestClock.adjust(Duration.minutes(30))
        // Another process fetched tokens long ago: WeChat rejects ours now.
        yield* emulator.killTokens(APP)
        const before = yield* statsOf(emulator)
        const body = yield* callbackIps
        const after = yield* statsOf(emulator)
        expect(body.ip_list.length).toBeGreaterThan(0)
        expect(delta(before, after)).toMatchObject(ONE_REPLAY)
        const fresh = (yield* tokens.get(APP)).value
        expect(fresh).not.toBe(dead)
        expect(presented).toEqual([dead, dead, fresh])
        expect(yield* emulator.isValidToken(fresh)).toBe(true)
      })
    ))

  it.scoped("100 concurrent calls that all hit the dead token: exactly one upstream token fetch", () =>
    withClient((presented, emulator) =>
      Effect.gen(function*() {
        const tokens = yield* AccessToken
        yield* callbackIps
        const dead = presented[0]!
        yield* emulator.killTokens(APP)
        // Every first attempt is held in flight until all 100 are there, so
        // all of them meet the dead token before anyone reports it.
        yield* emulator.injectFault({
          fault: Emulator.Fault.Slow(Duration.seconds(1)),
          endpoints: ["getcallbackip"],
          times: 100
        })
        const before = yield* statsOf(emulator)
        const herd = yield* Effect.fork(
          Effect.all(Array.from({ length: 100 }, () => callbackIps), { concurrency: "unbounded" })
        )
        yield* waitFor(Effect.map(statsOf(emulator), (stats) => stats.callbackIpCalls - before.callbackIpCalls === 100))
        yield* TestClock.adjust(Duration.seconds(1))
        const bodies = yield* Fiber.join(herd)
        const after = yield* statsOf(emulator)
        expect(bodies).toHaveLength(100)
        expect(delta(before, after)).toMatchObject({
          tokenFetches: 1,
          tokensIssued: 1,
          callbackIpCalls: 200,
          deadTokenUses: 100
        })
        const fresh = (yield* tokens.get(APP)).value
        expect(presented.slice(1, 101).every((token) => token === dead)).toBe(true)
        expect(presented.slice(101).every((token) => token === fresh)).toBe(true)
      })
    ))

  it.scoped("a second dead-token answer after the replay is the typed error: no loop", () =>
    withClient((presented, emulator) =>
      Effect.gen(function*() {
        const before = yield* rejectAfterOneCall(emulator, Emulator.Fault.Errcode(40014, "invalid access_token"), 2)
        const result = yield* Effect.flip(callbackIps)
        const after = yield* statsOf(emulator)
        expect(result).toMatchObject({ _tag: "InvalidCredential", errcode: 40014 })
        expect(delta(before, after)).toMatchObject({ tokenFetches: 1, callbackIpCalls: 2 })
        expect(presented[2]).not.toBe(presented[1])
        // The token fetched for the replay is kept: the next call needs no fetch.
        yield* callbackIps
        expect(delta(after, yield* statsOf(emulator))).toMatchObject({ tokenFetches: 0, callbackIpCalls: 1 })
      })
    ))

  it.scoped("other errcodes and transport failures are typed errors, neither replayed nor refreshing the token", () =>
    withClient((_, emulator) =>
      Effect.gen(function*() {
        yield* callbackIps
        const cases: ReadonlyArray<readonly [Emulator.Fault, Record<string, unknown>]> = [
          [Emulator.Fault.Errcode(45009, "reach max api daily quota limit"), { _tag: "QuotaExceeded", scope: "day" }],
          [Emulator.Fault.Errcode(45011, "api minute-quota reach limit"), { _tag: "QuotaExceeded", scope: "minute" }],
          [
            Emulator.Fault.Errcode(40164, "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist"),
            { _tag: "IpNotWhitelisted", ip: "203.0.113.7" }
          ],
          [Emulator.Fault.Errcode(89503, "risky ip, need admin confirm"), {
            _tag: "AdminConfirmationRequired",
            errcode: 89503
          }],
          [Emulator.Fault.Errcode(48001, "api unauthorized"), { _tag: "WeChatApiError", errcode: 48001 }],
          [Emulator.Fault.Busy(), { _tag: "UpstreamUnavailable", reason: "busy" }],
          [Emulator.Fault.HttpStatus(502), { _tag: "UpstreamUnavailable", reason: "http-status" }],
          [Emulator.Fault.ConnectionReset(), { _tag: "UpstreamUnavailable", reason: "network" }],
          [Emulator.Fault.Malformed("{\"ip_list\":[\"101.2"), { _tag: "UpstreamUnavailable", reason: "malformed-body" }]
        ]
        for (const [fault, expected] of cases) {
          yield* emulator.injectFault({ fault, endpoints: ["getcallbackip"], times: 1 })
          const before = yield* statsOf(emulator)
          const result = yield* Effect.flip(callbackIps)
          expect(result).toMatchObject(expected)
          expect(delta(before, yield* statsOf(emulator))).toMatchObject({ tokenFetches: 0, callbackIpCalls: 1 })
        }
      })
    ))

  it.scoped("an app that is not configured is UnknownApp, and nothing is sent", () =>
    withClient((presented) =>
      Effect.gen(function*() {
        const client = yield* WeChatClient.WeChatClient
        const result = yield* Effect.flip(client.call("wxffffffffffffffff", getCallbackIp, CallbackIps))
        expect(result._tag).toBe("UnknownApp")
        expect(presented).toEqual([])
      })
    ))

  describe("stable mode", () => {
    it.scoped("a killed stable token is replaced by a normal stable fetch: no force_refresh spent", () =>
      withClient((presented, emulator) =>
        Effect.gen(function*() {
          yield* callbackIps
          yield* emulator.killTokens(APP)
          const before = yield* statsOf(emulator)
          yield* callbackIps
          expect(delta(before, yield* statsOf(emulator))).toMatchObject({
            tokenFetches: 1,
            forceRefreshes: 0,
            callbackIpCalls: 2,
            deadTokenUses: 1
          })
          expect(presented[2]).not.toBe(presented[1])
        }), "stable"))

    it.scoped("a live stable token WeChat still rejects is replaced with one force_refresh", () =>
      withClient((presented, emulator) =>
        Effect.gen(function*() {
          const before = yield* rejectAfterOneCall(
            emulator,
            Emulator.Fault.Errcode(40001, "invalid credential, access_token is invalid or not latest"),
            1
          )
          yield* callbackIps
          // A normal stable fetch hands back the same token; only a forced one replaces it.
          expect(delta(before, yield* statsOf(emulator))).toMatchObject({
            tokenFetches: 2,
            forceRefreshes: 1,
            callbackIpCalls: 2
          })
          expect(presented[2]).not.toBe(presented[1])
          expect(yield* emulator.isValidToken(presented[2]!)).toBe(true)
        }), "stable"))
  })
})

describe("WeChatClient.call through a central server (RemoteTokenLayer)", () => {
  // Real loopback HTTP all the way: the emulator served on a port, the central
  // token server fetching from it, the business side asking that server for
  // tokens and calling the emulator's API with them.
  const setup = Effect.gen(function*() {
    const wechat = yield* Emulator.serve({ apps: [{ appId: APP, secret: SECRET }] })
    const store = TokenStore.layerMemory
    const server = yield* Layer.build(
      NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: [Redacted.make(KEY)] }).pipe(
        Layer.provide(TokenLayer.layer({
          config: TokenConfig.layer({
            apps: [TokenConfig.app(APP, SECRET)],
            mode: "classic",
            apiBaseUrl: wechat.url
          }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    )
    const address = Context.get(server, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    const base = `http://127.0.0.1:${address.port}`
    yield* awaitReady(base)
    const business = yield* Layer.build(
      WeChatClient.layer({ baseUrl: wechat.url }).pipe(
        Layer.provideMerge(RemoteTokenLayer.layer({ baseUrl: base, clientKey: Redacted.make(KEY) })),
        Layer.provide(FetchHttpClient.layer)
      )
    )
    return {
      emulator: wechat.emulator,
      client: Context.get(business, WeChatClient.WeChatClient),
      tokens: Context.get(business, AccessToken)
    }
  })

  // Real time runs the default logger: keep the per-call replay notes out of the test output.
  const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)

  it.live("a killed token: one upstream fetch by the server, one replay with the new token", () =>
    Effect.gen(function*() {
      const { client, emulator, tokens } = yield* setup
      const first = yield* client.call(APP, getCallbackIp, CallbackIps)
      expect(first.ip_list.length).toBeGreaterThan(0)
      const dead = (yield* tokens.get(APP)).value
      yield* emulator.killTokens(APP)
      const before = yield* statsOf(emulator)
      yield* client.call(APP, getCallbackIp, CallbackIps)
      const after = yield* statsOf(emulator)
      expect(delta(before, after)).toMatchObject(ONE_REPLAY)
      const fresh = (yield* tokens.get(APP)).value
      expect(fresh).not.toBe(dead)
      expect(yield* emulator.isValidToken(fresh)).toBe(true)
    }).pipe(Effect.scoped, quiet))

  it.live("50 concurrent calls on a killed token: every call succeeds, the server fetches once", () =>
    Effect.gen(function*() {
      const { client, emulator } = yield* setup
      yield* client.call(APP, getCallbackIp, CallbackIps)
      yield* emulator.killTokens(APP)
      const before = yield* statsOf(emulator)
      const bodies = yield* Effect.all(Array.from({ length: 50 }, () => client.call(APP, getCallbackIp, CallbackIps)), {
        concurrency: "unbounded"
      })
      const after = delta(before, yield* statsOf(emulator))
      expect(bodies).toHaveLength(50)
      expect(after.tokenFetches).toBe(1)
      // Real sockets decide how many met the dead token; each of those was replayed once.
      expect(after.deadTokenUses).toBeGreaterThanOrEqual(1)
      expect(after.callbackIpCalls).toBe(50 + after.deadTokenUses)
    }).pipe(Effect.scoped, quiet))
})
