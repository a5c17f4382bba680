/**
 * Every environment variable the server and the library read, with its
 * default and meaning: the one list behind `ServerConfig.VARIABLES` (the
 * known names start-up checks typos against), `docs/configuration.md` (a
 * test holds the table, this list and the variables the config code reads
 * equal) and `--help`, so none of them can drift.
 */

/** One variable. `file`: also accepted as `NAME_FILE`, a path whose content is the value (a secret). */
export interface Variable {
  readonly name: string
  readonly default: string
  readonly meaning: string
  readonly file?: true
}

/** What a group of variables is for; the table and `--help` keep this order. */
export interface Group {
  readonly title: string
  readonly variables: ReadonlyArray<Variable>
}

export const groups: ReadonlyArray<Group> = [
  {
    title: "Credentials",
    variables: [
      {
        name: "WECHAT_APPS",
        default: "unset",
        meaning: "official accounts and mini programs: `appid:secret,appid2:secret2`",
        file: true
      },
      {
        name: "WECHAT_APP_ID",
        default: "unset",
        meaning: "a single app, with `WECHAT_APP_SECRET` (instead of `WECHAT_APPS`)"
      },
      { name: "WECHAT_APP_SECRET", default: "unset", meaning: "the secret of `WECHAT_APP_ID`", file: true },
      { name: "WECOM_APPS", default: "unset", meaning: "WeCom apps: `corpid/agent:secret,...`", file: true },
      {
        name: "WECHAT_COMPONENTS",
        default: "unset",
        meaning: "third-party platforms: `component_appid:component_secret:message_token:encoding_aes_key,...`",
        file: true
      },
      {
        name: "WECOM_SUITES",
        default: "unset",
        meaning:
          "WeCom third-party apps (suites): `suite_id:suite_secret:token:encoding_aes_key,...`; WeCom pushes to `/wecom/suites/{suite_id}/events`",
        file: true
      },
      {
        name: "WECOM_PROVIDER",
        default: "unset",
        meaning: "the WeCom service provider of those suites: `corpid:provider_secret`",
        file: true
      }
    ]
  },
  {
    title: "Server",
    variables: [
      {
        name: "CLIENT_KEYS",
        default: "required outside demo mode",
        meaning:
          "bearer keys of business servers, comma-separated, at least 16 characters; `KEY@wxAPP1+wwCORP/1000002` limits a key to those apps",
        file: true
      },
      {
        name: "OPS_KEYS",
        default: "unset",
        meaning: "bearer keys (at least 32 characters) that see per-credential detail on `/readyz` and `/metrics`",
        file: true
      },
      {
        name: "ADMIN_KEYS",
        default: "unset (the admin API refuses every request)",
        meaning:
          "bearer keys (at least 32 characters) of the admin API `/v1/admin/…`: apps and client keys at run time; needs `STORE_ENCRYPTION_KEY`",
        file: true
      },
      { name: "HOST", default: "`127.0.0.1`", meaning: "listen address" },
      { name: "PORT", default: "`8787`", meaning: "listen port" },
      {
        name: "REQUEST_TIMEOUT_SECONDS",
        default: "`30`",
        meaning: "a client sends its headers within this long, then its body within as long again, else `408`"
      },
      {
        name: "SHUTDOWN_DRAIN_SECONDS",
        default: "`10`",
        meaning: "on SIGTERM/SIGINT, how long requests in flight may take before their connections are cut (0 to 3600)"
      },
      {
        name: "LOG_LEVEL",
        default: "`info`",
        meaning: "`trace`, `debug`, `info`, `warning`, `error`, `fatal`, `none`"
      },
      { name: "LOG_FORMAT", default: "`pretty` on a TTY, else `json`", meaning: "`json` or `pretty`" }
    ]
  },
  {
    title: "Upstream",
    variables: [
      { name: "WECHAT_TOKEN_MODE", default: "`stable`", meaning: "`stable` or `classic` token endpoint" },
      { name: "WECHAT_API_BASE_URL", default: "`https://api.weixin.qq.com`", meaning: "WeChat's base URL" },
      { name: "WECOM_API_BASE_URL", default: "`https://qyapi.weixin.qq.com`", meaning: "WeCom's base URL" },
      { name: "REFRESH_MARGIN_SECONDS", default: "`300`", meaning: "refresh this long before expiry" },
      { name: "UPSTREAM_TIMEOUT_SECONDS", default: "`10`", meaning: "give up on one upstream call after this long" }
    ]
  },
  {
    title: "Store",
    variables: [
      {
        name: "TOKEN_STORE",
        default: "`memory`",
        meaning: "`memory`, `file:PATH`, `redis://`, `rediss://`, `redis+sentinel://` or `redis+cluster://` URL"
      },
      {
        name: "STORE_ENCRYPTION_KEY",
        default: "unset",
        meaning:
          "64 hex characters (32 bytes, e.g. `openssl rand -hex 32`) sealing the secrets a store keeps (refresh tokens, permanent codes, the credential registry)",
        file: true
      },
      { name: "REDIS_PASSWORD", default: "unset", meaning: "the Redis password when the URL has none", file: true },
      {
        name: "REDIS_SENTINEL_PASSWORD",
        default: "unset",
        meaning: "the sentinels' own password (`redis+sentinel://`)",
        file: true
      },
      { name: "REDIS_TLS", default: "`false`", meaning: "TLS to sentinels and cluster nodes" },
      { name: "REDIS_TLS_CA_FILE", default: "unset", meaning: "a private CA (PEM file)" },
      { name: "REDIS_TLS_CERT_FILE", default: "unset", meaning: "a client certificate (PEM file)" },
      { name: "REDIS_TLS_KEY_FILE", default: "unset", meaning: "the client certificate's key (PEM file)" }
    ]
  },
  {
    title: "Proxy",
    variables: [
      {
        name: "PROXY_ALLOW",
        default: "every path but the refused ones",
        meaning: "comma-separated WeChat API path prefixes the proxy forwards, e.g. `cgi-bin/message,cgi-bin/media`"
      },
      { name: "PROXY_MAX_BODY_BYTES", default: "`20971520` (20 MiB)", meaning: "the proxy's request body limit" }
    ]
  },
  {
    title: "Tracing",
    variables: [
      {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        default: "unset (no tracing)",
        meaning: "OTLP/HTTP collector base URL; spans go to `<URL>/v1/traces` (needs `npm i " +
          "@effect/opentelemetry@^0.64`); token reads and the calls the proxy and the gateway forward get no server " +
          "span (it would cost more than they do)"
      },
      {
        name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        default: "unset",
        meaning: "the full traces URL, in place of the one derived from `OTEL_EXPORTER_OTLP_ENDPOINT`"
      },
      { name: "OTEL_SERVICE_NAME", default: "`effect-wechat-token`", meaning: "the traces' service name" }
    ]
  },
  {
    title: "Tuning",
    variables: [
      {
        name: "GATEWAY",
        default: "`true`",
        meaning:
          "WeChat's own paths (`/cgi-bin/…`, `/sns/…`) answer SDKs unchanged: gateway tokens for client keys, calls forwarded with the real token (see docs/gateway.md)"
      },
      {
        name: "FAST_PATH",
        default: "`true`",
        meaning: "Node answers `GET access-token` for a held token in front of the Effect app (same answer, faster)"
      },
      {
        name: "COMPACT_HEAP",
        default: "`true`",
        meaning: "cap V8's old generation at 20 % above its live size (less RSS with many apps)"
      }
    ]
  },
  {
    title: "Business servers (`RemoteTokenLayer.layerConfig`) and the `token` command",
    variables: [
      { name: "TOKEN_SERVER_URL", default: "required", meaning: "the central server's base URL" },
      { name: "TOKEN_SERVER_KEY", default: "required", meaning: "the client key to present" }
    ]
  }
]

/** Every variable, in the table's order. */
export const variables: ReadonlyArray<Variable> = groups.flatMap((group) => group.variables)

/** Every name the environment may carry: each variable, and `NAME_FILE` for those accepted from a file. */
export const names: ReadonlyArray<string> = variables.flatMap((variable) =>
  variable.file === true ? [variable.name, `${variable.name}_FILE`] : [variable.name]
)
