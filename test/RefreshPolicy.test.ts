import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Schema } from "effect"
import type { AccessTokenError } from "../src/AccessToken.js"
import { AppId } from "../src/AppId.js"
import * as Backoff from "../src/Backoff.js"
import * as Pacing from "../src/Pacing.js"
import * as RefreshPolicy from "../src/RefreshPolicy.js"
import { TokenRecord } from "../src/Token.js"
import { CLOCK_SKEW, StoreError } from "../src/TokenStore.js"
import { ForceRefreshBudgetExhausted, MissingInput, UnknownApp, WeChatApiError } from "../src/WeChatError.js"

const SECOND = 1_000
const MINUTE = 60 * SECOND
const DAY = 86_400 * SECOND
const T0 = 1_000 * DAY // an epoch millisecond at the start of a UTC day

describe("RefreshPolicy", () => {
  describe("usableUntil: the overlap rule caps how long a held value is handed out", () => {
    const expiresAt = T0 + 7_200 * SECOND
    const cases: ReadonlyArray<readonly [RefreshPolicy.OverlapRule, refreshAt: number, until: number]> = [
      // classic: killed 5 minutes after the next fetch, or at expiry if sooner
      ["classic", expiresAt - 300 * SECOND, expiresAt],
      ["classic", expiresAt - 900 * SECOND, expiresAt - 600 * SECOND],
      ["classic", expiresAt, expiresAt],
      // stable: the issuer renews it and the old one lives out its life
      ["stable", expiresAt - 900 * SECOND, expiresAt],
      ["stable", expiresAt - 150 * SECOND, expiresAt],
      // none: killed by the next fetch itself
      ["none", expiresAt - 300 * SECOND, expiresAt - 300 * SECOND],
      ["none", expiresAt + 300 * SECOND, expiresAt]
    ]
    for (const [mode, refreshAt, until] of cases) {
      it(`${mode}, refresh ${(expiresAt - refreshAt) / SECOND} s before expiry → ${(expiresAt - until) / SECOND} s before`, () => {
        expect(RefreshPolicy.usableUntil({ mode, expiresAt, refreshAt })).toBe(until)
      })
    }
  })

  describe("isUsable: handed out only while more than 5 s remain", () => {
    const record = { mode: "stable", expiresAt: T0 + 60 * SECOND, refreshAt: T0 } as const
    const cases: ReadonlyArray<readonly [now: number, usable: boolean]> = [
      [T0, true],
      [record.expiresAt - 5 * SECOND - 1, true],
      [record.expiresAt - 5 * SECOND, false],
      [record.expiresAt, false],
      [record.expiresAt + MINUTE, false]
    ]
    for (const [now, usable] of cases) {
      it(`${(record.expiresAt - now) / SECOND} s before the end → ${usable}`, () => {
        expect(RefreshPolicy.isUsable(record, now)).toBe(usable)
      })
    }
  })

  describe("marginMillis: the configured margin, capped", () => {
    const cases: ReadonlyArray<
      readonly [RefreshPolicy.OverlapRule, configured: number, lifetime: number, margin: number, why: string]
    > = [
      ["classic", 300 * SECOND, 7_200 * SECOND, 300 * SECOND, "as configured"],
      ["classic", 900 * SECOND, 7_200 * SECOND, 900 * SECOND, "classic takes any margin"],
      ["stable", 900 * SECOND, 7_200 * SECOND, 300 * SECOND, "stable renews only in its last 5 minutes"],
      ["stable", 60 * SECOND, 7_200 * SECOND, 60 * SECOND, "a shorter margin is kept"],
      ["classic", 300 * SECOND, 120 * SECOND, 60 * SECOND, "never more than half the lifetime"],
      ["none", 0, 7_200 * SECOND, 0, "zero stays zero"]
    ]
    for (const [overlap, configured, lifetime, margin, why] of cases) {
      it(`${overlap}, ${configured / SECOND} s of ${lifetime / SECOND} s → ${margin / SECOND} s: ${why}`, () => {
        expect(RefreshPolicy.marginMillis(overlap, configured, lifetime)).toBe(margin)
      })
    }
  })

  describe("plan", () => {
    const base = {
      overlap: "classic",
      marginMillis: 300 * SECOND,
      requestedAt: T0,
      value: "NEW",
      lifetimeMillis: 7_200 * SECOND
    } as const
    const cases: ReadonlyArray<
      readonly [string, Partial<RefreshPolicy.PlanInput>, expiresIn: number, refreshIn: number]
    > = [
      ["the lowest draw refreshes a whole margin early", { draw: 0 }, 7_200, 6_900],
      ["the highest draw refreshes half a margin early", { draw: 0.9999999 }, 7_200, 7_050],
      ["a middle draw lands in between", { draw: 0.5 }, 7_200, 6_975],
      [
        "a new value is planned from its own lifetime",
        { draw: 0, held: { value: "OLD", expiresAt: T0 + 100 * SECOND } },
        7_200,
        6_900
      ],
      [
        "the held value answered again keeps its expiry; next attempt at that end",
        { draw: 0.5, value: "OLD", held: { value: "OLD", expiresAt: T0 + 100 * SECOND } },
        100,
        100
      ],
      [
        "the held value with a shorter remaining life (stable) takes the shorter",
        { draw: 0.5, value: "OLD", lifetimeMillis: 80 * SECOND, held: { value: "OLD", expiresAt: T0 + 100 * SECOND } },
        80,
        80
      ],
      [
        "a held value already past its end is planned anew",
        { draw: 0, value: "OLD", held: { value: "OLD", expiresAt: T0 } },
        7_200,
        6_900
      ]
    ]
    for (const [what, input, expiresIn, refreshIn] of cases) {
      it(what, () => {
        const planned = RefreshPolicy.plan({ ...base, draw: 0, ...input })
        expect({ expiresIn: (planned.expiresAt - T0) / SECOND, refreshIn: (planned.refreshAt - T0) / SECOND })
          .toEqual({ expiresIn, refreshIn })
      })
    }
  })

  describe("fetch now? per demand", () => {
    const record = new TokenRecord({
      appId: Schema.decodeSync(AppId)("wx0123456789abcdef"),
      kind: "access_token",
      value: "HELD",
      mode: "classic",
      fetchedAt: T0,
      expiresAt: T0 + 7_200 * SECOND,
      refreshAt: T0 + 6_900 * SECOND,
      generation: 1
    })
    const early = T0 + 60 * SECOND
    const due = T0 + 6_950 * SECOND
    const dying = T0 + 7_196 * SECOND
    const cases: ReadonlyArray<readonly [string, RefreshPolicy.Demand, TokenRecord | undefined, number, boolean]> = [
      ["usable: nothing held", RefreshPolicy.usable, undefined, early, true],
      ["usable: held and usable", RefreshPolicy.usable, record, early, false],
      ["usable: past refreshAt, still usable", RefreshPolicy.usable, record, due, false],
      ["usable: in its last 5 s", RefreshPolicy.usable, record, dying, true],
      ["scheduled: before refreshAt", RefreshPolicy.scheduled, record, early, false],
      ["scheduled: from refreshAt on", RefreshPolicy.scheduled, record, due, true],
      ["replacing the held value", RefreshPolicy.replacing("HELD"), record, early, true],
      ["replacing a value already replaced", RefreshPolicy.replacing("OLDER"), record, early, false],
      ["replacing without a value: always", RefreshPolicy.replacing(undefined), record, early, true]
    ]
    for (const [what, demand, held, now, fetch] of cases) {
      it(`${what} → ${fetch ? "fetch" : "serve the held value"}`, () => {
        expect(demand.needsFetch(held, now)).toBe(fetch)
      })
    }
  })

  describe("settling a contest: which record ends the doubt", () => {
    // T1 and T2: two lineages fetched 2 s apart (within CLOCK_SKEW), as after
    // a store lost its data and a new replica fetched beside the held token.
    const at = (fetchedAt: number, lineage: string, generation: number, value: string) =>
      new TokenRecord({
        appId: Schema.decodeSync(AppId)("wx0123456789abcdef"),
        kind: "access_token",
        value,
        mode: "classic",
        fetchedAt,
        expiresAt: fetchedAt + 7_200 * SECOND,
        refreshAt: fetchedAt + 6_900 * SECOND,
        generation,
        lineage
      })
    const t1 = at(T0, "A", 4, "T1")
    const t2 = at(T0 + 2 * SECOND, "B", 1, "T2")
    const demand = RefreshPolicy.settling([t1, t2])
    const now = T0 + 3 * SECOND

    it("a contested record → fetch", () => {
      expect(demand.needsFetch(t1, now)).toBe(true)
      expect(demand.needsFetch(t2, now)).toBe(true)
    })
    it("another replica's settling fetch (a successor of T2, 0.5 s later) → serve it, no fetch of our own", () => {
      expect(demand.needsFetch(at(T0 + 2_500, "B", 2, "T3"), now)).toBe(false)
    })
    it("a record replacing both by time → serve it", () => {
      expect(demand.needsFetch(at(T0 + 60 * SECOND, "C", 1, "T3"), T0 + 61 * SECOND)).toBe(false)
    })
    it("a third lineage within the skew, succeeding none → fetch", () => {
      expect(demand.needsFetch(at(T0 + 2_500, "C", 1, "T3"), now)).toBe(true)
    })
  })

  describe("failureClass: the engine's own errors by tag, WeChat's by the family", () => {
    const family = (): RefreshPolicy.FailureClass => "quota"
    const cases: ReadonlyArray<readonly [AccessTokenError, RefreshPolicy.FailureClass]> = [
      [new StoreError({ operation: "lease", detail: "down" }), "store"],
      [new UnknownApp({ appId: "wx" }), "configuration"],
      [new ForceRefreshBudgetExhausted({ appId: "wx", nextAllowedAt: 0 }), "configuration"],
      [new WeChatApiError({ errcode: 45009, errmsg: "" }), "quota"]
    ]
    for (const [error, failure] of cases) {
      it(`${error._tag} → ${failure}`, () => {
        expect(RefreshPolicy.failureClass(error, family)).toBe(failure)
      })
    }
  })

  describe("reactions: failure class → pause, cooldown", () => {
    const cases: ReadonlyArray<readonly [RefreshPolicy.FailureClass, pause: string, cooldown: string]> = [
      ["transient", "5m", "1s"],
      ["dead-credential", "5m", "5m"],
      ["configuration", "5m", "5m"],
      ["quota", "1h", "1h"],
      ["store", "5s", "5s"]
    ]
    for (const [failure, pause, cooldown] of cases) {
      it(`${failure}: pause ${pause}, callers cool down ${cooldown}`, () => {
        const reaction = RefreshPolicy.reactions[failure]
        expect({ pause: Duration.format(reaction.pause), cooldown: Duration.format(reaction.cooldown) })
          .toEqual({ pause, cooldown })
      })
    }
  })

  describe("the force-refresh budget: 20 a day, 30 s apart", () => {
    const rule = RefreshPolicy.STABLE_FORCE_REFRESH

    // Spends at each time in turn: what each attempt answered.
    const attempts = (times: ReadonlyArray<number>) => {
      let spent = RefreshPolicy.nothingSpent
      return times.map((now) => {
        const result = RefreshPolicy.spend(rule, spent, now)
        if (Either.isRight(result)) spent = result.right
        return Either.match(result, {
          onLeft: (nextAllowedAt) => `wait until +${(nextAllowedAt - T0) / SECOND} s`,
          onRight: () => "spent"
        })
      })
    }

    it("a first spend is allowed; a second within 30 s is refused until 30 s after the first", () => {
      expect(attempts([T0, T0 + 10 * SECOND, T0 + 30 * SECOND])).toEqual(["spent", "wait until +30 s", "spent"])
    })

    it("the 21st of a day is refused until the next UTC day, which starts afresh", () => {
      const day = Array.from({ length: 21 }, (_, i) => T0 + i * MINUTE)
      const answers = attempts([...day, T0 + DAY])
      expect(answers.slice(0, 20).every((answer) => answer === "spent")).toBe(true)
      expect(answers[20]).toBe(`wait until +${DAY / SECOND} s`)
      expect(answers[21]).toBe("spent")
    })

    it("the view agrees with spend: used, remaining and the next allowed moment", () => {
      const fresh = RefreshPolicy.budgetAt(rule, RefreshPolicy.nothingSpent, T0)
      expect(fresh).toEqual({ usedToday: 0, remainingToday: 20, nextAllowedAt: T0 })
      const once = Either.getOrThrow(RefreshPolicy.spend(rule, RefreshPolicy.nothingSpent, T0))
      expect(RefreshPolicy.budgetAt(rule, once, T0 + 10 * SECOND)).toEqual({
        usedToday: 1,
        remainingToday: 19,
        nextAllowedAt: T0 + 30 * SECOND
      })
      // Yesterday's spending does not count today.
      expect(RefreshPolicy.budgetAt(rule, once, T0 + DAY)).toEqual({
        usedToday: 0,
        remainingToday: 20,
        nextAllowedAt: T0 + DAY
      })
    })
  })
})

