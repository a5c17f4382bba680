/**
 * Effect metrics the engine records; the server exposes them as Prometheus text.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Upstream fetches that produced a token or ticket, tagged `app`, `kind`.
 *
 * @since 0.1.0
 */
export const refreshes = Metric.counter("wechat_token_refreshes_total", {
  description: "Upstream fetches that produced a new token or ticket",
  incremental: true
})

/**
 * Failed upstream fetches, tagged `app`, `kind`, `cause` (errcode or transport reason).
 *
 * @since 0.1.0
 */
export const failures = Metric.counter("wechat_token_failures_total", {
  description: "Failed upstream fetches by cause (errcode or transport reason)",
  incremental: true
})

/**
 * Upstream call latency in seconds, tagged `endpoint`.
 *
 * @since 0.1.0
 */
export const upstreamLatency = Metric.timerWithBoundaries(
  "wechat_upstream_latency",
  [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  "Latency of WeChat upstream calls in milliseconds"
)
