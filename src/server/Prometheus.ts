/**
 * Renders Effect's metric registry (`Metric.snapshot`) as Prometheus text
 * exposition format 0.0.4.
 *
 * @since 0.1.0
 */
import { Effect, Metric, MetricKey, MetricKeyType, type MetricLabel, MetricPair, MetricState, Option } from "effect"
import { collectDefaultMetrics, Registry } from "prom-client"

/**
 * A label value with `\`, `"` and newlines escaped as the format requires.
 *
 * @since 0.1.0
 * @category utils
 */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

// Metric and label names may only hold [a-zA-Z0-9_:]; Effect allows anything.
const sanitizeName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const labels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, extra?: readonly [string, string]): string => {
  const all = extra === undefined
    ? tags.map((tag) => [tag.key, tag.value] as const)
    : [...tags.map((tag) => [tag.key, tag.value] as const), extra]
  return all.length === 0
    ? ""
    : `{${all.map(([key, value]) => `${sanitizeName(key)}="${escapeLabelValue(value)}"`).join(",")}}`
}

const number = (value: number | bigint): string =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isNaN(value)
    ? "NaN"
    : value === Infinity
    ? "+Inf"
    : value === -Infinity
    ? "-Inf"
    : String(value)

interface Family {
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly help: string | undefined
  readonly lines: Array<string>
}

const render = (
  pair: MetricPair.MetricPair.Untyped,
  name: string
): { type: Family["type"]; lines: Array<string> } | undefined => {
  const { tags } = pair.metricKey
  const state = pair.metricState
  if (MetricState.isCounterState(state)) {
    return { type: "counter", lines: [`${name}${labels(tags)} ${number(state.count)}`] }
  }
  if (MetricState.isGaugeState(state)) {
    return { type: "gauge", lines: [`${name}${labels(tags)} ${number(state.value)}`] }
  }
  if (MetricState.isHistogramState(state)) {
    const lines: Array<string> = []
    let sawInfinity = false
    for (const [boundary, cumulative] of state.buckets) {
      sawInfinity = sawInfinity || boundary === Infinity
      lines.push(`${name}_bucket${labels(tags, ["le", number(boundary)])} ${cumulative}`)
    }
    if (!sawInfinity) lines.push(`${name}_bucket${labels(tags, ["le", "+Inf"])} ${state.count}`)
    lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    return { type: "histogram", lines }
  }
  if (MetricState.isFrequencyState(state)) {
    // A frequency counts occurrences per string: one counter series per value.
    return {
      type: "counter",
      lines: Array.from(state.occurrences, ([key, count]) => `${name}${labels(tags, ["key", key])} ${count}`)
    }
  }
  if (MetricState.isSummaryState(state)) {
    const lines = state.quantiles.flatMap(([quantile, value]) =>
      Option.isSome(value) ? [`${name}${labels(tags, ["quantile", number(quantile)])} ${number(value.value)}`] : []
    )
    lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    return { type: "summary", lines }
  }
  return undefined
}

// Effect's runtime records these for every fiber (runtime metrics are on in
// the default runtime flags) with names Prometheus tools reject: counters
// without `_total`, a counter that goes down, no HELP. They are worth
// keeping, a leaked fiber shows in `effect_fiber_active`, so they are
// renamed, typed and described here. Each fiber carries whatever metric
// labels its parent had (the engine tags its fibers with app and kind), so
// each is summed into one unlabelled series: fibers per app would multiply
// the series by the number of apps. The lifetime histogram is left out: 36
// buckets in milliseconds behind a `time_unit` label, per label set, for a
// figure nobody alerts on.
interface RuntimeFamily {
  readonly name: string
  readonly type: "counter" | "gauge"
  readonly help: string
}

