/**
 * The WeCom (企业微信) apps a token engine serves, read with Effect `Config`:
 * `WECOM_APPS=corpid/agent:secret,...` and `WECOM_API_BASE_URL`.
 *
 * @since 0.2.0
 */
import { Config, ConfigError, Context, Effect, Either, Layer, Redacted, Schema } from "effect"
import { parseList } from "../../internal/credentialList.js"
import { secretList } from "../../internal/secretConfig.js"
import { AgentKey, CorpId, weCom, type WeComAgentId } from "../../OwnerId.js"

/**
 * One WeCom app (a corp's agent, or a special secret such as `contacts`) and
 * its secret. The secret is `Redacted`: it prints as `<redacted>`.
 *
 * @since 0.2.0
 * @category models
 */
export interface WeComAppCredentials {
  /** `corpid/agent`: the owner id of this app's credentials. */
  readonly owner: WeComAgentId
  readonly corpId: CorpId
  readonly agent: AgentKey
  readonly secret: Redacted.Redacted<string>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface WeComConfigShape {
  readonly apps: ReadonlyArray<WeComAppCredentials>
  /** Default `https://qyapi.weixin.qq.com` (`WECOM_API_BASE_URL`). */
  readonly apiBaseUrl: string
}

/**
 * @since 0.2.0
 * @category tags
 */
export class WeComConfig extends Context.Tag("effect-wechat-token/WeComConfig")<WeComConfig, WeComConfigShape>() {}

/**
 * @since 0.2.0
 * @category defaults
 */
export const defaults = { apiBaseUrl: "https://qyapi.weixin.qq.com" } as const

const decodeCorpId = Schema.decodeUnknownEither(CorpId)
const decodeAgent = Schema.decodeUnknownEither(AgentKey)

// One entry; what is wrong with it, never quoting it (the secret is in it).
const weComEntry = (entry: string): Either.Either<WeComAppCredentials, string> => {
  const colon = entry.indexOf(":")
  const slash = entry.indexOf("/")
  if (colon <= 0 || colon === entry.length - 1 || slash <= 0 || slash > colon) {
    return Either.left(` is not "corpid/agent:secret"`)
  }
  const corpId = decodeCorpId(entry.slice(0, slash).trim())
  if (Either.isLeft(corpId)) {
    return Either.left(`: a WeCom corp id is "ww" or "wx" followed by 16 lowercase hex characters`)
  }
  const agent = decodeAgent(entry.slice(slash + 1, colon).trim())
  if (Either.isLeft(agent)) {
    return Either.left(`: the agent is an AgentId (digits) or a label of 1-32 characters from [a-z0-9_-]`)
  }
  return Either.right({
    owner: weCom(corpId.right, agent.right),
    corpId: corpId.right,
    agent: agent.right,
    secret: Redacted.make(entry.slice(colon + 1).trim())
  })
}

/**
 * Parses `corpid/agent:secret,...`. A bad entry is named by its position (and,
 * once its id parsed, by `corpid/agent`), never by its secret.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parseApps = (
  name: string,
  raw: string
): Either.Either<ReadonlyArray<WeComAppCredentials>, ConfigError.ConfigError> =>
  parseList(name, raw, weComEntry, (app) => app.owner)

/**
 * The configured WeCom apps: `WECOM_APPS`, or none.
 *
 * @since 0.2.0
 * @category config
 */
export const apps: Effect.Effect<ReadonlyArray<WeComAppCredentials>, ConfigError.ConfigError> = secretList(
  "WECOM_APPS",
  parseApps
).pipe(Config.withDefault<ReadonlyArray<WeComAppCredentials>>([]))

/**
 * `WECOM_API_BASE_URL`, an http(s) URL without a trailing `/`.
 *
 * @since 0.2.0
 * @category config
 */
export const apiBaseUrl: Config.Config<string> = Config.url("WECOM_API_BASE_URL").pipe(
  Config.validate({
    message: "WECOM_API_BASE_URL: must be an http(s) URL",
    validation: (url) => url.protocol === "http:" || url.protocol === "https:"
  }),
  Config.map((url) => url.href.replace(/\/+$/, "")),
  Config.withDefault(defaults.apiBaseUrl)
)

/**
 * The whole WeCom configuration from Effect `Config`.
 *
 * @since 0.2.0
 * @category config
 */
export const config: Effect.Effect<WeComConfigShape, ConfigError.ConfigError> = Effect.map(
  Effect.all({ apps, apiBaseUrl }),
  (config) => config
)

/**
 * Reads the configuration from the current `ConfigProvider` (env by default).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig: Layer.Layer<WeComConfig, ConfigError.ConfigError> = Layer.effect(WeComConfig, config)

/**
 * A configuration given in code.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: { readonly apps: ReadonlyArray<WeComAppCredentials>; readonly apiBaseUrl?: string }
): Layer.Layer<WeComConfig> => Layer.succeed(WeComConfig, { ...defaults, ...options })

/**
 * Builds credentials in code, e.g. for tests and examples; throws on a malformed id.
 *
 * @since 0.2.0
 * @category constructors
 */
export const app = (corpId: string, agent: string, secret: string): WeComAppCredentials => {
  const corp = Schema.decodeSync(CorpId)(corpId)
  const key = Schema.decodeSync(AgentKey)(agent)
  return { owner: weCom(corp, key), corpId: corp, agent: key, secret: Redacted.make(secret) }
}
