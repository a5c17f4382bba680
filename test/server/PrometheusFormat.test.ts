/**
 * The text formatter on its own, from hand-made registry snapshots: exact
 * output, so a change in the exposition format shows here line by line
 * rather than as a promtool complaint about a live scrape.
 */
import { describe, expect, it } from "@effect/vitest"
import { MetricBoundaries, MetricKey, MetricPair, MetricState, Option } from "effect"
import { escapeLabelValue, format } from "../../src/server/Prometheus.js"

const withTags = <K extends MetricKey.MetricKey.Untyped>(key: K, tags: ReadonlyArray<readonly [string, string]>): K =>
  tags.reduce((tagged, [name, value]) => MetricKey.tagged(tagged, name, value) as K, key)

const counter = (
  name: string,
  count: number,
  options: { readonly description?: string; readonly tags?: ReadonlyArray<readonly [string, string]> } = {}
) =>
  MetricPair.unsafeMake(
    withTags(MetricKey.counter(name, { description: options.description }), options.tags ?? []),
    MetricState.counter(count)
  )

const gauge = (name: string, value: number, tags: ReadonlyArray<readonly [string, string]> = []) =>
  MetricPair.unsafeMake(withTags(MetricKey.gauge(name), tags), MetricState.gauge(value))

const bigintGauge = (name: string, value: bigint) =>
  MetricPair.unsafeMake(MetricKey.gauge(name, { bigint: true }), MetricState.gauge(value))

const histogram = (
  name: string,
  state: { readonly buckets: ReadonlyArray<readonly [number, number]>; readonly count: number; readonly sum: number },
  tags: ReadonlyArray<readonly [string, string]> = []
) =>
  MetricPair.unsafeMake(
    withTags(
      MetricKey.histogram(name, MetricBoundaries.fromIterable(state.buckets.map(([boundary]) => boundary)), "Latency"),
      tags
    ),
    MetricState.histogram({ ...state, min: 0, max: state.sum })
  )

const lines = (...all: ReadonlyArray<string>) => `${all.join("\n")}\n`

