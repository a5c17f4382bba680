/**
 * Metrics the server records on top of the engine's: served requests, and
 * gauges of each credential's age and remaining life, computed at scrape time.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Metric, type MetricHook, MetricKey, MetricLabel, type MetricState, Option } from "effect"
import { usableUntil } from "../Token.js"
import type { TokenEngineShape } from "../TokenEngine.js"
import * as TokenMetrics from "../TokenMetrics.js"
import type { TokenStoreShape } from "../TokenStore.js"
import * as Routes from "./Routes.js"

const requestsKey = MetricKey.counter("wechat_token_server_requests_total", {
  description: "HTTP requests served by the token server, by route pattern, method and status",
  incremental: true
})

/**
 * Served HTTP requests, tagged `route` (the route pattern, never a raw path),
 * `method` and `status`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests = Metric.fromMetricKey(requestsKey)

/**
 * Requests being read or answered now, set at scrape time. Back at its
 * resting value after any burst, hostile or not: a request that leaves it
 * higher left a fiber behind.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestsInFlight = Metric.gauge("wechat_token_server_requests_in_flight", {
  description: "HTTP requests the token server is reading or answering now"
})

// A plain count, copied into the gauge at scrape time: updating a metric
// twice more per request costs the token route more than anything else
// this module does for it.
let inFlight = 0

/**
 * @since 0.1.0
 * @category metrics
 */
export const tokenAge = Metric.gauge("wechat_token_age_seconds", {
  description: "Seconds since the credential held now was fetched from WeChat"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const tokenExpiresIn = Metric.gauge("wechat_token_expires_in_seconds", {
  description: "Seconds the credential held now may still be handed out (negative: expired)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const tokenValid = Metric.gauge("wechat_token_valid", {
  description: "1 while the app holds a usable credential of this kind, else 0"
})

/**
 * The route pattern of a request URL (`/v1/apps/{appId}/access-token`), or
 * `unmatched` for anything that is not a route spelled canonically, so a
 * scanner cannot blow up the label set.
 *
 * @since 0.1.0
 * @category utils
 */
export const routeOf = (url: string): string => {
  const known = routesByUrl.get(url)
  if (known !== undefined) return known
  const pattern = Routes.match(Routes.pathOf(url))?.pattern ?? "unmatched"
  // A scanner's endless URLs must not grow the memo: start over when full.
  if (routesByUrl.size >= MAX_REMEMBERED_URLS) routesByUrl.clear()
  routesByUrl.set(url, pattern)
  return pattern
}

// Every token read asks for its route twice (tracing is skipped on the hot
// route, then the request is counted): the URLs of a server's apps repeat,
// so the route table is matched once per URL, not twice per request.
const MAX_REMEMBERED_URLS = 1024
const routesByUrl = new Map<string, string>()

// Node accepts some thirty method names; the label keeps the ones HTTP APIs use.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

/**
 * The `status` a request that got no answer is counted under: the client
 * closed the connection first (nginx's convention).
 *
 * @since 0.1.0
 * @category constants
 */
export const CLIENT_CLOSED = 499

// The one request counter, for every request whichever path answers it
// (the fast path in Node, the app, Node's own refusals): each series' hook
// in the metric registry is looked up once, and counting a request is one
// addition to it, synchronously. The registry holds the count `/metrics`
// reads; nothing is kept aside and merged at scrape time. (`Metric.tagged`
// would build and hash a tagged key on every update: on the hot path that
// cost more than the answer.)
type RequestHook = MetricHook.MetricHook<number, MetricState.MetricState.Counter<number>>
const hooks = new Map<string, RequestHook>()

const requestHook = (method: string, route: string, status: number): RequestHook => {
  const key = `${method} ${route} ${status}`
  let hook = hooks.get(key)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(requestsKey, [
      MetricLabel.make("route", route),
      MetricLabel.make("method", method),
      MetricLabel.make("status", String(status))
    ]))
    hooks.set(key, hook)
  }
  return hook
}

const hookOf = (method: string, url: string, status: number): RequestHook =>
  requestHook(METHODS.has(method) ? method : "OTHER", routeOf(url), status)