const RUNTIME_METRICS: ReadonlyMap<string, RuntimeFamily | "omit"> = new Map<string, RuntimeFamily | "omit">([
  ["effect_fiber_active", { name: "effect_fiber_active", type: "gauge", help: "Effect fibers running now" }],
  ["effect_fiber_started", { name: "effect_fiber_started_total", type: "counter", help: "Effect fibers started" }],
  ["effect_fiber_successes", {
    name: "effect_fiber_successes_total",
    type: "counter",
    help: "Effect fibers that ended with a success"
  }],
  ["effect_fiber_failures", {
    name: "effect_fiber_failures_total",
    type: "counter",
    help: "Effect fibers that ended with a failure"
  }],
  ["effect_fiber_lifetimes", "omit"]
])

const runtimeValue = (state: MetricState.MetricState.Untyped): number =>
  MetricState.isCounterState(state)
    ? Number(state.count)
    : MetricState.isGaugeState(state)
    ? Number(state.value)
    : 0

/**
 * Renders metric pairs, grouped into one family per metric name, each with
 * its `# HELP` and `# TYPE` lines. Families come out sorted by name so
 * consecutive scrapes are easy to compare.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (pairs: Iterable<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const runtime = new Map<RuntimeFamily, number>()
  for (const pair of pairs) {
    const known = RUNTIME_METRICS.get(pair.metricKey.name)
    if (known !== undefined) {
      if (known !== "omit") runtime.set(known, (runtime.get(known) ?? 0) + runtimeValue(pair.metricState))
      continue
    }
    const name = sanitizeName(pair.metricKey.name)
    const rendered = render(pair, name)
    if (rendered === undefined) continue
    const family = families.get(name)
    if (family === undefined) {
      families.set(name, {
        type: rendered.type,
        help: Option.getOrUndefined(pair.metricKey.description),
        lines: rendered.lines
      })
    } else {
      family.lines.push(...rendered.lines)
    }
  }
  for (const [known, total] of runtime) {
    families.set(known.name, { type: known.type, help: known.help, lines: [`${known.name} ${number(total)}`] })
  }
  const out: Array<string> = []
  for (const name of Array.from(families.keys()).sort()) {
    const family = families.get(name)!
    if (family.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${name} ${family.type}`, ...family.lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

// The label that names an app, a corp's app or a component.
const OWNER_LABEL = "app"

// Gauges whose sum over the owners is itself a count (valid credentials,
// credentials held).
const COUNT_GAUGES = new Set(["wechat_token_valid", "wechat_token_credentials"])

// Gauges per owner whose total is an extreme: the shortest remaining life and
// the oldest credential say whether anything needs a look, and name no app.
const EXTREME_GAUGES: ReadonlyMap<string, (a: number, b: number) => number> = new Map([
  ["wechat_token_expires_in_seconds", Math.min],
  ["wechat_token_age_seconds", Math.max]
])

// Two states of one family as one: counts and sums add up, an extreme gauge keeps the extreme, a histogram's
// buckets (the same boundaries: one key type) add up bucket by bucket.
const merge = (
  name: string,
  a: MetricState.MetricState.Untyped,
  b: MetricState.MetricState.Untyped
): MetricState.MetricState.Untyped => {
  if (MetricState.isHistogramState(a) && MetricState.isHistogramState(b)) {
    return MetricState.histogram({
      buckets: a.buckets.map(([boundary, count], index) => [boundary, count + (b.buckets[index]?.[1] ?? 0)] as const),
      count: a.count + b.count,
      min: Math.min(a.min, b.min),
      max: Math.max(a.max, b.max),
      sum: a.sum + b.sum
    })
  }
  if (MetricState.isCounterState(a)) return MetricState.counter(runtimeValue(a) + runtimeValue(b))
  const extreme = EXTREME_GAUGES.get(name)
  return MetricState.gauge(
    extreme === undefined ? runtimeValue(a) + runtimeValue(b) : extreme(runtimeValue(a), runtimeValue(b))
  )
}

// `key` with `tags` in place of its own.
const retagged = (
  key: MetricKey.MetricKey.Untyped,
  tags: ReadonlyArray<MetricLabel.MetricLabel>
): MetricKey.MetricKey.Untyped => {
  const description = Option.getOrUndefined(key.description)
  if (MetricKeyType.isHistogramKey(key.keyType)) {
    return MetricKey.taggedWithLabels(MetricKey.histogram(key.name, key.keyType.boundaries, description), tags)
  }
  return MetricKeyType.isCounterKey(key.keyType)
    ? MetricKey.taggedWithLabels(MetricKey.counter(key.name, { description }), tags)
    : MetricKey.taggedWithLabels(MetricKey.gauge(key.name, { description }), tags)
}

/**
 * `pairs` without the label naming each owner: counters, histograms and the
 * gauges that count credentials summed over the owners into one series per
 * remaining label set; other per-owner gauges (an age, a remaining life)
 * have no meaningful total and are left out. What a scrape without an ops
 * key sees: which apps the server serves is no business of whoever reaches
 * the port.
 *
 * @since 0.3.0
 * @category utils
 */
