/**
 * The proxy's metrics, per owner (`app`: an app id or `corpid/agent`, always
 * a configured one) and upstream path prefix (`prefix`: the first two
 * segments, at most `MAX_PREFIXES` distinct values, then `other`). No label
 * ever holds a token, a query or a full path.
 *
 * @since 0.3.0
 */
import { Effect, Metric } from "effect"
import * as TokenMetrics from "../TokenMetrics.js"

/**
 * Requests the proxy answered, tagged `app`, `prefix` and `status` (the
 * status the caller got: WeChat's, or the proxy's own 4xx/5xx).
 *
 * @since 0.3.0
 * @category metrics
 */
export const requests = Metric.counter("wechat_proxy_requests_total", {
  description: "WeChat API calls answered by the proxy, by owner, path prefix and status",
  incremental: true
})

/**
 * Seconds from sending a call upstream to WeChat's answer headers, tagged `app` and `prefix`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const upstreamLatency = TokenMetrics.latencySeconds(
  "wechat_proxy_upstream_latency_seconds",
  "Latency of calls the proxy forwarded to WeChat, in seconds"
)

/**
 * Calls replayed with a new token after WeChat said the first one was dead, tagged `app` and `prefix`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const replays = Metric.counter("wechat_proxy_replays_total", {
  description: "Proxied calls replayed once with a new token after 40001/40014/42001",
  incremental: true
})

/**
 * Calls refused before anything was forwarded, tagged `app` and `reason`
 * (`path_not_allowed`, `invalid_path`, `access_token_not_allowed`, `payload_too_large`).
 *
 * @since 0.3.0
 * @category metrics
 */
export const refusals = Metric.counter("wechat_proxy_refusals_total", {
  description: "Proxied calls refused without forwarding, by owner and reason",
  incremental: true
})

/**
 * Distinct `prefix` label values kept; later ones are counted as `other`.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_PREFIXES = 64

const prefixes = new Set<string>()

/**
 * The `prefix` label for a path prefix: itself while fewer than
 * `MAX_PREFIXES` are known, else `other`.
 *
 * @since 0.3.0
 * @category utils
 */
export const prefixLabel = (prefix: string): string => {
  if (prefixes.has(prefix)) return prefix
  if (prefixes.size >= MAX_PREFIXES) return "other"
  prefixes.add(prefix)
  return prefix
}

/**
 * Why a call was refused without forwarding: the `reason` label of `refusals`.
 *
 * @since 0.3.0
 * @category models
 */
export type RefusalReason = "path_not_allowed" | "invalid_path" | "access_token_not_allowed" | "payload_too_large"

const REASONS: ReadonlyArray<RefusalReason> = [
  "path_not_allowed",
  "invalid_path",
  "access_token_not_allowed",
  "payload_too_large"
]

/**
 * Counts a refusal.
 *
 * @since 0.3.0
 * @category metrics
 */
export const refused = (app: string, reason: RefusalReason): Effect.Effect<void> =>
  Metric.increment(Metric.tagged(Metric.tagged(refusals, "app", app), "reason", reason))

/**
 * Puts the refusal counters of `owners` in the registry at zero, so the
 * series are in the first scrape and `increase()` sees the first refusal.
 * (Requests, latency and replays are per path prefix, known only once called.)
 *
 * @since 0.3.0
 * @category metrics
 */
export const initialize = (owners: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.forEach(
    owners.flatMap((app) => REASONS.map((reason) => [app, reason] as const)),
    ([app, reason]) => Metric.incrementBy(Metric.tagged(Metric.tagged(refusals, "app", app), "reason", reason), 0),
    { discard: true }
  )
