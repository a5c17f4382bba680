/**
 * Metrics the server records on top of the engine's: served requests, and
 * gauges of each credential's age and remaining life, computed at scrape time.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Metric, MetricKey, MetricLabel, Option } from "effect"
import { usableUntil } from "../Token.js"
import type { TokenEngineShape } from "../TokenEngine.js"

const requestsKey = MetricKey.counter("wechat_token_server_requests_total", {
  description: "HTTP requests served by the token server, by route pattern, method and status",
  incremental: true
})

/**
 * Served HTTP requests, tagged `route` (the route pattern, never a raw path),
 * `method` and `status`.
 *
 * @since 0.1.0
 */
export const requests = Metric.fromMetricKey(requestsKey)

/**
 * @since 0.1.0
 */
export const tokenAge = Metric.gauge("wechat_token_age_seconds", {
  description: "Seconds since the credential held now was fetched from WeChat"
})

/**
 * @since 0.1.0
 */
export const tokenExpiresIn = Metric.gauge("wechat_token_expires_in_seconds", {
  description: "Seconds the credential held now may still be handed out (negative: expired)"
})

/**
 * @since 0.1.0
 */
export const tokenValid = Metric.gauge("wechat_token_valid", {
  description: "1 while the app holds a usable credential of this kind, else 0"
})

const ROUTES = /^\/v1\/apps\/[^/]+\/(access-token|access-token\/refresh|jsapi-ticket|jssdk-config)$/
const FIXED = new Set(["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])

/**
 * The route pattern of a request path: app ids are folded into `{appId}` and
 * anything unknown into `unmatched`, so a scanner cannot blow up the label set.
 *
 * @since 0.1.0
 */
export const routeOf = (url: string): string => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  if (FIXED.has(path)) return path
  const match = ROUTES.exec(path)
  return match === null ? "unmatched" : `/v1/apps/{appId}/${match[1]}`
}

// One metric per tagged key, built once. `Metric.tagged` would merge its
// tags into a new array on every update and so build and hash the tagged key
// again each time: on the hot path that cost more than the answer.
const counters = new Map<string, Metric.Metric.Counter<number>>()

/**
 * Counts one served request.
 *
 * @since 0.1.0
 */
export const countRequest = (method: string, url: string, status: number): Effect.Effect<void> => {
  const route = routeOf(url)
  const key = `${method} ${route} ${status}`
  let counter = counters.get(key)
  if (counter === undefined) {
    counter = Metric.fromMetricKey(MetricKey.taggedWithLabels(requestsKey, [
      MetricLabel.make("route", route),
      MetricLabel.make("method", method),
      MetricLabel.make("status", String(status))
    ]))
    counters.set(key, counter)
  }
  return Metric.increment(counter)
}

/**
 * Sets the per-credential gauges from the engine's status.
 *
 * @since 0.1.0
 */
export const observeCredentials = (engine: TokenEngineShape): Effect.Effect<void> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const status of yield* engine.status) {
      const tag = <A, B, C>(metric: Metric.Metric<A, B, C>) =>
        metric.pipe(Metric.tagged("app", status.appId), Metric.tagged("kind", status.kind))
      yield* Metric.set(tag(tokenValid), status.valid ? 1 : 0)
      if (Option.isSome(status.record)) {
        const record = status.record.value
        yield* Metric.set(tag(tokenAge), (now - record.fetchedAt) / 1000)
        yield* Metric.set(tag(tokenExpiresIn), (usableUntil(record) - now) / 1000)
      }
    }
  })
