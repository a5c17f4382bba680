import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Layer, Scope, TestClock } from "effect"
import * as CredentialFamily from "../src/CredentialFamily.js"
import type * as OwnerId from "../src/OwnerId.js"
import * as Pacing from "../src/Pacing.js"
import * as RefreshPolicy from "../src/RefreshPolicy.js"
import { TokenRecord } from "../src/Token.js"
import * as Engine from "../src/TokenEngine.js"
import * as TokenStore from "../src/TokenStore.js"
import { MissingInput } from "../src/WeChatError.js"

// The scheduler's pacing, with a synthetic family whose owners come and go
// (so the engine's count of credentials can change) and a vendor that counts
// its fetches per second of the clock. The store is filled before the engine
// starts with one token per owner, all due at the same instant: the warm
// start of a fleet whose tokens were all fetched in one burst.

const TOKEN = "paced_token"
const PRESENCE = "paced_presence"
const MARGIN_SECONDS = 300
const LONG = 10 * 365 * 86_400

const ownerOf = (index: number) => `wx${index.toString(16).padStart(16, "0")}` as OwnerId.OwnerId

const makeVendor = () => {
  const perSecond = new Map<number, number>()
  const perOwner = new Map<string, number>()
  let next = 0
  return {
    perSecond,
    perOwner,
    fetches: () => [...perSecond.values()].reduce((sum, n) => sum + n, 0),
    inSecond: (second: number) => perSecond.get(second) ?? 0,
    issue: (owner: string, lifetimeSeconds: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const second = Math.floor(now / 1_000)
        perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
        perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1)
        return { value: `${owner}-token-${++next}`, expiresInSeconds: lifetimeSeconds }
      })
  }
}

type Vendor = ReturnType<typeof makeVendor>

const familyOf = (vendor: Vendor, lifetimeSeconds: number) =>
  CredentialFamily.make({
    name: "paced",
    owners: [],
    dynamic: { accepts: (owner) => /^wx[0-9a-f]{16}$/.test(owner), presence: PRESENCE },
    classify: () => "transient",
    kinds: [
      {
        kind: TOKEN,
        overlap: "classic",
        storage: "cache",
        start: "eager",
        issue: ({ owner }) => vendor.issue(owner, lifetimeSeconds)
      },
      {
        kind: PRESENCE,
        overlap: "stable",
        storage: "durable",
        start: "on-demand",
        issue: ({ owner }) => Effect.fail(new MissingInput({ appId: owner, kind: PRESENCE, detail: "authorize again" }))
      }
    ]
  })

const presenceOf = (owner: OwnerId.OwnerId) =>
  new TokenRecord({
    appId: owner,
    kind: PRESENCE,
    value: `${owner}-grant`,
    mode: "stable",
    fetchedAt: 0,
    expiresAt: LONG * 1_000,
    refreshAt: LONG * 1_000 - MARGIN_SECONDS * 1_000,
    generation: 1
  })

// A token fetched at 0 for `lifetimeSeconds`, planned to refresh `margin` before its end.
const tokenOf = (owner: OwnerId.OwnerId, lifetimeSeconds: number) =>
  new TokenRecord({
    appId: owner,
    kind: TOKEN,
    value: `${owner}-stored`,
    mode: "classic",
    fetchedAt: 0,
    expiresAt: lifetimeSeconds * 1_000,
    refreshAt: (lifetimeSeconds - MARGIN_SECONDS) * 1_000,
    generation: 1
  })

interface Fleet {
  /** Owners admitted when the engine starts, each holding a stored token. */
  readonly admitted: number
  /** Owners whose token (and not presence) is stored: admitted later with `engine.put`. */
  readonly waiting?: number
  readonly lifetimeSeconds: number
}

const startFleet = (fleet: Fleet) =>
  Effect.gen(function*() {
    const vendor = makeVendor()
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(TokenStore.layerMemory, scope)
    const store = Context.get(context, TokenStore.TokenStore)
    const owners = Array.from({ length: fleet.admitted + (fleet.waiting ?? 0) }, (_, index) => ownerOf(index + 1))
    for (const [index, owner] of owners.entries()) {
      yield* store.set(tokenOf(owner, fleet.lifetimeSeconds))
      if (index < fleet.admitted) yield* store.set(presenceOf(owner))
    }
    const engine = yield* Engine.makeFamilies([familyOf(vendor, fleet.lifetimeSeconds)], {
      refreshMargin: Duration.seconds(MARGIN_SECONDS)
    }).pipe(Effect.provide(context), Scope.extend(scope))
    return { vendor, engine, owners }
  })

// What the engine expects of `count` credentials of this lifetime, and so its budget.
const budgetFor = (count: number, lifetimeSeconds: number) =>
  Pacing.pacingBudget(
    count * 1_000 / Pacing.cycleMillis(tokenOf(ownerOf(1), lifetimeSeconds), MARGIN_SECONDS * 1_000)
  )

// Every owner asks for its token: each answer must have more than the 5 s a
// caller needs left, and be answered from memory (no fetch of its own).
const everyoneAsks = (engine: Engine.TokenEngineShape, owners: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const owner of owners) {
      const credential = yield* engine.get(owner, TOKEN)
      expect(credential.expiresAt - now).toBeGreaterThan(Duration.toMillis(RefreshPolicy.MIN_REMAINING))
    }
  })

