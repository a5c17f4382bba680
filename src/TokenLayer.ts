/**
 * The one layer an Effect app provides to get `AccessToken`: configuration
 * from the environment (or any `ConfigProvider`), the upstream over `fetch`,
 * and the store named by `TOKEN_STORE`.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { type ConfigError, Effect, Layer } from "effect"
import type { AccessToken } from "./AccessToken.js"
import * as StoreSpec from "./StoreSpec.js"
import * as TokenConfig from "./TokenConfig.js"
import * as TokenEngine from "./TokenEngine.js"
import type * as TokenStore from "./TokenStore.js"
import * as WeChatApi from "./WeChatApi.js"

/**
 * Assembles the engine from its parts. Each part can be swapped: a store
 * layer, an `HttpClient` layer (the emulator's in tests), a config layer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E1, E2, E3, R1, R2, R3>(parts: {
  readonly config: Layer.Layer<TokenConfig.TokenConfig, E1, R1>
  readonly store: Layer.Layer<TokenStore.TokenStore, E2, R2>
  readonly httpClient: Layer.Layer<HttpClient.HttpClient, E3, R3>
  readonly engine?: TokenEngine.EngineOptions
}): Layer.Layer<AccessToken | TokenEngine.TokenEngine, E1 | E2 | E3, R1 | R2 | R3> =>
  TokenEngine.layer(parts.engine).pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.map(
          TokenConfig.TokenConfig,
          (config) => WeChatApi.layer({ baseUrl: config.apiBaseUrl, timeout: config.upstreamTimeout })
        )
      )
    ),
    Layer.provide(Layer.merge(parts.config, parts.store)),
    Layer.provide(parts.httpClient)
  )

/**
 * `AccessToken` (and the `TokenEngine` behind it) from the environment:
 * `WECHAT_APPS` or `WECHAT_APP_ID`/`WECHAT_APP_SECRET`, `WECHAT_TOKEN_MODE`,
 * `REFRESH_MARGIN_SECONDS`, `WECHAT_API_BASE_URL`, `TOKEN_STORE`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  AccessToken | TokenEngine.TokenEngine,
  ConfigError.ConfigError | TokenStore.StoreError
> = make({
  config: TokenConfig.layer,
  store: StoreSpec.layerConfig,
  httpClient: FetchHttpClient.layer
})
