/**
 * The one layer an Effect app provides to get `AccessToken`: configuration
 * from the environment (or any `ConfigProvider`), the upstream over `fetch`,
 * and the store named by `TOKEN_STORE`.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { type ConfigError, Duration, Effect, Layer } from "effect"
import type { AccessToken } from "./AccessToken.js"
import * as Component from "./families/component/Component.js"
import * as ComponentApi from "./families/component/ComponentApi.js"
import * as ComponentConfig from "./families/component/ComponentConfig.js"
import * as ComponentToken from "./families/component/ComponentToken.js"
import * as OfficialAccount from "./families/officialAccount/OfficialAccount.js"
import * as WeChatApi from "./families/officialAccount/WeChatApi.js"
import * as WeCom from "./families/wecom/WeCom.js"
import * as WeComApi from "./families/wecom/WeComApi.js"
import type * as WeComConfig from "./families/wecom/WeComConfig.js"
import { WeComConfig as WeComConfigTag } from "./families/wecom/WeComConfig.js"
import * as WeComToken from "./families/wecom/WeComToken.js"
import * as WeComSuite from "./families/wecomSuite/WeComSuite.js"
import * as WeComSuiteApi from "./families/wecomSuite/WeComSuiteApi.js"
import * as WeComSuiteConfig from "./families/wecomSuite/WeComSuiteConfig.js"
import * as WeComSuiteToken from "./families/wecomSuite/WeComSuiteToken.js"
import type * as StoreDocuments from "./StoreDocuments.js"
import * as StoreSpec from "./StoreSpec.js"
import * as TokenConfig from "./TokenConfig.js"
import * as TokenEngine from "./TokenEngine.js"
import type * as TokenStore from "./TokenStore.js"

/**
 * What every layer of this module provides: `AccessToken`, the engine behind
 * it, and each family's library service (unconfigured families' empty).
 *
 * @since 0.3.0
 * @category models
 */
export type Services =
  | AccessToken
  | TokenEngine.TokenEngine
  | WeComToken.WeComToken
  | ComponentToken.ComponentToken
  | WeComSuiteToken.WeComSuiteToken

/**
 * Assembles the engine from its parts. Each part can be swapped: a store
 * layer, an `HttpClient` layer (the emulator's in tests), a config layer.
 * The engine runs official accounts; the other families' services are
 * provided unconfigured (`layerUnconfiguredFamilies`), so the server runs on
 * it as on `layerFamilies`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const layer = <E1, E2, E3, R1, R2, R3>(parts: {
  readonly config: Layer.Layer<TokenConfig.TokenConfig, E1, R1>
  readonly store: Layer.Layer<TokenStore.TokenStore, E2, R2>
  readonly httpClient: Layer.Layer<HttpClient.HttpClient, E3, R3>
  readonly engine?: TokenEngine.EngineOptions
}): Layer.Layer<
  Services,
  E1 | E2 | E3,
  R1 | R2 | R3
> =>
  layerUnconfiguredFamilies.pipe(
    Layer.provideMerge(TokenEngine.layer(parts.engine)),
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
 * The family services of an engine that runs official accounts alone:
 * `WeComToken` over it (every WeCom app unknown), and `ComponentToken` and
 * `WeComSuiteToken` that know no component or suite. `layer` provides them;
 * `layerFamilies` provides the real ones.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerUnconfiguredFamilies: Layer.Layer<
  WeComToken.WeComToken | ComponentToken.ComponentToken | WeComSuiteToken.WeComSuiteToken,
  never,
  TokenEngine.TokenEngine
> = Layer.mergeAll(WeComToken.layerView, ComponentToken.layerNone, WeComSuiteToken.layerNone)

/**
 * As `layer`, with the WeCom (企业微信) apps of `wecom` on the same engine:
 * one engine runs the official-account and the WeCom families, and
 * `WeComToken` is its WeCom view. WeCom is called at the configured
 * `apiBaseUrl` with the same upstream timeout.
 *
 * @since 0.2.0
 * @category constructors
 */
