/**
 * The routes of the server as data, read from `TokenServerApi` once: which
 * methods a path answers (for `405` and `Allow`), the route pattern a path
 * is counted under in metrics, and which paths are canonical.
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

interface Compiled extends Route {
  readonly matches: (path: string) => boolean
}

// The pages the API layers add beside the endpoints.
const PAGES: ReadonlyArray<Route> = [
  { pattern: "/openapi.json", methods: ["GET"] },
  { pattern: "/docs", methods: ["GET"] }
]

const compile = (pattern: string, methods: ReadonlyArray<string>): Compiled => {
  if (!pattern.includes("{")) return { pattern, methods, matches: (path) => path === pattern }
  // A parameter is one whole segment; its value is the handler's to judge.
  // The proxy's `{path}` is the rest of the path, however many segments.
  const source = pattern.split("/").map((segment) =>
    segment === "{path}" ? ".+" : segment.startsWith("{") ? "[^/]+" : segment
  ).join("/")
  const regex = new RegExp(`^${source}$`)
  return { pattern, methods, matches: (path) => regex.test(path) }
}

const ROUTES: ReadonlyArray<Compiled> = (() => {
  const methods = new Map<string, Array<string>>()
  HttpApi.reflect(TokenServerApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => {
      const pattern = endpoint.path.replace(/:(\w+)/g, "{$1}")
      methods.set(pattern, [...(methods.get(pattern) ?? []), endpoint.method])
    }
  })
  for (const page of [...PAGES, ...ProxyApi.ROUTES]) methods.set(page.pattern, [...page.methods])
  // The router answers HEAD wherever it answers GET.
  return Array.from(
    methods,
    ([pattern, allowed]) => compile(pattern, allowed.includes("GET") ? [...allowed, "HEAD"] : allowed)
  )
})()

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
export const match = (path: string): Route | undefined => ROUTES.find((route) => route.matches(path))

/**
 * Every route.
 *
 * @since 0.1.0
 * @category utils
 */
export const all: ReadonlyArray<Route> = ROUTES
