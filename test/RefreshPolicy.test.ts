import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Schema } from "effect"
import type { AccessTokenError } from "../src/AccessToken.js"
import { AppId } from "../src/AppId.js"
import * as RefreshPolicy from "../src/RefreshPolicy.js"
import { TokenRecord } from "../src/Token.js"
import { StoreError } from "../src/TokenStore.js"
import { ForceRefreshBudgetExhausted, UnknownApp, WeChatApiError } from "../src/WeChatError.js"

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
