import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import type { CredentialKind } from "../src/Token.js"
import * as Harness from "./support/engine.js"
import { APP, inEngine, OTHER, registered, statsOf } from "./support/engine.js"
import { waitFor } from "./support/fixtures.js"

// The engine's jsapi and wx_card ticket cells, against the emulator under TestClock.

// A new ticket per getticket: every refresh is a replacement the engine must get right.
const emulatorLayer = Harness.emulatorLayer({ ticketRenewal: "new-per-call" })

// Each test's engine and emulator, the emulator issuing a new ticket per call unless a test says otherwise.
const withTickets: typeof inEngine = (body, options = {}) => inEngine(body, { emulator: emulatorLayer, ...options })

const KINDS: ReadonlyArray<readonly [CredentialKind, Emulator.TicketType]> = [
  ["jsapi_ticket", "jsapi"],
  ["wx_card_ticket", "wx_card"]
]

describe("Tickets", () => {
  for (const [kind, type] of KINDS) {
    const isValidTicket = (ticket: string) =>
      Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.isValidTicket(ticket, type))

    describe(kind, () => {
      it.scoped("100 concurrent gets on a cold cell share one getticket call", () =>
        withTickets(
          (engine) =>
            Effect.gen(function*() {
              const tickets = yield* Effect.all(Array.from({ length: 100 }, () => engine.get(APP, kind)), {
                concurrency: "unbounded"
              })
              expect(new Set(tickets.map((ticket) => ticket.value)).size).toBe(1)
              expect(yield* isValidTicket(tickets[0]!.value)).toBe(true)
              const stats = yield* statsOf()
              expect(stats.ticketCalls).toBe(1)
              expect(stats.tokensIssued).toBe(1)
              // Answered from memory afterwards.
              expect((yield* engine.get(APP, kind)).value).toBe(tickets[0]!.value)
              expect((yield* statsOf()).ticketCalls).toBe(1)
            })
        ))

      it.scoped("refreshes early over a simulated day: one fetch per cycle, every ticket handed out is valid", () =>
        withTickets(
          (engine) =>
            Effect.gen(function*() {
              const seen = new Set<string>()
              // One caller every 5 minutes for 24 hours.
              for (let minute = 0; minute < 24 * 60; minute += 5) {
                const ticket = yield* engine.get(APP, kind)
                seen.add(ticket.value)
                expect(yield* isValidTicket(ticket.value)).toBe(true)
                expect(ticket.expiresAt).toBeGreaterThan(yield* TestClock.currentTimeMillis)
                yield* TestClock.adjust(Duration.minutes(5))
              }
              // 7,200 s tickets refreshed 150–300 s early: fetches at 0, then
              // every 6,900–7,050 s, so 13 start within the day whatever the jitter.
              const cycles = Math.ceil(86_400 / (7_200 - 300))
              expect((yield* statsOf()).ticketCalls).toBe(cycles)
              expect(seen.size).toBe(cycles)
            })
        ))

      it.scoped("static stability: getticket fails across the refresh point, callers keep the still-valid ticket", () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              const first = yield* engine.get(APP, kind)
              // "System busy" from 100 s before the earliest refresh point until
              // 50 s before the ticket expires.
              yield* TestClock.adjust(Duration.seconds(7_200 - 300 - 100))
              yield* emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["getticket"] })
              for (let second = 0; second < 350; second += 5) {
                const ticket = yield* engine.get(APP, kind)
                expect(ticket.value).toBe(first.value)
                expect(yield* isValidTicket(ticket.value)).toBe(true)
                yield* TestClock.adjust(Duration.seconds(5))
              }
              yield* emulator.clearFaults
              const failed = (yield* statsOf()).ticketCalls - 1
              // Retried with backoff, not in a storm.
              expect(failed).toBeGreaterThan(1)
              expect(failed).toBeLessThan(15)
              for (let second = 0; second < 120; second += 5) {
                expect(yield* isValidTicket((yield* engine.get(APP, kind)).value)).toBe(true)
                yield* TestClock.adjust(Duration.seconds(5))
              }
              expect((yield* engine.get(APP, kind)).value).not.toBe(first.value)
            })
        ))

      it.scoped("several apps are independent: one fetch each, and one app's failing getticket leaves the other alone", () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              const both = yield* Effect.all(
                Array.from({ length: 50 }, (_, i) => engine.get(i % 2 === 0 ? APP : OTHER, kind)),
                { concurrency: "unbounded" }
              )
              const mine = new Set(both.filter((_, i) => i % 2 === 0).map((ticket) => ticket.value))
              const theirs = new Set(both.filter((_, i) => i % 2 === 1).map((ticket) => ticket.value))
              expect(mine.size).toBe(1)
              expect(theirs.size).toBe(1)
              expect(mine).not.toEqual(theirs)
              expect((yield* statsOf(APP)).ticketCalls).toBe(1)
              expect((yield* statsOf(OTHER)).ticketCalls).toBe(1)

              // OTHER's getticket is down for good; APP goes through two refresh cycles.
              yield* emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["getticket"], appId: OTHER })
              for (let minute = 0; minute < 4 * 60; minute += 5) {
                expect(yield* isValidTicket((yield* engine.get(APP, kind)).value)).toBe(true)
                yield* TestClock.adjust(Duration.minutes(5))
              }
              expect((yield* statsOf(APP)).ticketCalls).toBe(3)
              const other = yield* Effect.flip(engine.get(OTHER, kind))
              expect(other).toMatchObject({ _tag: "UpstreamUnavailable", reason: "busy" })
            }),
          { engine: { apps: [APP, OTHER] } }
        ))

      it.scoped("a getticket on a dead token: one token compare-and-refresh, one ticket retry, for 100 callers", () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              const dead = yield* engine.get(APP)
              // Another process took over the app: the engine's token is dead
              // and the engine cannot know until WeChat says so.
              yield* emulator.killTokens(APP)
              const before = yield* statsOf()
              const tickets = yield* Effect.all(Array.from({ length: 100 }, () => engine.get(APP, kind)), {
                concurrency: "unbounded"
              })
              const after = yield* statsOf()
              expect(new Set(tickets.map((ticket) => ticket.value)).size).toBe(1)
              expect(yield* isValidTicket(tickets[0]!.value)).toBe(true)
              expect(after.classicCalls - before.classicCalls).toBe(1)
              expect(after.ticketCalls - before.ticketCalls).toBe(2)
              expect(after.deadTokenUses - before.deadTokenUses).toBe(1)
              const fresh = yield* engine.get(APP)
              expect(fresh.value).not.toBe(dead.value)
              expect(yield* emulator.isValidToken(fresh.value)).toBe(true)
            })
        ))

      it.scoped("a getticket whose dead token was replaced meanwhile retries with the new token, fetching none", () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              const dead = yield* engine.get(APP)
              yield* emulator.killTokens(APP)
              // The ticket request carrying the dead token is held up in flight...
              yield* emulator.injectFault({
                fault: Emulator.Fault.Slow(Duration.seconds(1)),
                endpoints: ["getticket"],
                times: 1
              })
              const before = yield* statsOf()
              const pending = yield* Effect.fork(engine.get(APP, kind))
              yield* waitFor(Effect.map(statsOf(), (stats) => stats.ticketCalls > before.ticketCalls))
              // ...while a business server reports that token and gets a new one.
              const fresh = yield* engine.refresh(APP, dead.value)
              expect(fresh.value).not.toBe(dead.value)
              yield* TestClock.adjust(Duration.seconds(1))
              const ticket = yield* Fiber.join(pending)
              const after = yield* statsOf()
              expect(yield* isValidTicket(ticket.value)).toBe(true)
              // Compare-and-refresh: the dead token is no longer current, so the
              // ticket cell's report of it costs no second token fetch.
              expect(after.classicCalls - before.classicCalls).toBe(1)
              expect(after.ticketCalls - before.ticketCalls).toBe(2)
              expect(after.deadTokenUses - before.deadTokenUses).toBe(1)
            })
        ))

      it.scoped("a second dead-token answer after the token refresh is a typed error, not a loop", () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              yield* engine.get(APP)
              yield* emulator.injectFault({
                fault: Emulator.Fault.Errcode(40001, "invalid credential, access_token is invalid or not latest"),
                endpoints: ["getticket"],
                times: 2
              })
              const before = yield* statsOf()
              const result = yield* Effect.flip(engine.get(APP, kind))
              const after = yield* statsOf()
              expect(result).toMatchObject({ _tag: "InvalidCredential", errcode: 40001 })
              expect(after.ticketCalls - before.ticketCalls).toBe(2)
              expect(after.classicCalls - before.classicCalls).toBe(1)
            })
        ))

      it.scoped("compare-and-refresh on the ticket itself: one getticket, and an old ticket reported again costs nothing", () =>
        withTickets(
          (engine) =>
            Effect.gen(function*() {
              const stale = yield* engine.get(APP, kind)
              const fresh = yield* Effect.all(
                Array.from({ length: 20 }, () => engine.refresh(APP, stale.value, kind)),
                {
                  concurrency: "unbounded"
                }
              )
              expect(new Set(fresh.map((ticket) => ticket.value)).size).toBe(1)
              expect(fresh[0]!.value).not.toBe(stale.value)
              expect(yield* isValidTicket(fresh[0]!.value)).toBe(true)
              expect((yield* statsOf()).ticketCalls).toBe(2)
              expect((yield* engine.refresh(APP, stale.value, kind)).value).toBe(fresh[0]!.value)
              expect((yield* statsOf()).ticketCalls).toBe(2)
            })
        ))
    })
  }

  it.scoped("jsapi and wx_card tickets are separate credentials on the same token", () =>
    withTickets(
      (engine, emulator) =>
        Effect.gen(function*() {
          const [jsapi, card] = yield* Effect.all(
            [engine.get(APP, "jsapi_ticket"), engine.get(APP, "wx_card_ticket")],
            {
              concurrency: "unbounded"
            }
          )
          expect(jsapi.value).not.toBe(card.value)
          expect(yield* emulator.isValidTicket(jsapi.value, "jsapi")).toBe(true)
          expect(yield* emulator.isValidTicket(card.value, "wx_card")).toBe(true)
          // The emulator checks the type: neither passes for the other.
          expect(yield* emulator.isValidTicket(jsapi.value, "wx_card")).toBe(false)
          const stats = yield* statsOf()
          expect(stats.ticketCalls).toBe(2)
          expect(stats.tokensIssued).toBe(1)
        })
    ))

  describe("renewal semantics", () => {
    for (const ticketRenewal of ["same-while-valid", "new-per-call"] as const) {
      it.scoped(`${ticketRenewal}: over a simulated day, every ticket served stays valid until the expiry it was served with`, () =>
        withTickets(
          (engine, emulator) =>
            Effect.gen(function*() {
              const served = new Map<string, number>()
              for (let minute = 0; minute < 24 * 60; minute++) {
                const ticket = yield* engine.get(APP, "jsapi_ticket")
                served.set(ticket.value, Math.max(served.get(ticket.value) ?? 0, ticket.expiresAt))
                const now = yield* TestClock.currentTimeMillis
                for (const [value, expiresAt] of served) {
                  if (expiresAt > now) expect(yield* emulator.isValidTicket(value, "jsapi")).toBe(true)
                }
                yield* TestClock.adjust(Duration.minutes(1))
              }
              const calls = (yield* statsOf()).ticketCalls
              if (ticketRenewal === "new-per-call") {
                expect(served.size).toBe(Math.ceil(86_400 / (7_200 - 300)))
                expect(calls).toBe(served.size)
              } else {
                // A new ticket only at each real end (every 7,200 s, the 24 h mark
                // included); the refresh before each end got the held one back.
                expect(served.size).toBe(12)
                expect(calls).toBe(1 + 12 + 12)
              }
            }),
          { emulator: Emulator.layer({ apps: registered, ticketRenewal }) }
        ))
    }

    it.scoped("same-while-valid: the held ticket answered again keeps its expiry; the next attempt is its real end", () =>
      withTickets(
        (engine) =>
          Effect.gen(function*() {
            const first = yield* engine.get(APP, "jsapi_ticket")
            // Past every possible refresh point (7,200 − 150 s), before the end.
            yield* TestClock.adjust(Duration.seconds(7_100))
            expect((yield* statsOf()).ticketCalls).toBe(2)
            expect(yield* engine.get(APP, "jsapi_ticket")).toEqual(first)
            const status = (yield* engine.status).find((status) => status.kind === "jsapi_ticket")!
            const record = Option.getOrThrow(status.record)
            expect(record.value).toBe(first.value)
            expect(record.expiresAt).toBe(first.expiresAt)
            expect(record.refreshAt).toBe(first.expiresAt)
            // At the real end WeChat issues a new ticket, and the engine is there.
            yield* TestClock.adjust(Duration.seconds(100))
            expect((yield* statsOf()).ticketCalls).toBe(3)
            const next = yield* engine.get(APP, "jsapi_ticket")
            expect(next.value).not.toBe(first.value)
            expect(
              yield* Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.isValidTicket(next.value, "jsapi"))
            )
              .toBe(true)
          }),
        { emulator: Emulator.layer({ apps: registered }) }
      ))
  })

  it.scoped("an unknown app is a typed error and reaches no upstream", () =>
    withTickets(
      (engine) =>
        Effect.gen(function*() {
          const result = yield* Effect.flip(engine.get(OTHER, "jsapi_ticket"))
          expect(result._tag).toBe("UnknownApp")
          expect((yield* statsOf(OTHER)).ticketCalls).toBe(0)
        })
    ))
})
