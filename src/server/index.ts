/**
 * `effect-wechat-token/server`: the central token server as layers, for a
 * program that runs it inside its own Effect app instead of through the
 * `effect-wechat-token serve` command.
 *
 * @since 0.2.0
 */
export * as Main from "./Main.js"
export * as TokenServer from "./TokenServer.js"
export * as TokenServerApi from "./TokenServerApi.js"