/**
 * Counts one served request.
 *
 * @since 0.1.0
 * @category metrics
 */
export const countRequest = (method: string, url: string, status: number): Effect.Effect<void> =>
  Effect.sync(() => unsafeCountRequest(method, url, status))

/**
 * Counts one served request now, outside any fiber: for what Node answers
 * itself (refusals of its parser, the fast path). The same counter as
 * `countRequest`'s.
 *
 * @since 0.3.0
 * @category metrics
 */
export const unsafeCountRequest = (method: string, url: string, status: number): void =>
  hookOf(method, url, status).update(1)

// The fast path's two series, found on its first answer of each method (a
// series appears when something is counted in it, not before).
let tokenReadGet: RequestHook | undefined
let tokenReadHead: RequestHook | undefined

/**
 * Counts one `GET` or `HEAD` of the access-token route answered `200` by
 * the fast path: `unsafeCountRequest` for that route, without reading the
 * route off the URL again.
 *
 * @since 0.3.0
 * @category metrics
 */
export const unsafeCountTokenRead = (method: "GET" | "HEAD"): void => {
  if (method === "GET") (tokenReadGet ??= requestHook("GET", Routes.ACCESS_TOKEN, 200)).update(1)
  else (tokenReadHead ??= requestHook("HEAD", Routes.ACCESS_TOKEN, 200)).update(1)
}

/**
 * A request is being read or answered.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestStarted: Effect.Effect<void> = Effect.sync(() => {
  inFlight += 1
})

/**
 * A request started with `requestStarted` is over, answered with `status`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestEnded = (method: string, url: string, status: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    inFlight -= 1
    return countRequest(method, url, status)
  })

/**
 * Copies the number of requests in flight into its gauge.
 *
 * @since 0.1.0
 * @category metrics
 */
export const observeRequests: Effect.Effect<void> = Effect.suspend(() => Metric.set(requestsInFlight, inFlight))

/**
 * Credentials held now, counted by `app` label, kind and `valid`
 * (`true`/`false`), for the owners `TokenMetrics.ownerLabel` does not name
 * one by one: a third-party platform's authorizers (under the platform's
 * app id), and every app of a server configured with more than
 * `TokenMetrics.MAX_LABELLED_OWNERS` (under `*`). Those have no per-credential
 * gauges: 100,000 of them would be 300,000 series.
 *
 * @since 0.3.0
 * @category metrics
 */
export const credentials = Metric.gauge("wechat_token_credentials", {
  description: "Credentials held now by owners not labelled one by one (authorizers, large deployments), by validity"
})

/**
 * 1 while the server can serve every configured owner from memory (what
 * `/readyz` answers `200` for), else 0: summed over replicas, the number of
 * ready ones.
 *
 * @since 0.3.0
 * @category metrics
 */
export const ready = Metric.gauge("wechat_token_ready", {
  description: "1 while every configured owner can be served now (readyz 200), else 0"
})

/**
 * 1 while the token store answers, else 0 (the engine serves from memory meanwhile).
 *
 * @since 0.3.0
 * @category metrics
 */
export const storeUp = Metric.gauge("wechat_token_store_up", {
  description: "1 while the token store answers, else 0"
})

/**
 * Whether every configured owner can be served from memory at `now`, and
 * the store keeps what it is given: what `/readyz` answers 200 for. A
 * shared store that is down does not make a server unready (the engine
 * serves from memory meanwhile); a store whose writes fail for a reason of
 * this process's own (`TokenStoreShape.writeFailure`) does, since a
 * restart would lose every token held.
 *
 * @since 0.3.0
 * @category metrics
 */
export const isReady = (engine: TokenEngineShape, now: number, writeFailure: Option.Option<string>): boolean =>
  Option.isNone(writeFailure) && engine.servable.every(({ appId, kind }) => engine.peek(appId, now, kind) !== undefined)

/**
 * Why `store` cannot keep what it is given now, if it says so.
 *
 * @since 0.3.0
 * @category metrics
 */
export const writeFailureOf = (store: TokenStoreShape): Effect.Effect<Option.Option<string>> =>
  store.writeFailure ?? Effect.succeedNone

