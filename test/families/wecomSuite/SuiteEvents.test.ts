import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as SuiteEvents from "../../../src/families/wecomSuite/SuiteEvents.js"
import * as WeComSuiteConfig from "../../../src/families/wecomSuite/WeComSuiteConfig.js"
import { seal } from "../../support/componentPush.js"

// Pushes built as WeCom builds them (signed with the suite's Token, encrypted
// for the suite id), opened with `SuiteEvents.open` under TestClock.

const SUITE = "ww5e5e5e5e5e5e5e5e"
const TOKEN = "suiteToken"
const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const CORP = "ww0c0c0c0c0c0c0c0c"
const suite = WeComSuiteConfig.suite(SUITE, "secret", TOKEN, KEY)

const push = (xml: string, receiveId = SUITE, token = TOKEN) =>
  seal({ componentAppId: receiveId, messageToken: token, encodingAesKey: KEY }, xml)

const event = (fields: string) => `<xml><SuiteId><![CDATA[${SUITE}]]></SuiteId>${fields}<TimeStamp>1</TimeStamp></xml>`

const refusal = (xml: string, receiveId?: string, token?: string) =>
  Effect.flatMap(push(xml, receiveId, token), ({ body, query }) => Effect.flip(SuiteEvents.open(suite, query, body)))

describe("SuiteEvents.open", () => {
  it.effect("decodes the five InfoTypes; others are ignored, to be acknowledged", () =>
    Effect.gen(function*() {
      const open = (xml: string) => Effect.flatMap(push(xml), ({ body, query }) => SuiteEvents.open(suite, query, body))
      expect((yield* open(event("<InfoType>suite_ticket</InfoType><SuiteTicket>T1</SuiteTicket>"))).event).toEqual({
        InfoType: "suite_ticket",
        SuiteId: SUITE,
        TimeStamp: 1,
        SuiteTicket: "T1"
      })
      for (const infoType of ["create_auth", "reset_permanent_code"]) {
        const opened = yield* open(event(`<InfoType>${infoType}</InfoType><AuthCode>CODE</AuthCode>`))
        expect(opened.event).toMatchObject({ InfoType: infoType, AuthCode: "CODE" })
      }
      for (const infoType of ["change_auth", "cancel_auth"]) {
        const opened = yield* open(event(`<InfoType>${infoType}</InfoType><AuthCorpId>${CORP}</AuthCorpId>`))
        expect(opened.event).toMatchObject({ InfoType: infoType, AuthCorpId: CORP })
      }
      const other = yield* open(event("<InfoType>change_contact</InfoType>"))
      expect(other.event).toEqual({ InfoType: "ignored", infoType: "change_contact" })
      expect(other.replayTtlMillis).toBeGreaterThan(0)
    }))

  it.effect("refuses forged, misdirected, stale, hostile and incomplete pushes, each with its code", () =>
    Effect.gen(function*() {
      const ticket = event("<InfoType>suite_ticket</InfoType><SuiteTicket>T1</SuiteTicket>")
      expect((yield* refusal(ticket, SUITE, "otherToken")).code).toBe("invalid_signature")
      // Signed with the suite's Token but encrypted for another receiver (a component, another suite).
      expect((yield* refusal(ticket, "wwffffffffffffffff")).code).toBe("undecryptable_push")
      const laughs = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>` +
        `<xml><InfoType>suite_ticket</InfoType><SuiteTicket>&b;</SuiteTicket></xml>`
      expect((yield* refusal(laughs)).code).toBe("invalid_push")
      expect((yield* refusal(event("<InfoType>create_auth</InfoType>"))).code).toBe("invalid_push")
      const another = ticket.replace(SUITE, "ww6f6f6f6f6f6f6f6f")
      expect((yield* refusal(another)).reason).toContain("another suite")
      // The same push delivered 6 minutes later: outside the window.
      const sealed = yield* push(ticket)
      yield* TestClock.adjust(Duration.minutes(6))
      expect((yield* Effect.flip(SuiteEvents.open(suite, sealed.query, sealed.body))).code).toBe("stale_push")
    }))

  it.effect("URL verification answers echostr's plaintext, and only when signed with the suite's Token", () =>
    Effect.gen(function*() {
      const sealed = yield* push("echo-1234")
      const query = { ...sealed.query, echostr: sealed.body.match(/<Encrypt><!\[CDATA\[(.*)\]\]><\/Encrypt>/)![1]! }
      expect(yield* SuiteEvents.verifyUrl(suite, query)).toBe("echo-1234")
      const forged = yield* Effect.flip(SuiteEvents.verifyUrl(suite, { ...query, msg_signature: "0".repeat(40) }))
      expect(forged.code).toBe("invalid_signature")
    }))
})
