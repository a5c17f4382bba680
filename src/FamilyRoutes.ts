/**
 * What a credential family serves over HTTP, in one value its folder exports:
 * the handlers of its route groups (built with `HttpApiBuilder.group` over the
 * family's library service, which the server takes from context), its push
 * intake if WeChat pushes to it, and its proxy target. The server registers
 * families by listing these (`server/Families`) and derives its handlers and
 * its proxy targets from the list, so it names no family itself.
 *
 * @since 0.3.0
 */
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type { Effect, Layer } from "effect"
import type { ClientAuth } from "./api/ClientAuth.js"
import type { ProxyTarget } from "./ProxyTarget.js"

/**
 * The handlers of route groups of the token server's API (`TokenServerApi`,
 * whose id is `token-server`), whichever groups they are.
 *
 * @since 0.3.0
 * @category models
 */
// Why `any`: a layer is contravariant in what it provides, so a family's
// `Layer<ApiGroup<"token-server", "wecom">>` is a `Layer<ApiGroup<"token-server", N>>`
// only when `N` is assignable to "wecom" and to every other family's group
// name at once: `never` is, but then the merged layer provides none of the
// groups `HttpApiBuilder.api` asks for; `string` and the union of the names
// are not. Only `any` is both.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any: every family's group name, see above
export type Handlers = HttpApiGroup.ApiGroup<"token-server", any> // any: only type both to and from every group name

/**
 * The upstream base URLs the server is configured with: WeChat's
 * (`WECHAT_API_BASE_URL`) and WeCom's (`WECOM_API_BASE_URL`). A family's
 * proxy target forwards to its vendor's.
 *
 * @since 0.3.0
 * @category models
 */
export interface Upstreams {
  readonly wechat: string
  readonly wecom: string
}

/**
 * One family's routes. `R` is what they need from the server's context:
 * the family's library service (`WeComToken`, …), the engine. The client-key
 * check its groups declare (`ClientAuth`) is the server's to provide.
 *
 * @since 0.3.0
 * @category models
 */
export interface FamilyRoutes<R> {
  /** The family, as its folder is named: for logs and errors. */
  readonly name: string
  /** The handlers of its `/v1` route groups. */
  readonly handlers: Layer.Layer<Handlers, never, R | ClientAuth>
  /** The handlers of the routes its vendor pushes to (signed, no client key), if any. */
  readonly intake?: Layer.Layer<Handlers, never, R | ClientAuth>
  /** Its proxy target (`ProxyTarget.make`, `ProxyTarget.underParent`), if its owners' calls are proxied. */
  readonly proxy?: (upstreams: Upstreams) => Effect.Effect<ProxyTarget, never, R>
  /**
   * What a `CLIENT_KEYS` scope names for a request to one of its routes, read
   * from the route's raw parameters (`corpid/agent`; a component for its
   * authorizers' routes); `undefined` when the parameters are not its routes'.
   * Exactly one registered family answers for any route: the server asks them
   * in turn and takes the first answer, so a family must not claim another's
   * routes (WeCom apps name `corpId` and `agent`; a suite's corps `suiteId`
   * and `corpId`).
   */
  readonly scopeOf: (params: Readonly<Record<string, string | undefined>>) => string | undefined
}

/**
 * @since 0.3.0
 * @category constructors
 */
export const make = <RH, RP = never>(routes: {
  readonly name: string
  readonly handlers: Layer.Layer<Handlers, never, RH | ClientAuth>
  readonly intake?: Layer.Layer<Handlers, never, RH | ClientAuth>
  readonly proxy?: (upstreams: Upstreams) => Effect.Effect<ProxyTarget, never, RP>
  readonly scopeOf: (params: Readonly<Record<string, string | undefined>>) => string | undefined
}): FamilyRoutes<RH | RP> => routes