describe("revalidationMillis", () => {
  it.each([
    { credentials: 0, period: 30 * SECOND },
    { credentials: 1, period: 30 * SECOND },
    { credentials: 30_000, period: 30 * SECOND },
    { credentials: 30_001, period: 30 * SECOND + 1 },
    { credentials: 100_000, period: 100 * SECOND },
    { credentials: 240_000, period: 4 * MINUTE },
    { credentials: 1_000_000, period: 4 * MINUTE }
  ])("$credentials credentials: every $period ms", ({ credentials, period }) => {
    expect(RefreshPolicy.revalidationMillis(credentials)).toBe(period)
  })

  it("every period leaves a minute of the classic overlap", () => {
    for (const credentials of [1, 10_000, 1e6, 1e9]) {
      expect(RefreshPolicy.revalidationMillis(credentials)).toBeLessThanOrEqual(
        Duration.toMillis(RefreshPolicy.OVERLAP) - MINUTE
      )
    }
  })
})

describe("defersOnStoreDown: a refresh the store cannot lease", () => {
  const held = { mode: "classic", expiresAt: T0 + 10 * MINUTE, refreshAt: T0 + 5 * MINUTE } as const
  const pause = 5 * SECOND
  it.each(
    [
      {
        overlap: "stable",
        record: held,
        now: T0,
        defers: false,
        why: "stable refreshes locally: every replica gets the same value"
      },
      { overlap: "classic", record: undefined, now: T0, defers: false, why: "nothing held: callers need one now" },
      { overlap: "classic", record: held, now: T0, defers: true, why: "held stays usable past the pause" },
      { overlap: "none", record: held, now: T0, defers: true, why: "none: any fetch kills the held one" },
      {
        overlap: "classic",
        record: held,
        now: held.expiresAt - pause - 5 * SECOND,
        defers: false,
        why: "usable no longer than the pause: refresh rather than leave a gap"
      },
      {
        overlap: "classic",
        record: held,
        now: held.expiresAt - pause - 5 * SECOND - 1,
        defers: true,
        why: "usable a millisecond past the pause"
      }
    ] as const
  )("$overlap: $why", ({ defers, now, overlap, record }) => {
    expect(RefreshPolicy.defersOnStoreDown(overlap, record, now, pause)).toBe(defers)
  })
})

