/**
 * The server's own settings (listen address, client keys, logging), read with
 * Effect `Config`. The engine's settings live in `TokenConfig`.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Duration, Either, LogLevel, Redacted, Schema } from "effect"
import { AppId } from "../AppId.js"
import * as Environment from "../internal/environment.js"
import { secretList } from "../internal/secretConfig.js"
import { AuthorizerId, type OwnerId, SuiteOwnerId, WeComAgentId } from "../OwnerId.js"

/**
 * A bearer key business servers present, and the apps it may ask for.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientKey {
  readonly key: Redacted.Redacted<string>
  /** Only these apps (app ids, or WeCom apps as `corpid/agent`); every configured app when absent. */
  readonly apps?: ReadonlyArray<OwnerId>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerSettings {
  /** `HOST`, default `127.0.0.1`: loopback unless an operator opens it up. */
  readonly host: string
  /** `PORT`, default `8787`; `0` picks a free port. */
  readonly port: number
  /** `CLIENT_KEYS`: the bearer keys business servers present. Empty only in demo mode. */
  readonly clientKeys: ReadonlyArray<ClientKey>
  /**
   * `OPS_KEYS`: the bearer keys that may read `/readyz` and `/metrics` in detail; none by default.
   *
   * @since 0.3.0
   */
  readonly opsKeys: ReadonlyArray<Redacted.Redacted<string>>
  /**
   * `ADMIN_KEYS`: the bearer keys of the admin API; none by default (the admin API refuses every request).
   *
   * @since 0.3.0
   */
  readonly adminKeys: ReadonlyArray<Redacted.Redacted<string>>
  /** `REQUEST_TIMEOUT_SECONDS`, default 30: headers must arrive within this long, then the body within as long again. */
  readonly requestTimeout: Duration.Duration
  /** `FAST_PATH`, default `true`: Node answers `GET access-token` directly when it can (same answers; `false` to rule it out). */
  readonly fastPath: boolean
  /** `COMPACT_HEAP`, default `true`: V8's old generation may grow only 20 % past its live size (about 100 MB less RSS with 1,000 apps; `false` for V8's defaults). */
  readonly compactHeap: boolean
  /**
   * `SHUTDOWN_DRAIN_SECONDS`, default 10: on SIGTERM/SIGINT, how long requests in flight may take to finish before their connections are cut.
   *
   * @since 0.3.0
   */
  readonly shutdownDrain: Duration.Duration
  /**
   * `GATEWAY`, default `true`: WeChat's own paths are answered by the WeChat-compatible gateway (`false` turns it off).
   *
   * @since 0.3.0
   */
  readonly gateway: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LogSettings {
  /** `LOG_LEVEL`, default `info`. */
  readonly level: LogLevel.LogLevel
  /** `LOG_FORMAT`, `json` or `pretty`; default `pretty` on a TTY, else `json`. */
  readonly format: "json" | "pretty" | undefined
}

/**
 * A client key shorter than this is refused: keys are the only thing between
 * the network and the tokens.
 *
 * @since 0.1.0
 * @category constants
 */
export const MIN_CLIENT_KEY_LENGTH = 16

const invalid = (name: string, message: string) => ConfigError.InvalidData([name], `${name}: ${message}`)

const decodeAppId = Schema.decodeUnknownEither(AppId)
// The owners a key may be scoped to. A bare `ww…` id is a suite: WeCom apps are
// always scoped as `corpid/agent`, so it cannot widen a key to a corp's apps.
// An id starting with `wx` must be an app id: a mistyped app id (`wx123`)
// stops start-up instead of passing as a suite id no suite has.
const ScopedSuite = SuiteOwnerId.pipe(Schema.filter((id) => !id.startsWith("wx")))
const decodeOwner = Schema.decodeUnknownEither(Schema.Union(AppId, WeComAgentId, AuthorizerId, ScopedSuite))

/**
 * Parses `key1,key2@wxAPPID1+wxAPPID2+wwCORPID/1000002`: a bare key may ask
 * for every app; a key followed by `@` and app ids (or WeCom apps as
 * `corpid/agent`, or WeCom suite ids) joined by `+` only for those. `@` is
 * reserved: whatever follows the last `@` must be app ids, so a mistyped
 * scope stops start-up instead of silently becoming a key for every app.
 * Messages never echo a key.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseClientKeys = (raw: string): Either.Either<ReadonlyArray<ClientKey>, ConfigError.ConfigError> => {
  const parsed: Array<ClientKey> = []
  for (const [index, entry] of raw.split(",").map((part) => part.trim()).entries()) {
    const at = entry.lastIndexOf("@")
    const key = at < 0 ? entry : entry.slice(0, at)
    if (key.length < MIN_CLIENT_KEY_LENGTH) {
      return Either.left(invalid("CLIENT_KEYS", `key ${index + 1} is shorter than ${MIN_CLIENT_KEY_LENGTH} characters`))
    }
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this pattern looks for
    if (/[\s\u0000-\u001f\u007f]/.test(entry)) {
      return Either.left(invalid("CLIENT_KEYS", `key ${index + 1} contains whitespace or control characters`))
    }
    // `key@wxA,wxB` meant `key@wxA+wxB`; read literally, wxB (an id anyone
    // may know) would become a key for every app.
    if (decodeAppId(entry)._tag === "Right") {
      return Either.left(
        invalid("CLIENT_KEYS", `key ${index + 1} is an app id: join the apps of one key with "+" (key@wxA+wxB)`)
      )
    }
    if (at < 0) {
      parsed.push({ key: Redacted.make(key) })
      continue
    }
    const apps: Array<OwnerId> = []
    for (const candidate of entry.slice(at + 1).split("+")) {
      const appId = decodeOwner(candidate)
      if (Either.isLeft(appId)) {
        return Either.left(invalid(
          "CLIENT_KEYS",
          `key ${
            index + 1
          }: after "@" come the apps it may use, joined by "+" (app ids "wx" followed by 16 lowercase hex characters, WeCom apps "corpid/agent", or WeCom suite ids)`
        ))
      }
      apps.push(appId.right)
    }
    parsed.push({ key: Redacted.make(key), apps })
  }
  return Either.right(parsed)
}

/**
 * `CLIENT_KEYS`, or none when unset (allowed only in demo mode; `serve` checks).
 *
 * @since 0.1.0
 * @category config
 */
export const clientKeys: Config.Config<ReadonlyArray<ClientKey>> = secretList(
  "CLIENT_KEYS",
  (_, raw) => parseClientKeys(raw)
).pipe(Config.withDefault<ReadonlyArray<ClientKey>>([]))

/**
 * An ops or admin key shorter than this is refused: an ops key opens the
 * list of every app the server holds, an admin key adds apps and mints
 * client keys.
 *
 * @since 0.3.0
 * @category constants
 */
export const MIN_OPERATOR_KEY_LENGTH = 32

/**
 * Parses a list of operator keys (`OPS_KEYS`, `ADMIN_KEYS`): comma-separated
 * bearer keys of at least `MIN_OPERATOR_KEY_LENGTH` characters, without
 * whitespace or control characters. Messages never echo a key.
 *
 * @since 0.3.0
 * @category utils
 */
export const parseOperatorKeys = (
  name: string,
  raw: string
): Either.Either<ReadonlyArray<Redacted.Redacted<string>>, ConfigError.ConfigError> => {
  const parsed: Array<Redacted.Redacted<string>> = []
  for (const [index, key] of raw.split(",").map((part) => part.trim()).entries()) {
    if (key.length < MIN_OPERATOR_KEY_LENGTH) {
      return Either.left(invalid(name, `key ${index + 1} is shorter than ${MIN_OPERATOR_KEY_LENGTH} characters`))
    }
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this pattern looks for
    if (/[\s\u0000-\u001f\u007f]/.test(key)) {
      return Either.left(invalid(name, `key ${index + 1} contains whitespace or control characters`))
    }
    parsed.push(Redacted.make(key))
  }
  return Either.right(parsed)
}

/**
 * `OPS_KEYS`, or none when unset: then `/readyz` and `/metrics` show
 * everyone the verdict and totals only.
 *
 * @since 0.3.0
 * @category config
 */
export const opsKeys: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = secretList(
  "OPS_KEYS",
  (_, raw) => parseOperatorKeys("OPS_KEYS", raw)
).pipe(Config.withDefault<ReadonlyArray<Redacted.Redacted<string>>>([]))

/**
 * `ADMIN_KEYS`: comma-separated keys of the admin API (`/v1/admin/…`); none
 * when unset (the admin API refuses every request).
 *
 * @since 0.3.0
 * @category config
 */
export const adminKeys: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = secretList(
  "ADMIN_KEYS",
  (_, raw) => parseOperatorKeys("ADMIN_KEYS", raw)
).pipe(Config.withDefault<ReadonlyArray<Redacted.Redacted<string>>>([]))

/**
 * `REQUEST_TIMEOUT_SECONDS`: how long a client has to send its headers, and
 * then its body, before it gets `408`. Default 30 s; at most an hour.
 *
 * @since 0.1.0
 * @category config
 */
export const requestTimeout: Config.Config<Duration.Duration> = Config.number("REQUEST_TIMEOUT_SECONDS").pipe(
  Config.validate({
    message: "REQUEST_TIMEOUT_SECONDS: must be a number of seconds above 0 and at most 3600",
    validation: (seconds) => seconds > 0 && seconds <= 3600
  }),
  Config.withDefault(30),
  Config.map(Duration.seconds)
)

/**
 * `SHUTDOWN_DRAIN_SECONDS`: on SIGTERM/SIGINT, how long requests in flight
 * may take to finish; then their connections are cut and the process exits.
 * Default 10 s, inside the 30 s an orchestrator such as Kubernetes waits
 * before SIGKILL; `0` cuts them at once.
 *
 * @since 0.3.0
 * @category config
 */
export const shutdownDrain: Config.Config<Duration.Duration> = Config.number("SHUTDOWN_DRAIN_SECONDS").pipe(
  Config.validate({
    message: "SHUTDOWN_DRAIN_SECONDS: must be a number of seconds from 0 to 3600",
    validation: (seconds) => seconds >= 0 && seconds <= 3600
  }),
  Config.withDefault(10),
  Config.map(Duration.seconds)
)

/**
 * The proxy's settings.
 *
 * @since 0.3.0
 * @category models
 */
export interface ProxySettings {
  /** `PROXY_ALLOW`: comma-separated upstream path prefixes; unset: every path but the refused ones. */
  readonly allow: ReadonlyArray<string> | undefined
  /** `PROXY_MAX_BODY_BYTES`, default 20 MiB. */
  readonly maxBodyBytes: number
}

/**
 * `PROXY_ALLOW` and `PROXY_MAX_BODY_BYTES`.
 *
 * @since 0.3.0
 * @category config
 */
export const proxySettings: Config.Config<ProxySettings> = Config.all({
  allow: Config.string("PROXY_ALLOW").pipe(
    Config.map((raw) => raw.split(",").map((prefix) => prefix.trim().replace(/^\/+|\/+$/g, ""))),
    Config.validate({
      message:
        "PROXY_ALLOW: comma-separated WeChat API path prefixes, e.g. cgi-bin/message,cgi-bin/media (letters, digits, _ - . ~ /; no . or .. segment)",
      validation: (prefixes) =>
        prefixes.every((prefix) =>
          /^[A-Za-z0-9_.~-]+(\/[A-Za-z0-9_.~-]+)*$/.test(prefix) &&
          prefix.split("/").every((segment) => segment !== "." && segment !== "..")
        )
    }),
    Config.option,
    Config.map((allow) => allow._tag === "Some" ? allow.value : undefined)
  ),
  maxBodyBytes: Config.integer("PROXY_MAX_BODY_BYTES").pipe(
    Config.validate({
      message: "PROXY_MAX_BODY_BYTES: must be a whole number of bytes from 1 to 1073741824",
      validation: (bytes) => bytes >= 1 && bytes <= 1024 * 1024 * 1024
    }),
    Config.withDefault(20 * 1024 * 1024)
  )
})

/**
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<ServerSettings> = Config.all({
  host: Config.string("HOST").pipe(
    Config.validate({ message: "HOST: must not be empty", validation: (host) => host.trim() !== "" }),
    Config.withDefault("127.0.0.1")
  ),
  port: Config.integer("PORT").pipe(
    Config.validate({
      message: "PORT: must be an integer from 0 to 65535",
      validation: (port) => port >= 0 && port <= 65535
    }),
    Config.withDefault(8787)
  ),
  clientKeys,
  opsKeys,
  adminKeys,
  requestTimeout,
  fastPath: Config.boolean("FAST_PATH").pipe(Config.withDefault(true)),
  compactHeap: Config.boolean("COMPACT_HEAP").pipe(Config.withDefault(true)),
  shutdownDrain,
  gateway: Config.boolean("GATEWAY").pipe(Config.withDefault(true))
})

/**
 * @since 0.1.0
 * @category config
 */
export const logSettings: Config.Config<LogSettings> = Config.all({
  level: Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
  format: Config.literal("json", "pretty")("LOG_FORMAT").pipe(
    Config.option,
    Config.map((format) => format._tag === "Some" ? format.value : undefined)
  )
})

/**
 * Every environment variable the command line reads, `_FILE` forms included.
 *
 * @since 0.3.0
 * @category constants
 */
export const VARIABLES: ReadonlyArray<string> = Environment.names

// A variable with one of these prefixes is meant for this server: unknown,
// it is a typo that would otherwise be ignored in silence.
const PREFIXES =
  /^(WECHAT_|WECOM_|TOKEN_|REDIS_|PROXY_|CLIENT_|OPS_|ADMIN_|UPSTREAM_|REFRESH_|REQUEST_|SHUTDOWN_|STORE_)/

// Levenshtein distance, one row at a time.
const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return previous[b.length]!
}