export const withoutOwners = (
  pairs: Iterable<MetricPair.MetricPair.Untyped>
): Array<MetricPair.MetricPair.Untyped> => {
  const out: Array<MetricPair.MetricPair.Untyped> = []
  const totals = new Map<
    string,
    { readonly key: MetricKey.MetricKey.Untyped; state: MetricState.MetricState.Untyped }
  >()
  for (const pair of pairs) {
    const { metricKey: key, metricState: state } = pair
    if (!key.tags.some((tag) => tag.key === OWNER_LABEL)) {
      out.push(pair)
      continue
    }
    const summable = MetricState.isCounterState(state) || MetricState.isHistogramState(state) ||
      (MetricState.isGaugeState(state) && (COUNT_GAUGES.has(key.name) || EXTREME_GAUGES.has(key.name)))
    if (!summable) continue
    const tags = key.tags.filter((tag) => tag.key !== OWNER_LABEL)
    const id = `${key.name}\u0000${tags.map((tag) => `${tag.key}=${tag.value}`).join("\u0000")}`
    const held = totals.get(id)
    if (held === undefined) totals.set(id, { key: retagged(key, tags), state })
    else held.state = merge(key.name, held.state, state)
  }
  for (const { key, state } of totals.values()) out.push(MetricPair.unsafeMake(key, state))
  return out
}

// prom-client's default collectors give the process and Node figures every
// dashboard knows by name (`process_cpu_seconds_total`,
// `process_resident_memory_bytes`, `process_open_fds`,
// `nodejs_eventloop_lag_seconds`, `nodejs_heap_size_used_bytes`, …). On a
// registry of this module's own, made on the first scrape: the global one
// belongs to whatever else the process embeds, and a library that merely
// imports this module starts no event-loop monitor.
let processRegistry: Registry | undefined
const MISNAMED = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]

/**
 * Process and Node runtime metrics under their standard names, as
 * Prometheus text (no label names an app).
 *
 * @since 0.3.0
 * @category metrics
 */
export const processMetrics: Effect.Effect<string> = Effect.promise(() => {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
    // Gauges named like counters, which Prometheus tools reject; the same
    // figures remain, by type, in `nodejs_active_handles` and its siblings.
    for (const name of MISNAMED) processRegistry.removeSingleMetric(name)
  }
  return processRegistry.metrics()
})

/**
 * The whole registry of this process as Prometheus text.
 *
 * @since 0.1.0
 * @category metrics
 */
export const scrape: Effect.Effect<string> = Effect.zipWith(
  Metric.snapshot,
  processMetrics,
  (pairs, process) => format(pairs) + process
)

/**
 * The registry without a series per owner (`withoutOwners`), as Prometheus text.
 *
 * @since 0.3.0
 * @category metrics
 */
export const scrapeTotals: Effect.Effect<string> = Effect.zipWith(
  Metric.snapshot,
  processMetrics,
  (pairs, process) => format(withoutOwners(pairs)) + process
)
