/**
 * The console's history rings and sessions on the TestClock: counts land in
 * the bucket of their time, old buckets read as zero after a day, the
 * quota day resets, the rings' memory is what the guide states, and a
 * session lives for its lifetime after its last use and no longer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, Redacted, TestClock } from "effect"
import * as History from "../../../src/server/console/internal/history.js"
import * as Sessions from "../../../src/server/console/internal/session.js"
import * as SignInLimit from "../../../src/server/console/internal/signInLimit.js"
import * as TokenMetrics from "../../../src/TokenMetrics.js"
import { KEY } from "../../support/serverStack.js"
import { OPS_KEY } from "./support.js"

const LABEL = "wx0000000000a11ce0"
const issue = (count: number) =>
  Metric.incrementBy(
    TokenMetrics.refreshes.pipe(Metric.tagged("app", LABEL), Metric.tagged("kind", "access_token")),
    count
  )

describe("History", () => {
  it.effect("adds each sample's growth to the bucket of its time and forgets what is a day old", () =>
    Effect.gen(function*() {
      const history = yield* History.make()
      yield* issue(3)
      yield* history.sample
      yield* TestClock.adjust("2 minutes")
      yield* issue(2)
      yield* history.sample
      yield* history.sample
      const now = 2 * 60_000
      const group = history.group(now)
      expect(group.times).toHaveLength(1_440)
      expect(group.times.at(-1)).toBe(120)
      expect(group.series["issued"]?.slice(-3)).toEqual([3, 0, 2])
      expect(history.owner(LABEL, now)?.series["issued"]?.at(-1)).toBe(5)
      expect(history.owners()).toContain(LABEL)
      expect(history.callsToday(LABEL, now)).toBe(5)
      // One group ring (1,440 × 6 counts + slots) and one owner ring (144 × 2 + slots): 100,000 authorizers of one
      // platform share one label, so this is their whole history.
      expect(history.bytes()).toBe(1_440 * 6 * 4 + 1_440 * 8 + 144 * 2 * 4 + 144 * 8)
      expect(history.bytes()).toBe(48_384)

      yield* TestClock.adjust("25 hours")
      const later = 25 * 3_600_000 + 2 * 60_000
      expect(history.group(later).series["issued"]?.reduce((a, b) => a + b, 0)).toBe(0)
      expect(history.owner(LABEL, later)?.series["issued"]?.reduce((a, b) => a + b, 0)).toBe(0)
      expect(history.callsToday(LABEL, later)).toBe(0)
    }))
})

describe("History traffic", () => {
  it.effect("a gateway or other proxy counter is a traffic total only, never an issue or a failure", () =>
    Effect.gen(function*() {
      const history = yield* History.make()
      yield* history.sample
      const before = history.group(0)
      yield* Metric.incrementBy(Metric.counter("wechat_gateway_calls_total").pipe(Metric.tagged("app", LABEL)), 4)
      yield* Metric.incrementBy(Metric.counter("wechat_proxy_upstream_bytes_total"), 900)
      yield* history.sample
      const group = history.group(0)
      // Whatever other tests in this process left in the registry was counted by the first sample.
      expect(group.series["failures"]).toEqual(before.series["failures"])
      expect(group.series["issued"]).toEqual(before.series["issued"])
      expect(history.traffic()).toMatchObject({ wechat_gateway_calls_total: 4, wechat_proxy_upstream_bytes_total: 900 })
    }))
})

describe("Sessions", () => {
  it.effect("only the given keys sign in; a session lives its lifetime after its last use", () =>
    Effect.gen(function*() {
      const sessions = Sessions.make([Redacted.make(OPS_KEY)], Duration.toMillis("15 minutes"))
      expect(yield* sessions.signIn(KEY)).toBeUndefined()
      expect(yield* sessions.signIn("")).toBeUndefined()
      const session = yield* sessions.signIn(OPS_KEY)
      expect(session).toBeDefined()
      const cookie = `other=1; ${Sessions.COOKIE}=${session?.id}`
      expect(session?.who).toMatch(/^key [0-9a-f]{8}$/)
      yield* TestClock.adjust("14 minutes")
      expect((yield* sessions.current(cookie))?.id).toBe(session?.id)
      yield* TestClock.adjust("14 minutes")
      expect((yield* sessions.current(cookie))?.id).toBe(session?.id)
      yield* TestClock.adjust(Duration.sum("15 minutes", "1 millis"))
      expect(yield* sessions.current(cookie)).toBeUndefined()
      expect(yield* sessions.current(`${Sessions.COOKIE}=forged`)).toBeUndefined()
    }))

  it.effect("a CSRF token matches its own session only", () =>
    Effect.gen(function*() {
      const sessions = Sessions.make([Redacted.make(OPS_KEY)], 60_000)
      const one = yield* sessions.signIn(OPS_KEY)
      const two = yield* sessions.signIn(OPS_KEY)
      if (one === undefined || two === undefined) return expect.fail("the ops key signs in")
      expect(sessions.csrfMatches(one, one.csrf)).toBe(true)
      expect(sessions.csrfMatches(one, two.csrf)).toBe(false)
      expect(sessions.csrfMatches(one, undefined)).toBe(false)
      expect(sessions.csrfMatches(one, "")).toBe(false)
    }))
})

describe("SignInLimit", () => {
  it.effect("only wrong keys spend an address's attempts; one comes back per refill, other addresses untouched", () =>
    Effect.gen(function*() {
      const limit = SignInLimit.make({ burst: 3, refillMillis: 10_000 })
      for (let attempt = 0; attempt < 3; attempt++) {
        expect(yield* limit.retryAfter("10.0.0.1")).toBeUndefined()
        yield* limit.refused("10.0.0.1")
      }
      expect(yield* limit.retryAfter("10.0.0.1")).toBe(10)
      expect(yield* limit.retryAfter("10.0.0.2")).toBeUndefined()
      yield* TestClock.adjust("4 seconds")
      expect(yield* limit.retryAfter("10.0.0.1")).toBe(6)
      yield* TestClock.adjust("6 seconds")
      expect(yield* limit.retryAfter("10.0.0.1")).toBeUndefined()
      yield* limit.refused("10.0.0.1")
      expect(yield* limit.retryAfter("10.0.0.1")).toBe(10)
      yield* TestClock.adjust("1 minute")
      for (let attempt = 0; attempt < 3; attempt++) yield* limit.refused("10.0.0.1")
      expect(yield* limit.retryAfter("10.0.0.1")).toBe(10)
    }))
})
