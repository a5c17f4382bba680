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
 * The server's layers: `layer` (any `HttpServer`) and `layerNode`.
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