export const layerFamilies = <E1, E2, E3, E4, R1, R2, R3, R4>(parts: {
  readonly config: Layer.Layer<TokenConfig.TokenConfig, E1, R1>
  /**
   * The store and its documents (pending authorization codes live there):
   * `StoreSpec.layer`, `StoreSpec.layerMemory`. `StoreDocuments` required since 0.3.0.
   */
  readonly store: Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments, E2, R2>
  readonly httpClient: Layer.Layer<HttpClient.HttpClient, E3, R3>
  readonly wecom: Layer.Layer<WeComConfig.WeComConfig, E4, R4>
  /** Third-party platforms (`WECHAT_COMPONENTS`) on the same engine; none when absent. */
  readonly components?: Layer.Layer<ComponentConfig.ComponentConfig>
  /** WeCom suites (`WECOM_SUITES`, `WECOM_PROVIDER`) on the same engine; none when absent. @since 0.3.0 */
  readonly suites?: Layer.Layer<WeComSuiteConfig.WeComSuiteConfig>
  readonly engine?: TokenEngine.EngineOptions
}): Layer.Layer<
  Services,
  E1 | E2 | E3 | E4,
  R1 | R2 | R3 | R4
> => {
  const families = Effect.map(
    Effect.all([OfficialAccount.family, WeCom.families, Component.families, WeComSuite.families]),
    ([official, wecom, components, suites]) => [official, ...wecom, ...components, ...suites] as const
  )
  const engine = Layer.unwrapEffect(
    Effect.map(
      TokenConfig.TokenConfig,
      (config) =>
        TokenEngine.layerView.pipe(Layer.provideMerge(TokenEngine.layerFamilies(families, {
          leaseMillis: Duration.toMillis(config.upstreamTimeout) + 5_000,
          refreshMargin: config.refreshMargin,
          ...parts.engine
        })))
    )
  )
  const apis = Layer.unwrapEffect(
    Effect.map(Effect.all([TokenConfig.TokenConfig, WeComConfigTag]), ([config, wecom]) =>
      Layer.mergeAll(
        WeChatApi.layer({ baseUrl: config.apiBaseUrl, timeout: config.upstreamTimeout }),
        WeComApi.layer({ baseUrl: wecom.apiBaseUrl, timeout: config.upstreamTimeout }),
        // Components are reached where official accounts are (`WECHAT_API_BASE_URL`).
        ComponentApi.layer({ baseUrl: config.apiBaseUrl, timeout: config.upstreamTimeout }),
        // Suites are WeCom's: reached at `WECOM_API_BASE_URL`.
        WeComSuiteApi.layer({ baseUrl: wecom.apiBaseUrl, timeout: config.upstreamTimeout })
      ))
  )
  return Layer.mergeAll(WeComToken.layerView, ComponentToken.layerView, WeComSuiteToken.layerView).pipe(
    Layer.provideMerge(engine),
    Layer.provide(apis),
    Layer.provide(
      Layer.mergeAll(
        parts.config,
        parts.wecom,
        parts.components ?? ComponentConfig.layer({ components: [] }),
        parts.suites ?? WeComSuiteConfig.layerWith({ suites: [] }),
        parts.store
      )
    ),
    Layer.provide(parts.httpClient)
  )
}

/**
 * `AccessToken` (and the `TokenEngine` behind it) from the environment:
 * `WECHAT_APPS` or `WECHAT_APP_ID`/`WECHAT_APP_SECRET`, `WECHAT_TOKEN_MODE`,
 * `REFRESH_MARGIN_SECONDS`, `WECHAT_API_BASE_URL`, `TOKEN_STORE`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  Services,
  ConfigError.ConfigError | TokenStore.StoreError
> = layer({
  config: TokenConfig.layerConfig,
  store: StoreSpec.layerConfig,
  httpClient: FetchHttpClient.layer
})
