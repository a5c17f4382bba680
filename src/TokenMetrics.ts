/**
 * Effect metrics the engine records; the server exposes them as Prometheus text.
 *
 * @since 0.1.0
 */
import { Duration, Metric, MetricBoundaries } from "effect"
import * as OwnerId from "./OwnerId.js"

/**
 * Upstream fetches that produced a token or ticket, tagged `app`, `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshes = Metric.counter("wechat_token_refreshes_total", {
  description: "Upstream fetches that produced a new token or ticket",
  incremental: true
})

/**
 * Failed upstream fetches, tagged `app`, `kind`, `cause` (errcode or transport reason).
 *
 * @since 0.1.0
 * @category metrics
 */
export const failures = Metric.counter("wechat_token_failures_total", {
  description: "Failed upstream fetches by cause (errcode or transport reason)",
  incremental: true
})

/**
 * A histogram of call latencies in seconds (Prometheus' base unit), from
 * 5 ms to 10 s: what a call to WeChat takes. Takes a `Duration`, so
 * `Metric.trackDuration` feeds it.
 *
 * @since 0.3.0
 * @category constructors
 */
export const latencySeconds = (name: string, description: string): Metric.Metric.Histogram<Duration.Duration> =>
  Metric.histogram(
    name,
    MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    description
  ).pipe(Metric.mapInput(Duration.toSeconds))

/**
 * Upstream call latency in seconds (Prometheus' base unit), tagged
 * `endpoint`. Takes a `Duration`, so `Metric.trackDuration` feeds it.
 *
 * @since 0.1.0
 * @category metrics
 */
export const upstreamLatency = latencySeconds(
  "wechat_upstream_latency_seconds",
  "Latency of WeChat upstream calls in seconds"
)

/**
 * Above this many configured owners, the `app` label no longer names each
 * one: a server of 100,000 apps would otherwise expose millions of series.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_LABELLED_OWNERS = 1_000

/**
 * The `app` label of a credential's series: the owner itself; for a
 * third-party platform's authorizer, the platform's app id (a platform may
 * have 100,000 authorizers); for a corp that installed a WeCom suite, the
 * suite id; `*` for every owner of a server configured with
 * more than `MAX_LABELLED_OWNERS`.
 *
 * @since 0.3.0
 * @category utils
 */
export const ownerLabel = (owner: string, configuredOwners: number): string =>
  OwnerId.isAuthorizer(owner)
    ? OwnerId.authorizerParts(owner).componentAppId
    : OwnerId.isSuiteCorp(owner)
    ? owner.slice(0, owner.indexOf(":"))
    : configuredOwners > MAX_LABELLED_OWNERS
    ? "*"
    : owner