// Two edits cover a dropped or doubled letter and a swapped pair (`WECHAT_APP`
// for `WECHAT_APPS`, `CLEINT_KEYS`), without pairing unrelated names.
const NEAR_MISS = 2

/**
 * A variable with one of the server's prefixes that it does not read, and
 * the known variable it is a near miss of, if any.
 *
 * @since 0.3.0
 * @category models
 */
export interface UnknownVariable {
  readonly name: string
  readonly suggestion: string | undefined
}

/**
 * The variables among `names` that carry one of the server's prefixes
 * (`WECHAT_`, `WECOM_`, `TOKEN_`, `REDIS_`, `PROXY_`, `CLIENT_`, …) but are
 * not among `VARIABLES`, each with the nearest known name when it is at most
 * two edits away.
 *
 * @since 0.3.0
 * @category utils
 */
export const unknownVariables = (names: Iterable<string>): ReadonlyArray<UnknownVariable> =>
  Array.from(names)
    .filter((name) => PREFIXES.test(name) && !VARIABLES.includes(name))
    .map((name) => {
      const [nearest] = VARIABLES
        .map((known) => ({ known, edits: distance(name, known) }))
        .filter(({ edits }) => edits <= NEAR_MISS)
        .sort((a, b) => a.edits - b.edits)
      return { name, suggestion: nearest?.known }
    })

