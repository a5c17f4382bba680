/**
 * The routes of the server as data, read from the `HttpApi` once: which
 * methods a path answers (for `405` and `Allow`), the route pattern a path
 * is counted under in metrics, which paths are canonical, and the
 * parameters a path gives its route. The one path matcher of the server:
 * the fast path and the proxy match their routes with it too, so a route
 * added to the API is matched everywhere without another edit.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as ProxyApi from "../api/ProxyApi.js"
import { TokenServerApi } from "../api/TokenServerApi.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Route {
  /** As in the OpenAPI document, e.g. `/v1/apps/{appId}/access-token`: the `route` label of the request counter. */
  readonly pattern: string
  /** The methods it answers (HEAD wherever GET), for `Allow`. */
  readonly methods: ReadonlyArray<string>
}

/**
 * A route compiled: `regex` matches a path spelled canonically, or a request
 * URL (its path, then a query or the end); its groups are the parameters,
 * in `params`' order.
 *
 * @since 0.3.0
 * @category models
 */
export interface Compiled extends Route {
  /** The names of the `{…}` segments, in order. */
  readonly params: ReadonlyArray<string>
  readonly regex: RegExp
}

/**
 * The routes of one API, compiled.
 *
 * @since 0.3.0
 * @category models
 */
export interface Table {
  readonly all: ReadonlyArray<Compiled>
  /** The route a canonical path belongs to, whatever the method. */
  readonly match: (path: string) => Compiled | undefined
  /** The route of `pattern`, which must be one of the table's: a programming error otherwise. */
  readonly get: (pattern: string) => Compiled
}

// The pages the API layers add beside the endpoints.
const PAGES: ReadonlyArray<Route> = [
  { pattern: "/openapi.json", methods: ["GET"] },
  { pattern: "/docs", methods: ["GET"] }
]

/**
 * The OpenAPI spelling of a platform path: `/v1/apps/:appId` is `/v1/apps/{appId}`.
 *
 * @since 0.3.0
 * @category utils
 */
export const patternOf = (path: string): string => path.replace(/:(\w+)/g, "{$1}")

const escape = (literal: string): string => literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * `pattern` compiled. A parameter is one whole segment (its value is the
 * handler's to judge); the proxy's `{path}` is the rest of the path, however
 * many segments.
 *
 * @since 0.3.0
 * @category constructors
 */
export const compile = (pattern: string, methods: ReadonlyArray<string> = []): Compiled => {
  const params: Array<string> = []
  const source = pattern.split("/").map((segment) => {
    if (!segment.startsWith("{")) return escape(segment)
    params.push(segment.slice(1, -1))
    return segment === "{path}" ? "([^?]+)" : "([^/?]+)"
  }).join("/")
  return { pattern, methods, params, regex: new RegExp(`^${source}(?:\\?|$)`) }
}

/**
 * The table of `api`'s endpoints, plus `extra` routes served beside it (the
 * pages, the proxy routes).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (api: HttpApi.HttpApi.Any, extra: ReadonlyArray<Route> = []): Table => {
  const methods = new Map<string, Array<string>>()
  HttpApi.reflect(api as HttpApi.HttpApi.AnyWithProps, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => {
      const pattern = patternOf(endpoint.path)
      methods.set(pattern, [...(methods.get(pattern) ?? []), endpoint.method])
    }
  })
  for (const route of extra) methods.set(route.pattern, [...route.methods])
  // The router answers HEAD wherever it answers GET.
  const all = Array.from(
    methods,
    ([pattern, allowed]) => compile(pattern, allowed.includes("GET") ? [...allowed, "HEAD"] : allowed)
  )
  return {
    all,
    match: (path) => all.find((route) => route.regex.test(path)),
    get: (pattern) => {
      const found = all.find((route) => route.pattern === pattern)
      if (found === undefined) throw new Error(`no route ${pattern} in the API`)
      return found
    }
  }
}

/**
 * The server's table: `TokenServerApi`, its pages and the proxy routes.
 *
 * @since 0.3.0
 * @category constants
 */
export const server: Table = make(TokenServerApi, [...PAGES, ...ProxyApi.ROUTES])

/**
 * The hot route's pattern, as the API declares it: what the fast path answers.
 *
 * @since 0.3.0
 * @category constants
 */
export const ACCESS_TOKEN: string = patternOf(TokenServerApi.groups.tokens.endpoints.accessToken.path)

/**
 * Path prefixes the server serves beyond its API table: `/v1` (every API
 * version's answers, 404s included) and the operator console's pages.
 *
 * @since 0.3.0
 * @category utils
 */
export const OWN_PREFIXES: ReadonlyArray<string> = ["/v1", "/console"]

/**
 * Whether a path is the server's own (a route, or under one of
 * `OWN_PREFIXES`) rather than one of WeChat's the gateway answers.
 *
 * @since 0.3.0
 * @category utils
 */
export const isOwn = (path: string): boolean => {
  const known = ownByPath.get(path)
  if (known !== undefined) return known
  const own = OWN_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`)) ||
    match(path) !== undefined
  // A scanner's endless paths must not grow the memo: start over when full.
  if (ownByPath.size >= MAX_REMEMBERED_PATHS) ownByPath.clear()
  ownByPath.set(path, own)
  return own
}

// A path of WeChat's misses every route, so the whole table is tried; the
// gateway asks for each of its calls (twice: the gateway, then the server's
// tracing), and an SDK's calls repeat a few dozen paths.
const MAX_REMEMBERED_PATHS = 1024
const ownByPath = new Map<string, boolean>()

/**
 * The path of a request URL, without its query.
 *
 * @since 0.1.0
 * @category utils
 */
export const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Whether `path` is spelled the one way routes are: no empty segment (`//`)
 * and no trailing `/`. Other spellings get `404`, so each route is reached,
 * documented and counted under exactly one path.
 *
 * @since 0.1.0
 * @category utils
 */
export const isCanonical = (path: string): boolean => !path.includes("//") && (path === "/" || !path.endsWith("/"))

/**
 * The route a canonical path belongs to, whatever the method.
 *
 * @since 0.1.0
 * @category utils
 */
export const match = (path: string): Compiled | undefined => server.match(path)

/**
 * Every route.
 *
 * @since 0.1.0
 * @category utils
 */
export const all: ReadonlyArray<Compiled> = server.all