/**
 * Sets `ready` and `storeUp`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const observeReadiness = (engine: TokenEngineShape, store: TokenStoreShape): Effect.Effect<void> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* Metric.set(ready, isReady(engine, now, yield* writeFailureOf(store)) ? 1 : 0)
    yield* Metric.set(storeUp, (yield* store.healthy) ? 1 : 0)
  })

/**
 * Sets the per-credential gauges from the engine's status, or counts the
 * credentials in `credentials` where owners are not labelled one by one.
 *
 * @since 0.1.0
 * @category metrics
 */
export const observeCredentials = (engine: TokenEngineShape): Effect.Effect<void> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    // Counted by the engine per label and kind (one pass over its columns),
    // with the statuses of the owners labelled one by one (a configured
    // few): a million authorizers cost a scrape a few milliseconds.
    const { counts, labelled } = yield* engine.countStatuses(0)
    for (const status of labelled) {
      const tag = <A, B, C>(metric: Metric.Metric<A, B, C>) =>
        metric.pipe(Metric.tagged("app", status.appId), Metric.tagged("kind", status.kind))
      yield* Metric.set(tag(tokenValid), status.valid ? 1 : 0)
      if (Option.isSome(status.record)) {
        const record = status.record.value
        yield* Metric.set(tag(tokenAge), (now - record.fetchedAt) / 1000)
        yield* Metric.set(tag(tokenExpiresIn), (usableUntil(record) - now) / 1000)
      }
    }
    for (const { invalid, kind, labelled, metricsLabel, valid } of counts) {
      if (labelled) continue
      const tagged = (state: string) =>
        credentials.pipe(Metric.tagged("app", metricsLabel), Metric.tagged("kind", kind), Metric.tagged("valid", state))
      yield* Metric.set(tagged("true"), valid)
      yield* Metric.set(tagged("false"), invalid)
    }
  })

/**
 * Puts every documented series in the registry at zero, so each shows up in
 * the first scrape and `rate()`/`increase()` see its first event: the
 * engine's counters per app (its fetch failures without a `cause`, the
 * one label whose values are only known when they happen), and the request
 * counter for each route's success.
 *
 * @since 0.1.0
 * @category metrics
 */
export const initialize = (
  owners: ReadonlyArray<{ readonly appId: string; readonly kind: string }>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* observeRequests
    // Labelled as the engine labels its updates (`TokenMetrics.ownerLabel`).
    const configured = new Set(owners.map(({ appId }) => appId)).size
    const labelled = new Map(owners.map(({ appId, kind }) => {
      const app = TokenMetrics.ownerLabel(appId, configured)
      return [`${app} ${kind}`, { app, kind }] as const
    }))
    for (const labels of labelled.values()) {
      yield* Effect.all([Metric.incrementBy(TokenMetrics.refreshes, 0), Metric.incrementBy(TokenMetrics.failures, 0)])
        .pipe(
          // The same labels, in the same order, as the engine's own updates.
          Effect.tagMetrics(labels)
        )
    }
    for (const route of Routes.all) {
      for (const method of route.methods) {
        if (method !== "HEAD") yield* Effect.sync(() => requestHook(method, route.pattern, 200).update(0))
      }
    }
  })

/**
 * Calls the WeChat-compatible gateway answered, tagged `call` (`Gateway.Call`:
 * `token`, `stable_token`, `wecom_token`, `ticket`, `secret`, `forward`, a
 * third-party platform's `component_token`, `authorizer_token`,
 * `query_auth`, `component`, a WeCom suite's `suite_token`,
 * `provider_token`, `corp_token`, `permanent_code`, `service`) and `outcome` (`ok`; `refused`: a key or token it did not
 * accept, or a call it does not take, nothing sent to WeChat; `failed`: no
 * credential or no answer from WeChat).
 *
 * @since 0.3.0
 * @category metrics
 */
export const gatewayRequests = Metric.counter("wechat_gateway_requests_total", {
  description: "Calls the WeChat-compatible gateway answered, by kind of call and outcome",
  incremental: true
})
