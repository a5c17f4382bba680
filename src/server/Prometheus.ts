/**
 * Renders Effect's metric registry (`Metric.snapshot`) as Prometheus text
 * exposition format 0.0.4.
 *
 * @since 0.1.0
 */
import { Effect, Metric, type MetricLabel, type MetricPair, MetricState, Option } from "effect"

/**
 * A label value with `\`, `"` and newlines escaped as the format requires.
 *
 * @since 0.1.0
 */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

// Metric and label names may only hold [a-zA-Z0-9_:]; Effect allows anything.
const sanitizeName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")

const labels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, extra?: readonly [string, string]): string => {
  const all = extra === undefined ? tags.map((tag) => [tag.key, tag.value] as const) : [...tags.map((tag) => [tag.key, tag.value] as const), extra]
  return all.length === 0 ? "" : `{${all.map(([key, value]) => `${sanitizeName(key)}="${escapeLabelValue(value)}"`).join(",")}}`
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

const render = (pair: MetricPair.MetricPair.Untyped, name: string): { type: Family["type"]; lines: Array<string> } | undefined => {
  const { tags } = pair.metricKey
  const state = pair.metricState
  if (MetricState.isCounterState(state)) return { type: "counter", lines: [`${name}${labels(tags)} ${number(state.count)}`] }
  if (MetricState.isGaugeState(state)) return { type: "gauge", lines: [`${name}${labels(tags)} ${number(state.value)}`] }
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
  ["effect_fiber_successes", { name: "effect_fiber_successes_total", type: "counter", help: "Effect fibers that ended with a success" }],
  ["effect_fiber_failures", { name: "effect_fiber_failures_total", type: "counter", help: "Effect fibers that ended with a failure" }],
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
      families.set(name, { type: rendered.type, help: Option.getOrUndefined(pair.metricKey.description), lines: rendered.lines })
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

/**
 * The whole registry of this process as Prometheus text.
 *
 * @since 0.1.0
 */
export const scrape: Effect.Effect<string> = Effect.map(Metric.snapshot, format)
