/**
 * What the engine needs to know, read with Effect `Config` so any
 * `ConfigProvider` works (env by default). Variable names are the public
 * contract documented in docs/configuration.md.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { AppId } from "./AppId.js"
import { invalid, parseList } from "./internal/credentialList.js"
import { secret, secretList } from "./internal/secretConfig.js"
import { TokenMode } from "./Token.js"

/**
 * One WeChat app and its secret. The secret is `Redacted`: it prints as
 * `<redacted>` in logs, errors and JSON.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppCredentials {
  readonly appId: AppId
  readonly secret: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenConfigShape {
  readonly apps: ReadonlyArray<AppCredentials>
  /** `stable` (default, WeChat's recommendation) or `classic`. */
  readonly mode: TokenMode
  /** Refresh this long before expiry; default 300 s (`REFRESH_MARGIN_SECONDS`). */
  readonly refreshMargin: Duration.Duration
  /** Default `https://api.weixin.qq.com` (`WECHAT_API_BASE_URL`). */
  readonly apiBaseUrl: string
  /** Every upstream call gives up after this long; default 10 s (`UPSTREAM_TIMEOUT_SECONDS`). */
  readonly upstreamTimeout: Duration.Duration
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenConfig extends Context.Tag("effect-wechat-token/TokenConfig")<TokenConfig, TokenConfigShape>() {}

/**
 * The defaults the contract documents.
 *
 * @since 0.1.0
 * @category utils
 */
export const defaults = {
  mode: "stable" as TokenMode,
  refreshMargin: Duration.seconds(300),
  apiBaseUrl: "https://api.weixin.qq.com",
  upstreamTimeout: Duration.seconds(10)
} as const

const decodeAppId = Schema.decodeUnknownEither(AppId)

// One entry; what is wrong with it, never quoting it (the secret is in it).
const appEntry = (entry: string): Either.Either<AppCredentials, string> => {
  const colon = entry.indexOf(":")
  if (colon <= 0 || colon === entry.length - 1) return Either.left(` is not "appid:secret"`)
  return Either.match(decodeAppId(entry.slice(0, colon).trim()), {
    onLeft: () => Either.left(`: a WeChat app id is "wx" followed by 16 lowercase hex characters`),
    onRight: (appId) => Either.right({ appId, secret: Redacted.make(entry.slice(colon + 1).trim()) })
  })
}

/**
 * Parses `appid:secret,appid2:secret2`. Messages name the variable and the
 * offending app id, never the secret.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseApps = (
  name: string,
  raw: string
): Either.Either<ReadonlyArray<AppCredentials>, ConfigError.ConfigError> =>
  parseList(name, raw, appEntry, (app) => `app id ${app.appId}`)

const appsList: Config.Config<ReadonlyArray<AppCredentials>> = secretList("WECHAT_APPS", parseApps)

const singleApp: Config.Config<ReadonlyArray<AppCredentials>> = Config.all({
  appId: Config.string("WECHAT_APP_ID").pipe(
    Config.mapOrFail((raw) =>
      Either.mapLeft(
        decodeAppId(raw.trim()),
        () => invalid("WECHAT_APP_ID", "a WeChat app id is \"wx\" followed by 16 lowercase hex characters")
      )
    )
  ),
  secret: secret("WECHAT_APP_SECRET")
}).pipe(Config.map((app) => [app]))

/**
 * The configured apps: `WECHAT_APPS`, else `WECHAT_APP_ID` + `WECHAT_APP_SECRET`,
 * else none (the server's demo mode).
 *
 * @since 0.1.0
 * @category utils
 */
export const apps: Effect.Effect<ReadonlyArray<AppCredentials>, ConfigError.ConfigError> = Effect.gen(function*() {
  const list = yield* Config.option(appsList)
  const single = yield* Config.option(Config.string("WECHAT_APP_ID"))
  if (Option.isSome(list) && Option.isSome(single)) {
    return yield* Effect.fail(
      invalid("WECHAT_APPS", "set either WECHAT_APPS or WECHAT_APP_ID/WECHAT_APP_SECRET, not both")
    )
  }
  if (Option.isSome(list)) return list.value
  if (Option.isSome(single)) return yield* singleApp
  return []
})

const seconds = (name: string, fallback: Duration.Duration, min: number) =>
  Config.number(name).pipe(
    Config.validate({
      message: `${name}: must be a number of seconds ≥ ${min}`,
      validation: (n) => Number.isFinite(n) && n >= min
    }),
    Config.map(Duration.seconds),
    Config.withDefault(fallback)
  )

/**
 * Everything but the apps, with the documented defaults.
 *
 * @since 0.1.0
 * @category config
 */
export const settings = Config.all({
  mode: Config.literal("stable", "classic")("WECHAT_TOKEN_MODE").pipe(Config.withDefault(defaults.mode)),
  refreshMargin: seconds("REFRESH_MARGIN_SECONDS", defaults.refreshMargin, 0),
  apiBaseUrl: Config.url("WECHAT_API_BASE_URL").pipe(
    Config.validate({
      message: "WECHAT_API_BASE_URL: must be an http(s) URL",
      validation: (url) => url.protocol === "http:" || url.protocol === "https:"
    }),
    Config.map((url) => url.href.replace(/\/+$/, "")),
    Config.withDefault(defaults.apiBaseUrl)
  ),
  upstreamTimeout: seconds("UPSTREAM_TIMEOUT_SECONDS", defaults.upstreamTimeout, 0.1)
})

/**
 * The whole configuration from Effect `Config`.
 *
 * @since 0.1.0
 * @category utils
 */
export const config: Effect.Effect<TokenConfigShape, ConfigError.ConfigError> = Effect.map(
  Effect.all({ apps, settings }),
  ({ apps, settings }) => ({ apps, ...settings })
)

/**
 * Reads the configuration from the current `ConfigProvider` (env by default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<TokenConfig, ConfigError.ConfigError> = Layer.effect(TokenConfig, config)

/**
 * A configuration given in code; omitted settings take the documented defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: { readonly apps: ReadonlyArray<AppCredentials> } & Partial<Omit<TokenConfigShape, "apps">>
): Layer.Layer<TokenConfig> => Layer.succeed(TokenConfig, { ...defaults, ...options })

/**
 * Builds credentials in code, e.g. for tests and examples.
 *
 * @since 0.1.0
 * @category utils
 */
export const app = (appId: string, secret: string): AppCredentials => ({
  appId: Schema.decodeSync(AppId)(appId),
  secret: Redacted.make(secret)
})
