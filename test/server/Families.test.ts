/**
 * Adding a family to the server is its folder plus one line in
 * `server/Families`: a family defined in this file alone (its route group,
 * its handlers over its own library service, its proxy target) is served
 * over loopback next to the registered ones, with no edit to the engine,
 * the Node edge or the server. Its line here is the `Families` list the
 * test provides in place of `Families.registered` plus it.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { createServer } from "node:http"
import type { Credential } from "../../src/AccessToken.js"
import { NotFound, TokenUnavailable } from "../../src/api/ApiError.js"
import { ClientAuth } from "../../src/api/ClientAuth.js"
import * as ProxyApi from "../../src/api/ProxyApi.js"
import { AccessTokenResponse, TokenServerApi } from "../../src/api/TokenServerApi.js"
import * as FamilyRoutes from "../../src/FamilyRoutes.js"
import { answer } from "../../src/internal/credentialAnswer.js"
import * as ProxyTarget from "../../src/ProxyTarget.js"
import * as Families from "../../src/server/Families.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import * as Proxy from "../../src/server/Proxy.js"
import * as Routes from "../../src/server/Routes.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { UnknownApp } from "../../src/WeChatError.js"
import { COMPONENT, MERCHANT } from "../support/fixtures.js"
import { APP, auth, call, KEY } from "../support/serverStack.js"

// The family's folder, as it would be written in src/families/vendor/.

const VENDOR = "vendor-1"
const HOUR = 3_600_000

// Its library service: the current token of a vendor account, and compare-and-refresh.
interface VendorToken {
  readonly known: (vendorId: string) => boolean
  readonly get: (vendorId: string) => Effect.Effect<Credential, UnknownApp>
  readonly refresh: (vendorId: string, stale: string) => Effect.Effect<Credential, UnknownApp>
  readonly refreshes: () => number
}

const makeVendorToken = (): VendorToken => {
  let current: Credential = { value: "vendor-token-1", expiresAt: Date.now() + HOUR }
  let refreshes = 0
  const owned = (vendorId: string) =>
    vendorId === VENDOR ? Effect.succeed(current) : Effect.fail(new UnknownApp({ appId: vendorId }))
  return {
    known: (vendorId) => vendorId === VENDOR,
    get: owned,
    refresh: (vendorId, stale) =>
      Effect.map(owned(vendorId), (held) => {
        if (held.value !== stale) return held
        refreshes += 1
        current = { value: `vendor-token-${refreshes + 1}`, expiresAt: Date.now() + HOUR }
        return current
      }),
    refreshes: () => refreshes
  }
}

// Its route group: the token under its owner's prefix, behind the client key.
const VendorPath = Schema.Struct({ vendorId: Schema.String })
class VendorGroup extends HttpApiGroup.make("vendor")
  .add(
    HttpApiEndpoint.get("accessToken", "/v1/vendors/:vendorId/access-token")
      .setPath(VendorPath)
      .addSuccess(AccessTokenResponse)
  )
  .addError(NotFound)
  .addError(TokenUnavailable)
  .middleware(ClientAuth)
{}

// Its contract: the server's API with the group added (a real family adds its group to `TokenServerApi`).
const VendorApi = TokenServerApi.add(VendorGroup)

// Its routes, over its service (a real family's comes from the server's context, as `WeComToken` does).
const vendorRoutes = (tokens: VendorToken) =>
  // `never`: everything it needs is in hand (the client-key check aside, which the server provides).
  FamilyRoutes.make<never>({
    name: "vendor",
    scopeOf: (params) => params["vendorId"],
    handlers: HttpApiBuilder.group(VendorApi, "vendor", (handlers) =>
      handlers.handle("accessToken", ({ path }) =>
        answer(tokens.get(path.vendorId), (value) => ({ access_token: value })))),
    proxy: (upstreams) =>
      Effect.succeed(ProxyTarget.make({
        group: VendorGroup,
        ownerOf: (params) =>
          params["vendorId"] ?? "",
        known: tokens.known,
        baseUrl: upstreams.wechat,
        token: tokens.get,
        replace: tokens.refresh
      }))
  })

// The vendor's API: answers which token it was called with (its generation:
// the proxy masks tokens in answers), and refuses
// the first token as expired (42001) so the proxy's replay is seen.
const serveVendor = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
    const server = createServer((request, response) => {
      const token = new URL(request.url ?? "/", "http://vendor").searchParams.get("access_token")
      const body = token === "vendor-token-1"
        ? { errcode: 42001, errmsg: "access_token expired" }
        : { errcode: 0, path: request.url?.split("?")[0], generation: token?.replace("vendor-token-", "") }
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, close: () => server.close() }))
    })
  }),
  (vendor) => Effect.sync(vendor.close)
)

const PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

// The server as users run it, with the vendor family registered beside the others.
const serveWithVendor = Effect.gen(function*() {
  const vendor = yield* serveVendor
  const tokens = makeVendorToken()
  const context = yield* Layer.build(
    NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: [Redacted.make(KEY)] }).pipe(
      Layer.provide(Proxy.layer({
        wechatBaseUrl: vendor.url,
        wecomBaseUrl: vendor.url,
        // The route table with the family's proxy route (a real family declares it in `ProxyApi`).
        routes: Routes.make(VendorApi, [
          ...ProxyApi.ROUTES,
          { pattern: ProxyTarget.patternOf(VendorGroup), methods: PROXY_METHODS }
        ])
      })),
      Layer.provide(Layer.succeed(Families.Families, [...Families.registered, vendorRoutes(tokens)])),
      Layer.provideMerge(TokenLayer.layer({
        config: TokenConfig.layer({ apps: [], mode: "classic", apiBaseUrl: vendor.url }),
        store: TokenStore.layerMemory,
        httpClient: FetchHttpClient.layer
      })),
      Layer.provide(TokenStore.layerMemory)
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  const port = address._tag === "TcpAddress" ? address.port : 0
  return { base: `http://127.0.0.1:${port}`, tokens }
})

describe("Families: a family is one folder plus one registration line", () => {
  it("the proxy route of a group is derived from its access-token route", () => {
    expect(ProxyTarget.patternOf(VendorGroup)).toBe("/v1/vendors/{vendorId}/wechat/{path}")
    // The registered families' targets are the routes the contract declares.
    expect(ProxyTarget.patternOf(TokenServerApi.groups.tokens)).toBe(ProxyApi.APP_PATTERN)
    expect(ProxyTarget.patternOf(TokenServerApi.groups.wecom)).toBe(ProxyApi.WECOM_PATTERN)
    expect(ProxyTarget.patternOf(TokenServerApi.groups.authorizers)).toBe(ProxyApi.AUTHORIZER_PATTERN)
    expect(ProxyTarget.patternOf(TokenServerApi.groups.suiteCorps)).toBe(ProxyApi.SUITE_CORP_PATTERN)
    expect(() => ProxyTarget.patternOf(TokenServerApi.groups.ops)).toThrow(/no access-token route/)
  })

  it("every route with an owner in its path is scoped by exactly one registered family", () => {
    // The admin API is behind admin keys, which have no scope.
    const owned = Routes.all.filter((route) =>
      route.pattern.startsWith("/v1/") && !route.pattern.startsWith("/v1/admin/") && route.pattern.includes("{")
    )
    expect(owned.length).toBeGreaterThan(20)
    for (const route of owned) {
      const params = Object.fromEntries(
        Array.from(route.pattern.matchAll(/\{(\w+)\}/g), ([, name]) => [name!, `${name}-value`])
      )
      const scopes = Families.registered.flatMap((family) => {
        const scope = family.scopeOf(params)
        return scope === undefined ? [] : [`${family.name}: ${scope}`]
      })
      expect([route.pattern, scopes.length], scopes.join(", ")).toEqual([route.pattern, 1])
    }
  })

  it("what a key's scope names on each family's routes", () => {
    const scopes = (params: Record<string, string>) =>
      Families.registered.flatMap((family) => {
        const scope = family.scopeOf(params)
        return scope === undefined ? [] : [[family.name, scope]]
      })
    expect(scopes({ appId: APP })).toEqual([["officialAccount", APP]])
    expect(scopes({ corpId: "ww1", agent: "1000002" })).toEqual([["wecom", "ww1/1000002"]])
    expect(scopes({ componentAppId: COMPONENT, authorizerAppId: MERCHANT })).toEqual([["component", COMPONENT]])
    // A suite's corp routes name a corp but no agent: the suite's.
    expect(scopes({ suiteId: "ws1", corpId: "ww1" })).toEqual([["wecomSuite", "ws1"]])
  })

  it.live("its routes are served over loopback, behind the client key, with the server's error bodies", () =>
    Effect.gen(function*() {
      const { base } = yield* serveWithVendor
      const token = yield* call(`${base}/v1/vendors/${VENDOR}/access-token`, { headers: auth() })
      expect(token.status).toBe(200)
      expect(token.json.access_token).toBe("vendor-token-1")
      expect(token.json.expires_in).toBeGreaterThan(3_500)
      expect(token.headers.get("cache-control")).toBe("no-store")

      const unknown = yield* call(`${base}/v1/vendors/nobody/access-token`, { headers: auth() })
      expect(unknown.status).toBe(404)
      expect(unknown.json.error.code).toBe("unknown_app")

      const anonymous = yield* call(`${base}/v1/vendors/${VENDOR}/access-token`)
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get("www-authenticate")).toBe("Bearer")

      // The registered families are served beside it (this server configures no app: each is unknown).
      const app = yield* call(`${base}/v1/apps/${APP}/access-token`, { headers: auth() })
      expect(app.status).toBe(404)
      expect(app.json.error.code).toBe("unknown_app")
    }).pipe(Effect.scoped))

  it.live("its proxy target forwards with the current token and replays once after the vendor refuses it", () =>
    Effect.gen(function*() {
      const { base, tokens } = yield* serveWithVendor
      const proxied = yield* call(`${base}/v1/vendors/${VENDOR}/wechat/api/v1/things?page=2`, { headers: auth() })
      expect(proxied.status).toBe(200)
      // The first token was refused as expired: compare-and-refreshed once, the call replayed with the new one.
      expect(proxied.json).toEqual({ errcode: 0, path: "/api/v1/things", generation: "2" })
      expect(tokens.refreshes()).toBe(1)

      const unknown = yield* call(`${base}/v1/vendors/nobody/wechat/api/v1/things`, { headers: auth() })
      expect(unknown.status).toBe(404)
      expect(unknown.json.error.code).toBe("unknown_app")

      // Every registered family's proxy route is served too, configured or not: an unknown owner, nothing forwarded.
      const authorizer = yield* call(`${base}/v1/components/${COMPONENT}/authorizers/${MERCHANT}/wechat/cgi-bin/x`, {
        headers: auth()
      })
      expect(authorizer.status).toBe(404)
      expect(authorizer.json.error.code).toBe("unknown_app")
    }).pipe(Effect.scoped))
})
