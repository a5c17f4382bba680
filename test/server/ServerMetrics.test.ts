/**
 * The request counter on its own: every path that answers a request (the
 * fast path in Node, the app, Node's own refusals) counts in one counter,
 * the registry's, at once. Nothing waits for a scrape of `/metrics` to be
 * merged in, so any reader of the registry (an exporter, `Metric.value`)
 * sees what `/metrics` shows.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Routes from "../../src/server/Routes.js"
import * as ServerMetrics from "../../src/server/ServerMetrics.js"

const APP = "wx0123456789abcdef"

const series = (method: string, route: string, status: number) =>
  Metric.value(ServerMetrics.requests.pipe(
    Metric.tagged("route", route),
    Metric.tagged("method", method),
    Metric.tagged("status", String(status))
  )).pipe(Effect.map((state) => state.count))

describe("ServerMetrics: one request counter", () => {
  it.effect("a fast-path answer and an app answer of the same route count in the same series, at once", () =>
    Effect.gen(function*() {
      const before = yield* series("GET", Routes.ACCESS_TOKEN, 200)
      ServerMetrics.unsafeCountTokenRead("GET")
      yield* ServerMetrics.countRequest("GET", `/v1/apps/${APP}/access-token?x=1`, 200)
      ServerMetrics.unsafeCountRequest("GET", `/v1/apps/${APP}/access-token`, 200)
      // No scrape in between: the registry holds the count itself.
      expect((yield* series("GET", Routes.ACCESS_TOKEN, 200)) - before).toBe(3)
    }))

  it.effect("HEAD and other statuses and methods are series of their own; unknown paths are `unmatched`", () =>
    Effect.gen(function*() {
      const head = yield* series("HEAD", Routes.ACCESS_TOKEN, 200)
      const unmatched = yield* series("OTHER", "unmatched", 400)
      ServerMetrics.unsafeCountTokenRead("HEAD")
      ServerMetrics.unsafeCountRequest("BREW", "/nowhere", 400)
      expect((yield* series("HEAD", Routes.ACCESS_TOKEN, 200)) - head).toBe(1)
      expect((yield* series("OTHER", "unmatched", 400)) - unmatched).toBe(1)
    }))
})
