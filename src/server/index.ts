/**
 * `effect-wechat-token/server`: the central token server as layers, for a
 * program that runs it inside its own Effect app instead of through the
 * `effect-wechat-token serve` command.
 *
 * @since 0.2.0
 */

/**
 * The programs behind the command line: `serve` and `token`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Main from "./Main.js"

/**
 * The WeChat API proxy (`ANY /v1/apps/{appId}/wechat/{path}`): its layer, and
 * `serve`, the part `TokenServer` runs in front of its router.
 *
 * @since 0.3.0
 * @category modules
 */
export * as Proxy from "./Proxy.js"

/**
 * Which upstream paths the proxy forwards, and how a path is normalised first.
 *
 * @since 0.3.0
 * @category modules
 */
export * as ProxyPath from "./ProxyPath.js"

/**
 * One family's HTTP side as one value: its route groups' handlers, push intake, proxy target and key scope.
 *
 * @since 0.3.0
 * @category modules
 */
export * as FamilyRoutes from "../FamilyRoutes.js"

/**
 * The families the server serves, one line each; the server derives its handlers and proxy targets from them.
 *
 * @since 0.3.0
 * @category modules
 */
export * as Families from "./Families.js"

/**
 * An owner kind of the proxy: route, upstream base URL, token, replacement, dead-token errcodes.
 *
 * @since 0.3.0
 * @category modules
 */
export * as ProxyTarget from "../ProxyTarget.js"

/**
 * The server on Node: the listener, with the fast path and the proxy in front of the app.
 *
 * @since 0.3.0
 * @category modules
 */
export * as NodeServer from "./NodeServer.js"

/**
 * The server's app as a layer on any `HttpServer` (`layer`), including `HttpApp.toWebHandler`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenServer from "./TokenServer.js"

/**
 * The HTTP API definition (`HttpApi`), from which the OpenAPI document is derived.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenServerApi from "../api/TokenServerApi.js"

/**
 * The push intake of a third-party platform: verify, decrypt, parse, store, answer `success`.
 *
 * @since 0.3.0
 * @category modules
 */
export * as ComponentEvents from "../families/component/ComponentEvents.js"