describe("sharedTurn: a replica refreshes its own share, and another's only when its owner is late", () => {
  // classic, refreshed 300 s before expiry: usable to expiry, taken over 150 s after refreshAt
  const held = { mode: "classic", expiresAt: T0 + 7_200 * SECOND, refreshAt: T0 + 6_900 * SECOND } as const
  const ttl = Duration.toMillis(RefreshPolicy.REPLICA_TTL)
  const takeoverAt = held.refreshAt + 150 * SECOND
  it.each(
    [
      { owned: true, record: held, now: held.refreshAt, next: undefined, why: "its own: refresh now" },
      { owned: true, record: undefined, now: T0, next: undefined, why: "its own, nothing held: fetch now" },
      { owned: false, record: undefined, now: T0, next: T0 + ttl, why: "another's, nothing held: look again" },
      {
        owned: false,
        record: held,
        now: held.refreshAt,
        next: held.refreshAt + ttl,
        why: "another's, due: look again after a replica's lifetime"
      },
      {
        owned: false,
        record: held,
        now: takeoverAt - ttl / 2,
        next: takeoverAt,
        why: "another's, close to the takeover: look again at it"
      },
      { owned: false, record: held, now: takeoverAt - 1, next: takeoverAt, why: "another's, a millisecond early" },
      { owned: false, record: held, now: takeoverAt, next: undefined, why: "another's, halfway to its end: refresh" },
      {
        owned: false,
        record: { ...held, mode: "none" },
        now: held.refreshAt + 1,
        next: undefined,
        why: "none: unusable from refreshAt, so taken over at once"
      },
      {
        owned: false,
        record: { mode: "classic", expiresAt: T0 + 7_200 * SECOND, refreshAt: T0 + 6_000 * SECOND },
        now: T0 + 6_000 * SECOND + 150 * SECOND,
        next: undefined,
        why: "classic with a long margin: halfway to refreshAt + the 5 min overlap"
      }
    ] as const
  )("$why", ({ next, now, owned, record }) => {
    expect(RefreshPolicy.sharedTurn({ owned, now, held: record })).toBe(next)
  })

  it("a replica counts as alive across two missed heartbeats and the clock skew", () => {
    expect(Duration.toMillis(RefreshPolicy.REPLICA_TTL)).toBeGreaterThanOrEqual(
      2 * Duration.toMillis(RefreshPolicy.HEARTBEAT) + Duration.toMillis(CLOCK_SKEW)
    )
  })
})

