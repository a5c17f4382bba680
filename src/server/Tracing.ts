/**
 * Traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard
 * variable: the collector's base URL, `/v1/traces` appended; or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as the full URL), and nothing loaded
 * otherwise: `@effect/opentelemetry` is an optional peer dependency, imported
 * only then.
 *
 * Spans come from the platform (`http.server` for each request the Effect
 * app answers, `http.client` for each call to WeChat) and from this server
 * (token store calls). The hot routes have no server span, for its cost:
 * token reads, and the calls the proxy and the gateway forward to WeChat.
 * Every span passes through `scrub` first: the platform records `url.full`,
 * `url.query` and headers, and WeChat puts the app secret and the access
 * token in the query (`/cgi-bin/token?secret=`, `?access_token=`), so a
 * query never reaches an attribute, and headers only from a short list that
 * cannot carry a credential.
 *
 * @since 0.3.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Config, ConfigError, Effect, Layer, Option, Tracer } from "effect"
import { version } from "../internal/version.js"
import { TokenStore, type TokenStoreShape } from "../TokenStore.js"

// Headers that never hold a credential and help reading a trace.
const SAFE_HEADERS = new Set(["content-type", "content-length", "user-agent", "accept", "content-encoding"])

/**
 * The attribute as it may be exported, or `undefined` to drop it.
 *
 * @since 0.3.0
 * @category scrubbing
 */
export const scrubAttribute = (key: string, value: unknown): unknown => {
  if (key === "url.query") return undefined
  if (key === "url.full" && typeof value === "string") {
    const question = value.indexOf("?")
    return question < 0 ? value : value.slice(0, question)
  }
  const header = /^http\.(request|response)\.header\.(.+)$/.exec(key)
  if (header !== null) return SAFE_HEADERS.has(header[2]!.toLowerCase()) ? value : undefined
  return value
}

/**
 * `tracer` with every span's attributes passed through `scrubAttribute`.
 *
 * @since 0.3.0
 * @category scrubbing
 */
export const scrub = (tracer: Tracer.Tracer): Tracer.Tracer =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = tracer.span(name, parent, context, links, startTime, kind, options)
      const attribute = span.attribute.bind(span)
      span.attribute = (key, value) => {
        const kept = scrubAttribute(key, value)
        if (kept !== undefined) attribute(key, kept)
      }
      return span
    },
    context: (f, fiber) => tracer.context(f, fiber)
  })

/**
 * Where traces go, from the OTLP variables; `None` when tracing is off.
 *
 * @since 0.3.0
 * @category config
 */
export const endpoint: Config.Config<Option.Option<string>> = Config.all([
  Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
  Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"))
]).pipe(
  Config.map(([traces, base]) =>
    Option.orElse(traces, () => Option.map(base, (url) => `${url.replace(/\/+$/, "")}/v1/traces`))
  )
)

/**
 * Sets the tracer when an endpoint is configured; otherwise provides
 * nothing and loads nothing.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = yield* endpoint
    if (Option.isNone(url)) return Layer.empty
    const serviceName = yield* Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("effect-wechat-token"))
    return Layer.unwrapScoped(Effect.gen(function*() {
      const [OtlpTracer, OtlpSerialization] = yield* Effect.tryPromise({
        try: () =>
          Promise.all([import("@effect/opentelemetry/OtlpTracer"), import("@effect/opentelemetry/OtlpSerialization")]),
        catch: () =>
          ConfigError.InvalidData(
            ["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "OTEL_EXPORTER_OTLP_ENDPOINT needs @effect/opentelemetry: npm i @effect/opentelemetry@^0.64"
          )
      })
      const tracer = yield* OtlpTracer.make({
        url: url.value,
        resource: { serviceName, serviceVersion: version }
      }).pipe(Effect.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]))
      return Layer.setTracer(scrub(tracer))
    }))
  })
)

/**
 * `store` with a span around each call, named `token_store.<call>` with the
 * owner and kind as attributes (never a value).
 *
 * @since 0.3.0
 * @category spans
 */
export const storeSpans = (store: TokenStoreShape): TokenStoreShape => ({
  ...store,
  get: (key) =>
    Effect.withSpan(store.get(key), "token_store.get", {
      attributes: { "wechat.owner": key.appId, "wechat.kind": key.kind }
    }),
  list: (kind) => Effect.withSpan(store.list(kind), "token_store.list", { attributes: { "wechat.kind": kind } }),
  set: (record) =>
    Effect.withSpan(store.set(record), "token_store.set", {
      attributes: { "wechat.owner": record.appId, "wechat.kind": record.kind, "wechat.generation": record.generation }
    }),
  lease: (key, leaseMillis) =>
    Effect.withSpan(store.lease(key, leaseMillis), "token_store.lease", {
      attributes: { "wechat.owner": key.appId, "wechat.kind": key.kind }
    })
})

/**
 * The store of the layer it is provided with, with `storeSpans`.
 *
 * @since 0.3.0
 * @category spans
 */
export const layerStoreSpans: Layer.Layer<TokenStore, never, TokenStore> = Layer.effect(
  TokenStore,
  Effect.map(TokenStore, storeSpans)
)
