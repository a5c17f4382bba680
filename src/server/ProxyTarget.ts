/**
 * What the proxy needs to know about one kind of token owner: the route its
 * callers use, the upstream base URL, how to get the current token and
 * replace a dead one, and which errcodes say a token is dead. An owner kind
 * (official accounts, WeCom apps, third-party platform authorizers) plugs in
 * by being one of these; the proxy itself knows none by name.
 *
 * @since 0.3.0
 */
import { Effect, Option } from "effect"
import type { AccessTokenError, Credential } from "../AccessToken.js"
import { APP_PATTERN, AUTHORIZER_PATTERN, SUITE_CORP_PATTERN, WECOM_PATTERN } from "../api/ProxyApi.js"
import type { ComponentTokenShape } from "../families/component/ComponentToken.js"
import type { WeComTokenShape } from "../families/wecom/WeComToken.js"
import type { WeComSuiteTokenShape } from "../families/wecomSuite/WeComSuiteToken.js"
import * as OwnerId from "../OwnerId.js"
import type { TokenEngineShape } from "../TokenEngine.js"
import * as Routes from "./Routes.js"

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
 * Official accounts and mini programs: `/v1/apps/{appId}/wechat/{path}`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const officialAccount = (engine: TokenEngineShape, baseUrl: string): ProxyTarget => ({
  pattern: APP_PATTERN,
  ownerOf: (params) => params["appId"] ?? "",
  scopeOf: (owner) => owner,
  metricLabel: (owner) => owner,
  // Configured official accounts only: a component or an authorizer is an owner too, of other kinds.
  known: (owner) => engine.servable.some((key) => key.appId === owner && key.kind === "access_token"),
  baseUrl: baseUrl.replace(/\/+$/, ""),
  token: (owner) => engine.get(owner),
  replace: (owner, stale) => engine.refresh(owner, stale),
  deadToken: DEAD_TOKEN
})

/**
 * WeCom apps: `/v1/wecom/{corpId}/agents/{agent}/wechat/{path}`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const weCom = (tokens: WeComTokenShape, owners: ReadonlyArray<string>, baseUrl: string): ProxyTarget => {
  const parts = (owner: string) => {
    const slash = owner.indexOf("/")
    return [owner.slice(0, slash), owner.slice(slash + 1)] as const
  }
  return {
    pattern: WECOM_PATTERN,
    ownerOf: (params) => `${params["corpId"] ?? ""}/${params["agent"] ?? ""}`,
    scopeOf: (owner) => owner,
    metricLabel: (owner) => owner,
    known: (owner) => OwnerId.isWeCom(owner) && owners.some((configured) => configured === owner),
    baseUrl: baseUrl.replace(/\/+$/, ""),
    token: (owner) => Effect.suspend(() => tokens.get(...parts(owner))),
    replace: (owner, stale) => Effect.suspend(() => tokens.refresh(...parts(owner), stale)),
    deadToken: DEAD_TOKEN
  }
}

// Owners that come and go under a configured parent (`parent:child`): a
// client key is scoped by the parent, and the metrics count the children
// under it, keeping the label set bounded whatever ids callers send.
const underParent = (options: {
  readonly pattern: string
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
    pattern: options.pattern,
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

/**
 * Authorizers of a third-party platform (开放平台第三方平台):
 * `/v1/components/{componentAppId}/authorizers/{authorizerAppId}/wechat/{path}`.
 * Calls go to WeChat's API host with the authorizer's token; a client key is
 * scoped by the component. The authorizers of a component change at run
 * time, so the metrics count them under their component, keeping the label
 * set bounded whatever ids callers send.
 *
 * @since 0.3.0
 * @category constructors
 */
export const authorizer = (tokens: ComponentTokenShape, baseUrl: string): ProxyTarget =>
  underParent({
    pattern: AUTHORIZER_PATTERN,
    parent: "componentAppId",
    child: "authorizerAppId",
    label: "authorizers",
    // Configured components and those the admin API added at run time.
    knows: (componentAppId) => Option.isSome(tokens.credentials(componentAppId)),
    baseUrl,
    token: tokens.authorizerToken,
    replace: tokens.refreshAuthorizerToken
  })

/**
 * Corps that installed a WeCom suite (企业微信第三方应用):
 * `/v1/wecom-suites/{suiteId}/corps/{corpId}/wechat/{path}`. Calls go to
 * WeCom's API host with the corp token `get_corp_token` answered; a client
 * key is scoped by the suite, and the metrics count a suite's corps under it.
 *
 * @since 0.3.0
 * @category constructors
 */
export const suiteCorp = (tokens: WeComSuiteTokenShape, baseUrl: string): ProxyTarget =>
  underParent({
    pattern: SUITE_CORP_PATTERN,
    parent: "suiteId",
    child: "corpId",
    label: "corps",
    knows: (suiteId) => tokens.suites.includes(suiteId),
    baseUrl,
    token: tokens.corpToken,
    replace: tokens.refreshCorpToken
  })

/**
 * The owner and the raw `{path}` of a request path, when it is `target`'s
 * route. The route is the one the route table holds for `target.pattern`
 * (`Routes.server`, or `table` where the API has more routes): a target
 * whose pattern is not a declared route is a programming error.
 *
 * @since 0.3.0
 * @category utils
 */
export const matcher = (
  target: ProxyTarget,
  table: Routes.Table = Routes.server
): (path: string) => { readonly owner: string; readonly rest: string } | undefined => {
  const { params: names, regex } = table.get(target.pattern)
  const rest = names.indexOf("path") + 1
  return (path) => {
    const found = regex.exec(path)
    if (found === null) return undefined
    const params: Record<string, string> = {}
    names.forEach((name, index) => {
      params[name] = decodeSegment(found[index + 1]!)
    })
    return { owner: target.ownerOf(params), rest: found[rest]! }
  }
}

const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
