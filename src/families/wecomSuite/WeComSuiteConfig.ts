/**
 * The WeCom third-party apps (企业微信第三方应用, "suites") a token engine
 * serves and the service provider (服务商) they belong to, read with Effect
 * `Config`: `WECOM_SUITES=suite_id:suite_secret:token:encoding_aes_key,...`
 * and `WECOM_PROVIDER=corpid:provider_secret`, each also as a `_FILE`.
 * WeCom is reached at `WECOM_API_BASE_URL`, as for WeCom apps.
 *
 * @since 0.3.0
 */
import { Config, ConfigError, Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { ENCODING_AES_KEY, invalid, MESSAGE_TOKEN, parseList } from "../../internal/credentialList.js"
import { secret, secretList } from "../../internal/secretConfig.js"
import { CorpId } from "../../OwnerId.js"
import * as WeComConfig from "../wecom/WeComConfig.js"

/**
 * A suite id: `ww` or `wx` for a third-party app, `dk` for a customized-app
 * template (代开发应用模板), `tj` for a suite of the old kind, then letters
 * and digits, 32 characters at most.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuiteId = Schema.String.pipe(
  Schema.pattern(/^(ww|wx|dk|tj)[A-Za-z0-9]{1,30}$/, {
    message: () => "a suite id is \"ww\", \"wx\", \"dk\" or \"tj\" followed by letters and digits, 32 at most"
  }),
  Schema.brand("SuiteId")
)

/**
 * @since 0.3.0
 * @category schemas
 */
export type SuiteId = typeof SuiteId.Type

/**
 * One suite and what WeCom's pushes to its command URL (指令回调URL) are
 * checked with. Every secret is `Redacted`: it prints as `<redacted>`.
 *
 * @since 0.3.0
 * @category models
 */
export interface SuiteCredentials {
  readonly suiteId: SuiteId
  /** The suite's secret, sent to `get_suite_token`. */
  readonly secret: Redacted.Redacted<string>
  /** The Token that signs the command URL's pushes. */
  readonly messageToken: Redacted.Redacted<string>
  /** The 43-character EncodingAESKey the command URL's pushes are encrypted with. */
  readonly encodingAesKey: Redacted.Redacted<string>
}

/**
 * The service provider: its corp id and the provider secret (通用开发参数)
 * `get_provider_token` takes.
 *
 * @since 0.3.0
 * @category models
 */
export interface ProviderCredentials {
  readonly corpId: CorpId
  readonly secret: Redacted.Redacted<string>
}

/**
 * @since 0.3.0
 * @category models
 */
export interface WeComSuiteConfigShape {
  readonly suites: ReadonlyArray<SuiteCredentials>
  readonly provider: Option.Option<ProviderCredentials>
  /** Default `https://qyapi.weixin.qq.com` (`WECOM_API_BASE_URL`). */
  readonly apiBaseUrl: string
}

/**
 * @since 0.3.0
 * @category tags
 */
export class WeComSuiteConfig
  extends Context.Tag("effect-wechat-token/WeComSuiteConfig")<WeComSuiteConfig, WeComSuiteConfigShape>()
{}

const decodeSuiteId = Schema.decodeUnknownEither(SuiteId)
const decodeCorpId = Schema.decodeUnknownEither(CorpId)

// One entry; what is wrong with it, never quoting it (the secret is in it).
const suiteEntry = (entry: string): Either.Either<SuiteCredentials, string> => {
  const parts = entry.split(":").map((part) => part.trim())
  if (parts.length !== 4 || parts.some((part) => part.length === 0)) {
    return Either.left(` is not "suite_id:suite_secret:token:encoding_aes_key"`)
  }
  const [rawSuiteId, suiteSecret, messageToken, encodingAesKey] = parts as [string, string, string, string]
  const suiteId = decodeSuiteId(rawSuiteId)
  if (Either.isLeft(suiteId)) {
    return Either.left(`: a suite id is "ww", "wx", "dk" or "tj" followed by letters and digits, 32 at most`)
  }
  if (!MESSAGE_TOKEN.test(messageToken)) return Either.left(`: the token is 3-32 letters and digits`)
  if (!ENCODING_AES_KEY.test(encodingAesKey)) {
    return Either.left(`: the EncodingAESKey is exactly 43 letters and digits`)
  }
  return Either.right({
    suiteId: suiteId.right,
    secret: Redacted.make(suiteSecret),
    messageToken: Redacted.make(messageToken),
    encodingAesKey: Redacted.make(encodingAesKey)
  })
}

/**
 * Parses `suite_id:suite_secret:token:encoding_aes_key,...`. A bad entry is
 * named by its position and the rule it breaks, never by what it holds.
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseSuites = (
  name: string,
  raw: string
): Either.Either<ReadonlyArray<SuiteCredentials>, ConfigError.ConfigError> =>
  parseList(name, raw, suiteEntry, (suite) => suite.suiteId)

/**
 * Parses `corpid:provider_secret`, named by the rule it breaks, never by what it holds.
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseProvider = (
  name: string,
  raw: string
): Either.Either<ProviderCredentials, ConfigError.ConfigError> => {
  const colon = raw.indexOf(":")
  const providerSecret = raw.slice(colon + 1).trim()
  if (colon <= 0 || providerSecret.length === 0) return Either.left(invalid(name, `is not "corpid:provider_secret"`))
  const corpId = decodeCorpId(raw.slice(0, colon).trim())
  if (Either.isLeft(corpId)) {
    return Either.left(invalid(name, `the corp id is "ww" or "wx" followed by 16 lowercase hex characters`))
  }
  return Either.right({ corpId: corpId.right, secret: Redacted.make(providerSecret) })
}

/**
 * The configured suites: `WECOM_SUITES` (or `WECOM_SUITES_FILE`), or none.
 *
 * @since 0.3.0
 * @category config
 */
export const suites: Config.Config<ReadonlyArray<SuiteCredentials>> = secretList("WECOM_SUITES", parseSuites).pipe(
  Config.withDefault<ReadonlyArray<SuiteCredentials>>([])
)

/**
 * The service provider: `WECOM_PROVIDER` (or `WECOM_PROVIDER_FILE`), if set.
 *
 * @since 0.3.0
 * @category config
 */
export const provider: Config.Config<Option.Option<ProviderCredentials>> = secret("WECOM_PROVIDER").pipe(
  Config.mapOrFail((raw) => parseProvider("WECOM_PROVIDER", Redacted.value(raw))),
  Config.option
)

/**
 * The whole suite configuration from Effect `Config`.
 *
 * @since 0.3.0
 * @category config
 */
export const config: Effect.Effect<WeComSuiteConfigShape, ConfigError.ConfigError> = Effect.all({
  suites,
  provider,
  apiBaseUrl: WeComConfig.apiBaseUrl
})

/**
 * Reads the configuration from the current `ConfigProvider` (env by default).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer: Layer.Layer<WeComSuiteConfig, ConfigError.ConfigError> = Layer.effect(WeComSuiteConfig, config)

/**
 * A configuration given in code.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerWith = (
  options: {
    readonly suites: ReadonlyArray<SuiteCredentials>
    readonly provider?: ProviderCredentials
    readonly apiBaseUrl?: string
  }
): Layer.Layer<WeComSuiteConfig> =>
  Layer.succeed(WeComSuiteConfig, {
    suites: options.suites,
    provider: Option.fromNullable(options.provider),
    apiBaseUrl: options.apiBaseUrl ?? WeComConfig.defaults.apiBaseUrl
  })

/**
 * Builds suite credentials in code, e.g. for tests and examples; throws on a malformed id.
 *
 * @since 0.3.0
 * @category constructors
 */
export const suite = (
  suiteId: string,
  suiteSecret: string,
  messageToken: string,
  encodingAesKey: string
): SuiteCredentials => ({
  suiteId: Schema.decodeSync(SuiteId)(suiteId),
  secret: Redacted.make(suiteSecret),
  messageToken: Redacted.make(messageToken),
  encodingAesKey: Redacted.make(encodingAesKey)
})
