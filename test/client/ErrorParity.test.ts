/**
 * The same failure, whether the tokens come from a local engine or from a
 * central server: each WeChat error class is provoked at the emulator, once
 * through `TokenLayer` and once through `RemoteTokenLayer` against a token
 * server over real loopback HTTP, and both must fail with the same `_tag`
 * and fields.
 */
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema } from "effect"
import { AccessToken, AccessTokenError } from "../../src/AccessToken.js"
import * as ApiError from "../../src/api/ApiError.js"
import * as RemoteTokenLayer from "../../src/client/RemoteTokenLayer.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { StoreError } from "../../src/TokenStore.js"
import {
  ForceRefreshBudgetExhausted,
  InvalidAppId,
  MissingInput,
  QuotaExceeded,
  UnknownApp,
  UpstreamUnavailable
} from "../../src/WeChatError.js"
import { APP, KEY, SECRET, serveTokenServer, serveUpstream, THIRD } from "../support/serverStack.js"

const local = (url: string) =>
  TokenLayer.layer({
    config: TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], mode: "classic", apiBaseUrl: url }),
    store: TokenStore.layerMemory,
    httpClient: FetchHttpClient.layer
  })

const remote = (base: string) =>
  RemoteTokenLayer.layer({ baseUrl: base, clientKey: Redacted.make(KEY) }).pipe(Layer.provide(FetchHttpClient.layer))

const failureOf = (appId: string) => Effect.flip(Effect.flatMap(AccessToken, (tokens) => tokens.get(appId)))

// The failure as it crosses the wire: its tag and every field, without the
// request id WeChat appends to each errmsg (two engines, two requests).
const encoded = (failure: AccessTokenError) =>
  Object.fromEntries(
    Object.entries(Schema.encodeSync(AccessTokenError)(failure)).map(([name, value]) => [
      name,
      typeof value === "string" ? value.replace(/ rid: \S+/, "") : value
    ])
  )

/** The failures of `appId` from a local engine and from a server, both over an emulator faulted by `fault`. */
const bothWays = (appId: string, fault: Emulator.Fault | undefined) =>
  Effect.gen(function*() {
    const upstream = yield* serveUpstream({
      faults: fault === undefined ? [] : [{ fault, endpoints: ["token"], appId: APP }]
    })
    const server = yield* serveTokenServer({ upstream })
    const locally = yield* Effect.provide(failureOf(appId), local(upstream.url))
    const remotely = yield* Effect.provide(failureOf(appId), remote(server.base))
    return { locally, remotely }
  }).pipe(Effect.scoped)

const cases: ReadonlyArray<readonly [string, Emulator.Fault | undefined, string]> = [
  ["an app no one configured", undefined, "UnknownApp"],
  ["WeChat busy (-1)", Emulator.Fault.Busy(), "UpstreamUnavailable"],
  ["an HTTP 502 from a gateway", Emulator.Fault.HttpStatus(502), "UpstreamUnavailable"],
  ["40014 on the token endpoint", Emulator.Fault.Errcode(40014, "invalid access_token"), "InvalidCredential"],
  ["40013", Emulator.Fault.Errcode(40013, "invalid appid"), "InvalidAppId"],
  ["40125", Emulator.Fault.Errcode(40125, "invalid appsecret"), "InvalidAppSecret"],
  [
    "40164",
    Emulator.Fault.Errcode(40164, "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist"),
    "IpNotWhitelisted"
  ],
  ["45009", Emulator.Fault.Errcode(45009, "reach max api daily quota limit"), "QuotaExceeded"],
  ["45011", Emulator.Fault.Errcode(45011, "api minute-quota reach limit"), "QuotaExceeded"],
  ["89503", Emulator.Fault.Errcode(89503, "risky call, admin must confirm"), "AdminConfirmationRequired"],
  ["40002", Emulator.Fault.Errcode(40002, "invalid grant_type"), "WeChatApiError"]
]

describe("errors: the same failure locally and through the central server", () => {
  for (const [what, fault, tag] of cases) {
    it.live(`${what} → ${tag}, with the same fields both ways`, () =>
      Effect.gen(function*() {
        const { locally, remotely } = yield* bothWays(fault === undefined ? THIRD : APP, fault)
        expect(locally._tag).toBe(tag)
        expect(encoded(remotely)).toEqual(encoded(locally))
        // A value of the same class, not a look-alike: `catchTag` and `instanceof` work on it.
        expect(remotely.constructor).toBe(locally.constructor)
        expect(JSON.stringify(encoded(remotely))).not.toContain(SECRET)
      }), 30_000)
  }

  // What no emulator fault provokes through `AccessToken.get` (a store down,
  // a budget spent, a pushed input missing) still crosses the wire intact.
  it("every class round-trips through a 503 body", () => {
    const failures: ReadonlyArray<AccessTokenError> = [
      new StoreError({ operation: "set", detail: "connection refused" }),
      new ForceRefreshBudgetExhausted({ appId: APP, nextAllowedAt: 1_700_000_000_000 }),
      new MissingInput({ appId: APP, kind: "component_verify_ticket", detail: "not pushed yet" }),
      new UpstreamUnavailable({ reason: "timeout", detail: "token: no answer" }),
      new QuotaExceeded({ errcode: 45009, scope: "day", errmsg: "daily" }),
      new InvalidAppId({ appId: APP, errmsg: "invalid appid" }),
      new UnknownApp({ appId: THIRD })
    ]
    const body = Schema.encodeSync(ApiError.TokenUnavailable)
    const decode = Schema.decodeUnknownSync(ApiError.TokenUnavailable)
    for (const failure of failures) {
      const wire = JSON.parse(JSON.stringify(body(ApiError.tokenUnavailable(failure))))
      expect(wire.error.failure._tag).toBe(failure._tag)
      expect(decode(wire).error.failure).toEqual(failure)
    }
  })

  it("a failure of a newer server still decodes: its code and message are kept", () => {
    const decoded = Schema.decodeUnknownSync(ApiError.TokenUnavailable)({
      error: { code: "future", message: "a newer server's failure", failure: { _tag: "NotYetInvented", x: 1 } }
    })
    expect(decoded.error).toMatchObject({ code: "future", message: "a newer server's failure" })
  })
})
