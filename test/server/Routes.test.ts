/**
 * Route matching on its own: which pattern a path is counted under, which
 * methods it answers (what a 405's Allow lists), and which spellings of a
 * path are canonical. The live server's use of it is in TokenServer.test.ts.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TokenServerApi } from "../../src/api/TokenServerApi.js"
import * as ProxyTarget from "../../src/ProxyTarget.js"
import * as Proxy from "../../src/server/Proxy.js"
import * as Routes from "../../src/server/Routes.js"
import { APP, wrongMethods } from "../support/fixtures.js"

describe("Routes", () => {
  it("match: every canonical path is found under its pattern, with the methods it answers (HEAD wherever GET)", () => {
    for (
      const [path, pattern, methods] of [
        [`/v1/apps/${APP}/access-token`, "/v1/apps/{appId}/access-token", ["GET", "HEAD"]],
        [`/v1/apps/${APP}/access-token/refresh`, "/v1/apps/{appId}/access-token/refresh", ["POST"]],
        [`/v1/apps/${APP}/jsapi-ticket`, "/v1/apps/{appId}/jsapi-ticket", ["GET", "HEAD"]],
        [`/v1/apps/${APP}/jssdk-config`, "/v1/apps/{appId}/jssdk-config", ["POST"]],
        // The parameter is the handler's to judge: any one segment matches here.
        ["/v1/apps/not-an-app/access-token", "/v1/apps/{appId}/access-token", ["GET", "HEAD"]],
        ["/healthz", "/healthz", ["GET", "HEAD"]],
        ["/readyz", "/readyz", ["GET", "HEAD"]],
        ["/metrics", "/metrics", ["GET", "HEAD"]],
        ["/openapi.json", "/openapi.json", ["GET", "HEAD"]],
        ["/docs", "/docs", ["GET", "HEAD"]]
      ] as const
    ) {
      const route = Routes.match(path)
      expect({ path, pattern: route?.pattern, methods: route?.methods }).toEqual({ path, pattern, methods })
    }
  })

  it("match: a wrong method still finds the route, whose methods are what Allow lists", () => {
    for (
      const [method, path, allow] of wrongMethods
    ) {
      const methods = Routes.match(path)?.methods ?? []
      expect({ method, path, allowed: methods.includes(method), allow: methods.join(", ") }).toEqual({
        method,
        path,
        allowed: false,
        allow
      })
    }
  })

  it("match: unknown paths, a parameter spanning segments or empty, and non-canonical spellings find nothing", () => {
    for (
      const path of [
        "/",
        "/nowhere",
        "/v1",
        "/v1/apps",
        `/v1/apps/${APP}`,
        `/v1/apps/${APP}/nothing`,
        `/v1/apps/${APP}/access-token/refresh/again`,
        "/v1/apps//access-token",
        `/v1/apps/${APP}/x/access-token`,
        `/v1/apps/${APP}/access-token/`,
        `//v1/apps/${APP}/access-token`,
        "/healthz/",
        "//metrics",
        "/HEALTHZ",
        "/docs.html"
      ]
    ) {
      expect({ path, route: Routes.match(path) }).toEqual({ path, route: undefined })
    }
  })

  it("isCanonical: no empty segment and no trailing slash, except the root itself", () => {
    for (
      const [path, canonical] of [
        ["/", true],
        ["/healthz", true],
        [`/v1/apps/${APP}/access-token`, true],
        ["/healthz/", false],
        ["//metrics", false],
        [`/v1//apps/${APP}/access-token`, false],
        [`/v1/apps/${APP}/access-token/`, false],
        ["//", false]
      ] as const
    ) {
      expect({ path, canonical: Routes.isCanonical(path) }).toEqual({ path, canonical })
    }
  })

  it("pathOf: the path without its query", () => {
    for (
      const [url, path] of [
        ["/healthz", "/healthz"],
        ["/healthz?x=1", "/healthz"],
        ["/healthz?", "/healthz"],
        ["/a?b=c?d", "/a"]
      ] as const
    ) {
      expect({ url, path: Routes.pathOf(url) }).toEqual({ url, path })
    }
  })

  it("all: each pattern once, every endpoint of the API, the two pages and the proxy routes", () => {
    const patterns = Routes.all.map((route) => route.pattern)
    expect(new Set(patterns).size).toBe(patterns.length)
    expect([...patterns].sort()).toEqual([
      "/docs",
      "/healthz",
      "/metrics",
      "/openapi.json",
      "/readyz",
      "/v1/admin/apps",
      "/v1/admin/apps/{appId}",
      "/v1/admin/audit",
      "/v1/admin/components",
      "/v1/admin/components/{componentAppId}",
      "/v1/admin/keys",
      "/v1/admin/keys/{id}",
      "/v1/admin/wecom",
      "/v1/admin/wecom/{corpId}/agents",
      "/v1/admin/wecom/{corpId}/agents/{agent}",
      "/v1/apps/{appId}/access-token",
      "/v1/apps/{appId}/access-token/refresh",
      "/v1/apps/{appId}/jsapi-ticket",
      "/v1/apps/{appId}/jssdk-config",
      "/v1/apps/{appId}/wechat/{path}",
      "/v1/components/{componentAppId}/access-token",
      "/v1/components/{componentAppId}/authorizations",
      "/v1/components/{componentAppId}/authorizers",
      "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/access-token",
      "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/access-token/refresh",
      "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/jsapi-ticket",
      "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/jssdk-config",
      "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/wechat/{path}",
      "/v1/components/{componentAppId}/pre-auth-code",
      "/v1/wecom-suites/{suiteId}/access-token",
      "/v1/wecom-suites/{suiteId}/corps",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/access-token",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/access-token/refresh",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/agent-ticket",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/jsapi-ticket",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/jssdk-config",
      "/v1/wecom-suites/{suiteId}/corps/{corpId}/wechat/{path}",
      "/v1/wecom-suites/{suiteId}/pre-auth-code",
      "/v1/wecom-suites/{suiteId}/provider-token",
      "/v1/wecom/{corpId}/agents/{agent}/access-token",
      "/v1/wecom/{corpId}/agents/{agent}/access-token/refresh",
      "/v1/wecom/{corpId}/agents/{agent}/agent-ticket",
      "/v1/wecom/{corpId}/agents/{agent}/jsapi-ticket",
      "/v1/wecom/{corpId}/agents/{agent}/jssdk-config",
      "/v1/wecom/{corpId}/agents/{agent}/wechat/{path}",
      "/wechat/components/{componentAppId}/events",
      "/wecom/suites/{suiteId}/events"
    ])
  })

  it("proxy routes: the rest of the path is one parameter, however many segments", () => {
    expect(Routes.match(`/v1/apps/${APP}/wechat/cgi-bin/message/custom/send`)?.pattern).toBe(
      "/v1/apps/{appId}/wechat/{path}"
    )
    expect(Routes.match("/v1/wecom/ww0123456789abcdef/agents/1000002/wechat/cgi-bin/media/get")?.pattern).toBe(
      "/v1/wecom/{corpId}/agents/{agent}/wechat/{path}"
    )
    expect(Routes.match(`/v1/apps/${APP}/wechat`)).toBeUndefined()
  })

  it("WeCom routes: counted under their patterns, with the methods Allow lists", () => {
    const base = "/v1/wecom/ww0123456789abcdef/agents/1000002"
    for (
      const [rest, methods] of [
        ["access-token", ["GET", "HEAD"]],
        ["access-token/refresh", ["POST"]],
        ["jsapi-ticket", ["GET", "HEAD"]],
        ["agent-ticket", ["GET", "HEAD"]],
        ["jssdk-config", ["POST"]]
      ] as const
    ) {
      const route = Routes.match(`${base}/${rest}`)
      expect({ pattern: route?.pattern, methods: route?.methods }).toEqual({
        pattern: `/v1/wecom/{corpId}/agents/{agent}/${rest}`,
        methods
      })
    }
  })
})

describe("Routes.make: the one table, derived from the API", () => {
  const Extra = HttpApiGroup.make("extra")
    .add(HttpApiEndpoint.get("ticket", "/v1/extras/:extraId/ticket"))
    .add(HttpApiEndpoint.post("renew", "/v1/extras/:extraId/ticket"))
  const EXTRA_PROXY = "/v1/extras/{extraId}/wechat/{path}"
  const table = Routes.make(TokenServerApi.add(Extra), [{ pattern: EXTRA_PROXY, methods: ["GET", "POST"] }])

  it("a route added to the API is matched under its pattern, with its methods and parameters", () => {
    const route = table.match("/v1/extras/x1/ticket")
    expect({ pattern: route?.pattern, methods: route?.methods, params: route?.params }).toEqual({
      pattern: "/v1/extras/{extraId}/ticket",
      methods: ["GET", "POST", "HEAD"],
      params: ["extraId"]
    })
    // A request URL too: the parameter, then a query or the end.
    expect(route?.regex.exec("/v1/extras/x1/ticket?a=1")?.[1]).toBe("x1")
    expect(table.match("/v1/extras/x1/ticket/more")).toBeUndefined()
    // The API's own routes are all still there.
    expect(table.match(`/v1/apps/${APP}/access-token`)?.pattern).toBe("/v1/apps/{appId}/access-token")
  })

  it("a proxy target on a route of the table is matched by Proxy.matcher, with no matcher of its own", () => {
    const unused = Effect.dieMessage("not called: matching only")
    const target: ProxyTarget.ProxyTarget = {
      pattern: EXTRA_PROXY,
      ownerOf: (params) => params["extraId"] ?? "",
      scopeOf: (owner) => owner,
      metricLabel: (owner) => owner,
      known: () => true,
      baseUrl: "http://127.0.0.1:1",
      token: () => unused,
      replace: () => unused,
      deadToken: ProxyTarget.DEAD_TOKEN
    }
    const match = Proxy.matcher(target, table)
    expect(match("/v1/extras/a%20b/wechat/cgi-bin/message/send")).toEqual({
      owner: "a b",
      rest: "cgi-bin/message/send"
    })
    expect(match("/v1/extras/a/wechat")).toBeUndefined()
    // Not a route of the server's own table: declared nowhere, matched nowhere.
    expect(() => Proxy.matcher(target)).toThrow(/no route/)
  })

  it("the fast path's route is the API's access-token endpoint, as the table compiles it", () => {
    expect(Routes.ACCESS_TOKEN).toBe(
      Routes.patternOf(TokenServerApi.groups.tokens.endpoints.accessToken.path)
    )
    const { regex } = Routes.server.get(Routes.ACCESS_TOKEN)
    expect(regex.exec(`/v1/apps/${APP}/access-token?x=1`)?.[1]).toBe(APP)
    expect(regex.exec(`/v1/apps/${APP}/access-token/`)).toBeNull()
    expect(regex.exec(`/v1/apps/${APP}/access-tokens`)).toBeNull()
  })

  it("literal segments are literal: a dot matches only a dot", () => {
    expect(Routes.match("/openapi.json")?.pattern).toBe("/openapi.json")
    expect(Routes.match("/openapiXjson")).toBeUndefined()
  })
})