describe("Pacing", () => {
  describe("admit: at most the budget of refreshes starts in one second; the rest wait if they may", () => {
    const at = (second: number, started: number): Pacing.PacingWindow => ({ second, started })
    it.each([
      { window: Pacing.emptyWindow, now: 5_000, rate: 1, waits: true, after: at(5, 1), why: "the first of a second" },
      { window: at(5, 1), now: 5_999, rate: 1, waits: true, after: at(5, 2), why: "within a budget of 2" },
      { window: at(5, 2), now: 5_500, rate: 1, waits: true, after: undefined, why: "budget spent: waits" },
      { window: at(5, 2), now: 5_500, rate: 1, waits: false, after: at(5, 3), why: "budget spent, may not wait" },
      { window: at(5, 2), now: 6_000, rate: 1, waits: true, after: at(6, 1), why: "a new second starts over" },
      { window: at(5, 1), now: 5_100, rate: 0.1, waits: true, after: undefined, why: "below one a second: budget 1" },
      { window: at(5, 28), now: 5_100, rate: 14.3, waits: true, after: undefined, why: "2 × 14.3 rounds down to 28" }
    ])("$why", ({ after, now, rate, waits, window }) => {
      expect(Pacing.admit(window, now, rate, waits)).toEqual(after)
    })
  })

  it.each([
    { now: 0, next: 1_000 },
    { now: 999, next: 1_000 },
    { now: 1_000, next: 2_000 },
    { now: 1_234_567, next: 1_235_000 }
  ])("nextSecond($now) = $next", ({ next, now }) => {
    expect(Pacing.nextSecond(now)).toBe(next)
  })

  describe("refreshes and mayWait: which due jobs count and which may be deferred", () => {
    const held = { mode: "classic", expiresAt: T0 + 10 * MINUTE, refreshAt: T0 + 5 * MINUTE } as const
    it.each(
      [
        {
          record: undefined,
          failing: false,
          now: T0,
          refreshes: true,
          mayWait: false,
          why: "a first fetch never waits"
        },
        { record: held, failing: false, now: T0, refreshes: false, mayWait: true, why: "not due: only re-queued" },
        {
          record: held,
          failing: false,
          now: held.refreshAt,
          refreshes: true,
          mayWait: true,
          why: "due, usable long after"
        },
        {
          record: held,
          failing: true,
          now: held.refreshAt,
          refreshes: true,
          mayWait: false,
          why: "a retry never waits"
        },
        {
          record: held,
          failing: false,
          now: held.expiresAt - Duration.toMillis(Pacing.PACING_RESERVE),
          refreshes: true,
          mayWait: false,
          why: "within the reserve of its end"
        }
      ] as const
    )("$why", ({ failing, mayWait, now, record, refreshes }) => {
      expect(Pacing.refreshes(record, now)).toBe(refreshes)
      expect(Pacing.mayWait(record, failing, now)).toBe(mayWait)
    })
  })

  describe("herdSpread: a cold start of a herd spreads first refreshes from one margin after the fetch to the plan", () => {
    const record = { expiresAt: T0 + 7_200 * SECOND, refreshAt: T0 + 6_900 * SECOND }
    const spread = { from: T0 + 300 * SECOND, to: record.refreshAt }
    it.each([
      { firstFetch: true, credentials: Pacing.HERD, planned: record, result: spread, why: "a herd's first fetch" },
      { firstFetch: true, credentials: Pacing.HERD - 1, planned: record, result: undefined, why: "fewer: not a herd" },
      {
        firstFetch: false,
        credentials: 100_000,
        planned: record,
        result: undefined,
        why: "a warm record keeps its plan"
      },
      {
        firstFetch: true,
        credentials: 100_000,
        planned: { expiresAt: T0 + 600 * SECOND, refreshAt: T0 + 300 * SECOND },
        result: undefined,
        why: "no room between one margin and the plan"
      }
    ])("$why", ({ credentials, firstFetch, planned, result }) => {
      expect(Pacing.herdSpread({ record: planned, requestedAt: T0, firstFetch, credentials })).toEqual(result)
    })

    it.each([
      { draw: 0, at: spread.from },
      { draw: 0.5, at: T0 + 3_600 * SECOND },
      { draw: 0.999_999, at: spread.to - 7 }
    ])("pointIn at draw $draw", ({ at, draw }) => {
      expect(Pacing.pointIn(spread, draw)).toBe(at)
    })
  })
})

