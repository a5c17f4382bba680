/**
 * What the proxy needs to know about one kind of token owner: the route its
 * callers use, the upstream base URL, how to get the current token and
 * replace a dead one, and which errcodes say a token is dead. A family plugs
 * its owners in by giving one of these in its routes (`FamilyRoutes`); the
 * proxy itself knows none by name.
 *
 * @since 0.3.0
 */
import { Effect } from "effect"
import type { AccessTokenError, Credential } from "./AccessToken.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface ProxyTarget {
  /** The route, e.g. `/v1/apps/{appId}/wechat/{path}`: one `{…}` segment per owner part, `{path}` last. */
  readonly pattern: string
  /** The owner named by the route's parameters, as `CLIENT_KEYS` scopes name it (`wx…`, `corpid/agent`). */
  readonly ownerOf: (params: Readonly<Record<string, string>>) => string
  /** What a `CLIENT_KEYS` scope names for `owner` (the owner itself, or e.g. an authorizer's component). */
  readonly scopeOf: (owner: string) => string
  /** The `app` label of the proxy's metrics: the owner, or a bounded stand-in for owners that come and go. */
  readonly metricLabel: (owner: string) => string
  /** Whether the server serves `owner` (else `404 unknown_app`, nothing forwarded). */
  readonly known: (owner: string) => boolean
  /** Where `{path}` is forwarded to, without a trailing `/`. */
  readonly baseUrl: string
  /** The owner's current token. */
  readonly token: (owner: string) => Effect.Effect<Credential, AccessTokenError>
  /** Compare-and-refresh: a new token only while `stale` is still the current one, else the current one. */
  readonly replace: (owner: string, stale: string) => Effect.Effect<Credential, AccessTokenError>
  /** The errcodes that mean the token the request carried is dead: replace it and replay once. */
  readonly deadToken: ReadonlySet<number>
}

/**
 * 40001 (not the latest), 40014 (invalid), 42001 (expired): the same three
 * on WeChat and WeCom.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEAD_TOKEN: ReadonlySet<number> = new Set([40001, 40014, 42001])

/**
 * The OpenAPI spelling of a platform path: `/v1/apps/:appId` is `/v1/apps/{appId}`.
 *
 * @since 0.3.0
 * @category utils
 */
export const pathPattern = (path: string): string => path.replace(/:(\w+)/g, "{$1}")

const ACCESS_TOKEN = "/access-token"

/**
 * What `patternOf` reads of an `HttpApiGroup`: its name and its routes' paths.
 *
 * @since 0.3.0
 * @category models
 */
export interface Group {
  readonly identifier: string
  readonly endpoints: Readonly<Record<string, { readonly path: string }>>
}

/**
 * The proxy route of the owners `group` serves: under the prefix of its
 * `accessToken` route, `…/wechat/{path}` (`/v1/apps/:appId/access-token`
 * gives `/v1/apps/{appId}/wechat/{path}`). A group without that route has no
 * owner to proxy for: a programming error.
 *
 * @since 0.3.0
 * @category utils
 */
export const patternOf = (group: Group): string => {
  const path = group.endpoints["accessToken"]?.path
  if (path === undefined || !path.endsWith(ACCESS_TOKEN)) {
    throw new Error(`group ${group.identifier} has no access-token route`)
  }
  return `${pathPattern(path.slice(0, -ACCESS_TOKEN.length))}/wechat/{path}`
}

/**
 * A target whose owner is one route parameter or several joined (`ownerOf`),
 * scoped and counted as itself.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: {
  readonly group: Group
  readonly ownerOf: (params: Readonly<Record<string, string>>) => string
  readonly known: (owner: string) => boolean
  readonly baseUrl: string
  readonly token: (owner: string) => Effect.Effect<Credential, AccessTokenError>
  readonly replace: (owner: string, stale: string) => Effect.Effect<Credential, AccessTokenError>
}): ProxyTarget => ({
  pattern: patternOf(options.group),
  ownerOf: options.ownerOf,
  scopeOf: (owner) => owner,
  metricLabel: (owner) => owner,
  known: options.known,
  baseUrl: options.baseUrl.replace(/\/+$/, ""),
  token: (owner) => Effect.suspend(() => options.token(owner)),
  replace: (owner, stale) => Effect.suspend(() => options.replace(owner, stale)),
  deadToken: DEAD_TOKEN
})

/**
 * A target for owners that come and go under a configured parent
 * (`parent:child`, e.g. a component's authorizers): a client key is scoped
 * by the parent, and the metrics count the children under it (`label`),
 * keeping the label set bounded whatever ids callers send.
 *
 * @since 0.3.0
 * @category constructors
 */
export const underParent = (options: {
  readonly group: Group
  /** The route parameters naming the parent and the child. */
  readonly parent: string
  readonly child: string
  readonly label: string
  readonly knows: (parent: string) => boolean
  readonly baseUrl: string
  readonly token: (parent: string, child: string) => Effect.Effect<Credential, AccessTokenError>
  readonly replace: (parent: string, child: string, stale: string) => Effect.Effect<Credential, AccessTokenError>
}): ProxyTarget => {
  const parts = (owner: string) => {
    const colon = owner.indexOf(":")
    return [owner.slice(0, colon), owner.slice(colon + 1)] as const
  }
  return {
    pattern: patternOf(options.group),
    ownerOf: (params) => `${params[options.parent] ?? ""}:${params[options.child] ?? ""}`,
    scopeOf: (owner) => parts(owner)[0],
    metricLabel: (owner) => `${parts(owner)[0]}:${options.label}`,
    known: (owner) => options.knows(parts(owner)[0]),
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    token: (owner) => Effect.suspend(() => options.token(...parts(owner))),
    replace: (owner, stale) => Effect.suspend(() => options.replace(...parts(owner), stale)),
    deadToken: DEAD_TOKEN
  }
}
