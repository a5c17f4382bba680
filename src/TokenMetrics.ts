/**
 * Effect metrics the engine records; the server exposes them as Prometheus text.
 *
 * @since 0.1.0
 */
import { Duration, Metric, MetricBoundaries } from "effect"

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
 * Upstream call latency in seconds (Prometheus' base unit), tagged
 * `endpoint`. Takes a `Duration`, so `Metric.trackDuration` feeds it.
 *
 * @since 0.1.0
 */
export const upstreamLatency: Metric.Metric.Histogram<Duration.Duration> = Metric.histogram(
  "wechat_upstream_latency_seconds",
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  "Latency of WeChat upstream calls in seconds"
).pipe(Metric.mapInput(Duration.toSeconds))
