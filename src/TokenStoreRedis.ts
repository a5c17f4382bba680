/**
 * The Redis adapter of `TokenStore` (`redis://HOST:PORT[/DB]`), shared by
 * every replica of the token server. It needs the `ioredis` package, an
 * optional peer dependency: install it next to this one to use Redis.
 *
 * - Keys: `wechat-token:<appId>:<kind>` holds the record as JSON,
 *   `wechat-token:<appId>:<kind>:lease` the refresh lease. Neither ever holds a secret.
 * - `set` is one Lua compare-and-set by generation that also publishes the
 *   written record on `wechat-token:changes`; `changes` streams the records
 *   other store instances wrote (this instance's own writes are skipped).
 *   Messages published while this instance was disconnected are not replayed.
 * - `lease` is `SET NX PX` with a random owner, released on scope close only
 *   while still owned.
 * - Redis down: every operation fails at once with `StoreError` (no offline
 *   queue, 2 s command timeout), the connection is retried in the background,
 *   `healthy` is false until it is back. The layer itself never fails: it
 *   waits for the first connection attempt, then carries on either way.
 * - The connections close with the layer's scope.
 *
 * @since 0.2.0
 */
import { Layer } from "effect"
import * as RedisStore from "./internal/redisStore.js"
import { TokenStore } from "./TokenStore.js"

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (url: string): Layer.Layer<TokenStore> => Layer.scoped(TokenStore, RedisStore.make(url))