describe("TokenEngine: refresh pacing", () => {
  it("the budget: ⌊2 × the expected rate⌋, at least 1", () => {
    // A 600 s token with a 300 s margin refreshes every 375 s on average (jitter's mean is 75 s).
    expect(Pacing.cycleMillis(tokenOf(ownerOf(1), 600), MARGIN_SECONDS * 1_000)).toBe(375_000)
    expect(Pacing.cycleMillis(tokenOf(ownerOf(1), 7_200), MARGIN_SECONDS * 1_000)).toBe(6_975_000)
    expect(Pacing.pacingBudget(0)).toBe(1)
    expect(Pacing.pacingBudget(0.6)).toBe(1)
    expect(Pacing.pacingBudget(1.49)).toBe(2)
    // 100,000 two-hour tokens: 14.3 a second, at most 28 started in one.
    expect(Pacing.pacingBudget(100_000 * 1_000 / 6_975_000)).toBe(28)
    expect(budgetFor(400, 600)).toBe(2)
    expect(budgetFor(800, 600)).toBe(4)
    expect(budgetFor(200, 600)).toBe(1)
  })

  it("a refresh may wait only while the token stays usable a minute longer", () => {
    // Usable until 600 s (classic: min(expiry, refreshAt + 5 min)).
    const record = tokenOf(ownerOf(1), 600)
    expect(Pacing.mayDefer(record, 300_000)).toBe(true)
    expect(Pacing.mayDefer(record, 539_999)).toBe(true)
    expect(Pacing.mayDefer(record, 540_000)).toBe(false)
    expect(Pacing.mayDefer(record, 700_000)).toBe(false)
  })

  it.scoped("400 tokens due in one second: 2 refreshes start per second, the rest follow, callers never fetch", () =>
    Effect.gen(function*() {
      const { engine, owners, vendor } = yield* startFleet({ admitted: 400, lifetimeSeconds: 600 })
      yield* TestClock.adjust(Duration.seconds(299))
      expect(vendor.fetches()).toBe(0)
      for (let second = 300; second < 540; second++) {
        yield* TestClock.adjust(Duration.seconds(1))
        expect(vendor.inSecond(second), `second ${second}`).toBe(second < 500 ? 2 : 0)
        if (second % 10 === 0) yield* everyoneAsks(engine, owners)
      }
      // Every token refreshed once, each by the schedule: no caller found one unusable.
      expect(vendor.fetches()).toBe(400)
      expect([...vendor.perOwner.values()].every((n) => n === 1)).toBe(true)
    }))

  it.scoped("a refresh never waits past the reserve: what pacing could not start by then starts at once", () =>
    Effect.gen(function*() {
      // 700 s tokens: 400 of them expect 0.84 refreshes a second, a budget of 1,
      // and a refresh due at 400 s may wait until 640 s (60 s before the end).
      const { engine, owners, vendor } = yield* startFleet({ admitted: 400, lifetimeSeconds: 700 })
      expect(budgetFor(400, 700)).toBe(1)
      yield* TestClock.adjust(Duration.seconds(399))
      for (let second = 400; second < 660; second++) {
        yield* TestClock.adjust(Duration.seconds(1))
        const expected = second < 640 ? 1 : second === 640 ? 400 - 240 : 0
        expect(vendor.inSecond(second), `second ${second}`).toBe(expected)
        if (second % 10 === 0 || second >= 635) yield* everyoneAsks(engine, owners)
      }
      expect(vendor.fetches()).toBe(400)
    }))

  it.scoped("a cold credential and a compare-and-refresh are not delayed by a backlog", () =>
    Effect.gen(function*() {
      const { engine, owners, vendor } = yield* startFleet({ admitted: 400, lifetimeSeconds: 600 })
      yield* TestClock.adjust(Duration.seconds(310))
      // 22 refreshed, 378 waiting.
      expect(vendor.fetches()).toBe(22)
      // A new owner with nothing stored: the schedule fetches it in this very second.
      const newcomer = ownerOf(10_000)
      yield* engine.put(newcomer, PRESENCE, { value: "grant", expiresInSeconds: LONG })
      yield* TestClock.adjust(Duration.zero)
      expect(vendor.perOwner.get(newcomer)).toBe(1)
      // A caller reports a waiting owner's token rejected: replaced now.
      const waiting = owners.find((owner) => !vendor.perOwner.has(owner))!
      const stale = yield* engine.get(waiting, TOKEN)
      const replaced = yield* engine.refresh(waiting, stale.value, TOKEN)
      expect(replaced.value).not.toBe(stale.value)
      expect(vendor.perOwner.get(waiting)).toBe(1)
      expect(vendor.inSecond(310)).toBe(2 + 2)
      // The backlog goes on at its pace.
      yield* TestClock.adjust(Duration.seconds(1))
      expect(vendor.inSecond(311)).toBe(2)
    }))

  it.scoped("the budget follows the credentials held: owners admitted raise it, owners retired lower it", () =>
    Effect.gen(function*() {
      const { engine, owners, vendor } = yield* startFleet({ admitted: 400, waiting: 400, lifetimeSeconds: 600 })
      yield* TestClock.adjust(Duration.seconds(304))
      for (let second = 300; second < 305; second++) expect(vendor.inSecond(second)).toBe(2)
      expect(vendor.fetches()).toBe(10)
      // 400 more owners, whose stored tokens are due too: 800 expect a budget of 4.
      yield* Effect.forEach(
        owners.slice(400),
        (owner) => engine.put(owner, PRESENCE, { value: `${owner}-grant`, expiresInSeconds: LONG }),
        { discard: true }
      )
      for (let second = 305; second < 315; second++) {
        yield* TestClock.adjust(Duration.seconds(1))
        expect(vendor.inSecond(second), `second ${second}`).toBe(4)
      }
      // 600 retired: the 200 left expect 0.53 a second, a budget of 1.
      yield* Effect.forEach(owners.slice(0, 600), (owner) => engine.retire(owner), { discard: true })
      for (let second = 315; second < 325; second++) {
        yield* TestClock.adjust(Duration.seconds(1))
        expect(vendor.inSecond(second), `second ${second}`).toBe(1)
      }
    }))
})