describe("Backoff", () => {
  const key = { appId: AppId.make("wx0123456789abcdef"), kind: "component_access_token" }
  it.each([
    { error: new WeChatApiError({ errcode: -1, errmsg: "busy" }), cools: true, why: "an issuer's failure" },
    { error: new StoreError({ operation: "get", detail: "down" }), cools: true, why: "a store failure" },
    {
      error: new MissingInput({ appId: key.appId, kind: key.kind, detail: "push it" }),
      cools: true,
      why: "its own input missing"
    },
    {
      error: new MissingInput({ appId: key.appId, kind: "component_verify_ticket", detail: "push it" }),
      cools: false,
      why: "another credential's input missing: that one cools down, and a put clears it"
    }
  ])("coolsDown: $why → $cools", ({ cools, error }) => {
    expect(Backoff.coolsDown(error, key)).toBe(cools)
  })

  describe("retryAfterFailure: the backoff, brought forward only for a transient failure of a credential about to die", () => {
    const usableUntil = T0 + 30 * SECOND
    it.each(
      [
        { failure: "transient", streak: 1, until: 0, retryAt: T0 + SECOND, why: "1 s after the first" },
        { failure: "transient", streak: 4, until: 0, retryAt: T0 + 8 * SECOND, why: "doubling" },
        { failure: "transient", streak: 20, until: 0, retryAt: T0 + MINUTE, why: "at most a minute" },
        {
          failure: "transient",
          streak: 20,
          until: usableUntil,
          retryAt: usableUntil - 6 * SECOND,
          why: "at the last usable second of the one held"
        },
        {
          failure: "quota",
          streak: 1,
          until: usableUntil,
          retryAt: T0 + 60 * MINUTE,
          why: "a spent quota waits it out"
        },
        {
          failure: "configuration",
          streak: 1,
          until: usableUntil,
          retryAt: T0 + 5 * MINUTE,
          why: "a wrong secret is not cured sooner"
        }
      ] as const
    )("$failure: $why", ({ failure, retryAt, streak, until }) => {
      expect(Backoff.retryAfterFailure(failure, streak, 0, T0, until)).toBe(retryAt)
    })
  })

  it.each(
    [
      {
        retryAt: T0 + 8 * SECOND,
        coolsDown: true,
        failure: "transient",
        next: T0 + 8 * SECOND,
        why: "at the retry time"
      },
      { retryAt: undefined, coolsDown: true, failure: "transient", next: T0, why: "no failure kept: at once" },
      {
        retryAt: T0 + SECOND,
        coolsDown: false,
        failure: "configuration",
        next: T0 + 5 * MINUTE,
        why: "an input missing elsewhere: not before the class's cooldown"
      }
    ] as const
  )("nextAttemptAt: $why", ({ coolsDown, failure, next, retryAt }) => {
    expect(Backoff.nextAttemptAt({ now: T0, retryAt, coolsDown, failure })).toBe(next)
  })
})