/**
 * The variables among `names` that only make sense in production: the keys,
 * the listen address, the store, anything of WeChat's or WeCom's. Any of
 * them set means the operator meant the real server, so the demo must not
 * start in its place.
 *
 * @since 0.3.0
 * @category utils
 */
export const productionVariables = (names: Iterable<string>): ReadonlyArray<string> =>
  Array.from(names).filter((name) =>
    /^(WECHAT_|WECOM_|REDIS_)/.test(name) ||
    ["CLIENT_KEYS", "OPS_KEYS", "ADMIN_KEYS", "TOKEN_STORE", "HOST"].includes(name.replace(/_FILE$/, ""))
  )

/**
 * One line naming the variable: what start-up prints before exiting, instead
 * of a stack trace. `ConfigError` may combine several problems; the first is
 * enough to act on, and the run after the fix reports the next.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (error: ConfigError.ConfigError): string => {
  const first = (e: ConfigError.ConfigError): ConfigError.ConfigError =>
    e._op === "And" || e._op === "Or" ? first(e.left) : e
  const leaf = first(error)
  // `Config.mapOrFail` nests the variable's name in the path again: the last
  // segment is the variable.
  const name = "path" in leaf ? leaf.path.at(-1) ?? "" : ""
  const message = "message" in leaf ? leaf.message : String(leaf)
  const text = name === "" || message.startsWith(`${name}:`) ? message : `${name}: ${message}`
  return `configuration error: ${text.replace(/\s+/g, " ").trim()}`
}
