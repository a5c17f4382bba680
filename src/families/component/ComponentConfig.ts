/**
 * The third-party platforms (开放平台第三方平台, "components") a token engine
 * serves, read with Effect `Config`:
 * `WECHAT_COMPONENTS=component_appid:component_secret:message_token:encoding_aes_key,...`.
 * WeChat is reached at `WECHAT_API_BASE_URL`, as for apps.
 *
 * @since 0.3.0
 */
import { Config, ConfigError, Context, Effect, Either, Layer, Redacted } from "effect"
import * as AppId from "../../AppId.js"
import { ENCODING_AES_KEY, MESSAGE_TOKEN, parseList } from "../../internal/credentialList.js"
import { secretList } from "../../internal/secretConfig.js"
import * as TokenConfig from "../../TokenConfig.js"

/**
 * One component and what WeChat's pushes to it are checked with. Every
 * secret is `Redacted`: it prints as `<redacted>`.
 *
 * @since 0.3.0
 * @category models
 */
export interface ComponentCredentials {
  readonly componentAppId: AppId.AppId
  /** The component's AppSecret, sent to `api_component_token`. */
  readonly secret: Redacted.Redacted<string>
  /** The message check token (消息校验Token) that signs pushes. */
  readonly messageToken: Redacted.Redacted<string>
  /** The 43-character EncodingAESKey (消息加解密Key) pushes are encrypted with. */
  readonly encodingAesKey: Redacted.Redacted<string>
}

/**
 * @since 0.3.0
 * @category models
 */
export interface ComponentConfigShape {
  readonly components: ReadonlyArray<ComponentCredentials>
  /** Default `https://api.weixin.qq.com` (`WECHAT_API_BASE_URL`). */
  readonly apiBaseUrl: string
}

/**
 * @since 0.3.0
 * @category tags
 */
export class ComponentConfig
  extends Context.Tag("effect-wechat-token/ComponentConfig")<ComponentConfig, ComponentConfigShape>()
{}

/**
 * Parses `appid:secret:message_token:encoding_aes_key,...`. A bad entry is
 * named by its position and the rule it breaks, never by what it holds.
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseComponents = (
  name: string,
  raw: string
): Either.Either<ReadonlyArray<ComponentCredentials>, ConfigError.ConfigError> =>
  parseList(name, raw, (entry) => {
    const parts = entry.split(":").map((part) => part.trim())
    if (parts.length !== 4 || parts.some((part) => part.length === 0)) {
      return Either.left(` is not "component_appid:component_secret:message_token:encoding_aes_key"`)
    }
    const [appId, secret, messageToken, encodingAesKey] = parts as [string, string, string, string]
    if (!AppId.is(appId)) return Either.left(`: a component app id is "wx" followed by 16 lowercase hex characters`)
    if (!MESSAGE_TOKEN.test(messageToken)) return Either.left(`: the message token is 3-32 letters and digits`)
    if (!ENCODING_AES_KEY.test(encodingAesKey)) {
      return Either.left(`: the EncodingAESKey is exactly 43 letters and digits`)
    }
    return Either.right({
      componentAppId: appId,
      secret: Redacted.make(secret),
      messageToken: Redacted.make(messageToken),
      encodingAesKey: Redacted.make(encodingAesKey)
    })
  }, (component) => component.componentAppId)

/**
 * The configured components: `WECHAT_COMPONENTS`, or none.
 *
 * @since 0.3.0
 * @category config
 */
export const components: Effect.Effect<ReadonlyArray<ComponentCredentials>, ConfigError.ConfigError> = secretList(
  "WECHAT_COMPONENTS",
  parseComponents
).pipe(Config.withDefault<ReadonlyArray<ComponentCredentials>>([]))

/**
 * The whole component configuration from Effect `Config`.
 *
 * @since 0.3.0
 * @category config
 */
export const config: Effect.Effect<ComponentConfigShape, ConfigError.ConfigError> = Effect.map(
  Effect.all({ components, settings: TokenConfig.settings }),
  ({ components, settings }) => ({ components, apiBaseUrl: settings.apiBaseUrl })
)

/**
 * Reads the configuration from the current `ConfigProvider` (env by default).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig: Layer.Layer<ComponentConfig, ConfigError.ConfigError> = Layer.effect(ComponentConfig, config)

/**
 * A configuration given in code.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: { readonly components: ReadonlyArray<ComponentCredentials>; readonly apiBaseUrl?: string }
): Layer.Layer<ComponentConfig> =>
  Layer.succeed(ComponentConfig, { apiBaseUrl: TokenConfig.defaults.apiBaseUrl, ...options })

/**
 * Builds credentials in code, e.g. for tests and examples; throws on a malformed id.
 *
 * @since 0.3.0
 * @category constructors
 */
export const component = (
  componentAppId: string,
  secret: string,
  messageToken: string,
  encodingAesKey: string
): ComponentCredentials => ({
  componentAppId: AppId.make(componentAppId),
  secret: Redacted.make(secret),
  messageToken: Redacted.make(messageToken),
  encodingAesKey: Redacted.make(encodingAesKey)
})