describe("Prometheus.format", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>
    readonly text: string
  }> = [
    { name: "an empty registry is an empty page, not a lone newline", pairs: [], text: "" },
    {
      name: "a counter: HELP from the description, TYPE counter, its labels in order",
      pairs: [
        counter("wechat_token_refreshes_total", 3, {
          description: "Tokens fetched",
          tags: [["app", "wx1"], ["kind", "access_token"]]
        })
      ],
      text: lines(
        "# HELP wechat_token_refreshes_total Tokens fetched",
        "# TYPE wechat_token_refreshes_total counter",
        "wechat_token_refreshes_total{app=\"wx1\",kind=\"access_token\"} 3"
      )
    },
    {
      name: "no description: no HELP line; no labels: no braces",
      pairs: [gauge("up", 1)],
      text: lines("# TYPE up gauge", "up 1")
    },
    {
      name: "gauge values: fractions, bigints, NaN and both infinities as the format spells them",
      pairs: [
        gauge("g", 0.25, [["v", "a"]]),
        gauge("g", Number.NaN, [["v", "b"]]),
        gauge("g", Infinity, [["v", "c"]]),
        gauge("g", -Infinity, [["v", "d"]]),
        bigintGauge("h", 12345678901234567890n)
      ],
      text: lines(
        "# TYPE g gauge",
        "g{v=\"a\"} 0.25",
        "g{v=\"b\"} NaN",
        "g{v=\"c\"} +Inf",
        "g{v=\"d\"} -Inf",
        "# TYPE h gauge",
        "h 12345678901234567890"
      )
    },
    {
      name: "label values escape backslash, double quote and newline; HELP escapes backslash and newline",
      pairs: [counter("c_total", 1, { description: "a \\ b\nc \"d\"", tags: [["path", "C:\\x \"y\"\nz"]] })],
      text: lines(
        "# HELP c_total a \\\\ b\\nc \"d\"",
        "# TYPE c_total counter",
        "c_total{path=\"C:\\\\x \\\"y\\\"\\nz\"} 1"
      )
    },
    {
      name: "metric and label names outside [a-zA-Z0-9_:] become _, and a leading digit gets one",
      pairs: [counter("http.requests-total", 2, { tags: [["status-code", "200"]] }), gauge("9lives", 9)],
      text: lines(
        "# TYPE _9lives gauge",
        "_9lives 9",
        "# TYPE http_requests_total counter",
        "http_requests_total{status_code=\"200\"} 2"
      )
    },
    {
      name: "a histogram: cumulative buckets with le, a +Inf bucket equal to the count, then _sum and _count",
      pairs: [histogram("latency_seconds", { buckets: [[0.1, 1], [1, 3]], count: 4, sum: 5.5 }, [["app", "wx1"]])],
      text: lines(
        "# HELP latency_seconds Latency",
        "# TYPE latency_seconds histogram",
        "latency_seconds_bucket{app=\"wx1\",le=\"0.1\"} 1",
        "latency_seconds_bucket{app=\"wx1\",le=\"1\"} 3",
        "latency_seconds_bucket{app=\"wx1\",le=\"+Inf\"} 4",
        "latency_seconds_sum{app=\"wx1\"} 5.5",
        "latency_seconds_count{app=\"wx1\"} 4"
      )
    },
    {
      name: "a histogram whose boundaries already end at infinity gets no second +Inf bucket",
      pairs: [histogram("h", { buckets: [[1, 2], [Infinity, 3]], count: 3, sum: 4 })],
      text: lines(
        "# HELP h Latency",
        "# TYPE h histogram",
        "h_bucket{le=\"1\"} 2",
        "h_bucket{le=\"+Inf\"} 3",
        "h_sum 4",
        "h_count 3"
      )
    },
    {
      name: "series of one name share one HELP and TYPE; families come out sorted by name",
      pairs: [
        counter("z_total", 1, { description: "Zed", tags: [["app", "a"]] }),
        gauge("a", 5),
        counter("z_total", 2, { description: "Zed", tags: [["app", "b"]] })
      ],
      text: lines(
        "# TYPE a gauge",
        "a 5",
        "# HELP z_total Zed",
        "# TYPE z_total counter",
        "z_total{app=\"a\"} 1",
        "z_total{app=\"b\"} 2"
      )
    },
    {
      name: "a frequency is a counter with one series per value, under the label key",
      pairs: [
        MetricPair.unsafeMake(
          MetricKey.frequency("errors", { description: "Errors by code" }),
          MetricState.frequency(new Map([["40001", 2], ["-1", 5]]))
        )
      ],
      text: lines(
        "# HELP errors Errors by code",
        "# TYPE errors counter",
        "errors{key=\"40001\"} 2",
        "errors{key=\"-1\"} 5"
      )
    },
    {
      name: "a summary: one series per known quantile (an unknown one is left out), then _sum and _count",
      pairs: [
        MetricPair.unsafeMake(
          MetricKey.summary({ name: "s", maxAge: "1 minute", maxSize: 10, error: 0.01, quantiles: [0.5, 0.99] }),
          MetricState.summary({
            error: 0.01,
            quantiles: [[0.5, Option.some(0.2)], [0.99, Option.none()]],
            count: 7,
            min: 0,
            max: 1,
            sum: 1.5
          })
        )
      ],
      text: lines("# TYPE s summary", "s{quantile=\"0.5\"} 0.2", "s_sum 1.5", "s_count 7")
    },
    {
      name:
        "Effect's runtime metrics: renamed with _total for counters, described, summed over labels; lifetimes left out",
      pairs: [
        counter("effect_fiber_started", 3, { tags: [["app", "a"]] }),
        counter("effect_fiber_started", 4, { tags: [["app", "b"]] }),
        counter("effect_fiber_successes", 2),
        counter("effect_fiber_failures", 1),
        gauge("effect_fiber_active", 2, [["app", "a"]]),
        gauge("effect_fiber_active", 1, [["app", "b"]]),
        histogram("effect_fiber_lifetimes", { buckets: [[1, 1]], count: 1, sum: 1 })
      ],
      text: lines(
        "# HELP effect_fiber_active Effect fibers running now",
        "# TYPE effect_fiber_active gauge",
        "effect_fiber_active 3",
        "# HELP effect_fiber_failures_total Effect fibers that ended with a failure",
        "# TYPE effect_fiber_failures_total counter",
        "effect_fiber_failures_total 1",
        "# HELP effect_fiber_started_total Effect fibers started",
        "# TYPE effect_fiber_started_total counter",
        "effect_fiber_started_total 7",
        "# HELP effect_fiber_successes_total Effect fibers that ended with a success",
        "# TYPE effect_fiber_successes_total counter",
        "effect_fiber_successes_total 2"
      )
    }
  ]

  for (const { name, pairs, text } of cases) {
    it(name, () => {
      expect(format(pairs)).toBe(text)
    })
  }

  it("escapeLabelValue escapes exactly backslash, double quote and newline", () => {
    for (
      const [raw, escaped] of [
        ["plain /v1/apps/{appId}", "plain /v1/apps/{appId}"],
        ["a\\b", "a\\\\b"],
        ["say \"hi\"", "say \\\"hi\\\""],
        ["two\nlines", "two\\nlines"],
        // The backslash is escaped first, so an escape's own backslash is not doubled again.
        ["\\\"\n", "\\\\\\\"\\n"],
        ["tab\tand\rcr", "tab\tand\rcr"],
        ["", ""]
      ] as const
    ) {
      expect({ raw, escaped: escapeLabelValue(raw) }).toEqual({ raw, escaped })
    }
  })
})
