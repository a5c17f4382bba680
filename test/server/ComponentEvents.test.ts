import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as ComponentConfig from "../../src/ComponentConfig.js"
import * as ComponentToken from "../../src/ComponentToken.js"
import * as ComponentEvents from "../../src/server/ComponentEvents.js"
import * as TokenStore from "../../src/TokenStore.js"
import { seal } from "../support/componentPush.js"

const COMPONENT = "wx00c0c0c0c0c0c0c0"
const MESSAGE_TOKEN = "pushToken2026"
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const credentials = ComponentConfig.component(COMPONENT, "secret", MESSAGE_TOKEN, AES_KEY)

// A ComponentToken that records what the intake hands it.
const recording = () => {
  const calls: Array<string> = []
  const record = (entry: string) => Effect.sync(() => void calls.push(entry))
  const service: ComponentToken.ComponentTokenShape = {
    ...ComponentToken.none,
    components: [credentials.componentAppId],
    credentials: (id) => id === COMPONENT ? Option.some(credentials) : Option.none(),
    acceptTicket: (_, ticket) => record(`ticket ${ticket}`),
    acceptAuthorization: (_, authorizer, code, expiresAt) => record(`authorized ${authorizer} ${code} ${expiresAt}`),
    acceptRevocation: (_, authorizer) => record(`unauthorized ${authorizer}`),
    acceptOnce: (_componentAppId, _pushId, _windowMillis, accept) => Effect.as(accept, true)
  }
  return { calls, service }
}

const push = (xml: string) =>
  seal({ componentAppId: COMPONENT, messageToken: MESSAGE_TOKEN, encodingAesKey: AES_KEY }, xml)

const event = (fields: string) => `<xml><AppId><![CDATA[${COMPONENT}]]></AppId>${fields}</xml>`

describe("ComponentEvents.parseXml: hostile XML", () => {
  it("reads WeChat's flat documents, CDATA and plain, as strings", () => {
    const parsed = ComponentEvents.parseXml(
      event("<CreateTime>1700000000</CreateTime><Ticket><![CDATA[0012]]></Ticket>")
    )
    expect(parsed).toEqual(Either.right({ AppId: COMPONENT, CreateTime: "1700000000", Ticket: "0012" }))
  })

  it("never expands an entity: a billion-laughs DOCTYPE is refused in microseconds", () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
      Array.from(
        { length: 9 },
        (_, level) => `<!ENTITY lol${level + 1} "${`&lol${level === 0 ? "" : level};`.repeat(10)}">`
      ).join("") +
      `]><xml><AppId>&lol9;</AppId></xml>`
    const started = performance.now()
    expect(Either.isLeft(ComponentEvents.parseXml(laughs))).toBe(true)
    expect(performance.now() - started).toBeLessThan(100)
  })

  it("an external entity (XXE) is refused, and a stray entity reference stays text", () => {
    const xxe = `<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><AppId>&xxe;</AppId></xml>`
    expect(Either.isLeft(ComponentEvents.parseXml(xxe))).toBe(true)
    expect(ComponentEvents.parseXml("<xml><AppId>&amp;&lt;x</AppId></xml>")).toEqual(
      Either.right({ AppId: "&amp;&lt;x" })
    )
  })

  it("deep nesting and huge bodies are refused", () => {
    const deep = `<xml>${"<a>".repeat(10_000)}x${"</a>".repeat(10_000)}</xml>`
    expect(Either.isLeft(ComponentEvents.parseXml(deep))).toBe(true)
    const huge = `<xml><AppId>${"A".repeat(ComponentEvents.MAX_PUSH_BYTES)}</AppId></xml>`
    expect(ComponentEvents.parseXml(huge)).toEqual(
      Either.left(`the message is over ${ComponentEvents.MAX_PUSH_BYTES} bytes`)
    )
  })

  it("malformed or rootless documents are refused, not thrown", () => {
    for (const text of ["", "<xml>", "<xml><a></b></xml>", "plain text", "<other>1</other>", "<xml>just text</xml>"]) {
      expect(Either.isLeft(ComponentEvents.parseXml(text))).toBe(true)
    }
  })
})

describe("ComponentEvents.receive", () => {
  it.effect("dispatches each event type once verified; other event types are acknowledged and ignored", () =>
    Effect.gen(function*() {
      const { calls, service } = recording()
      const receive = (xml: string) =>
        Effect.flatMap(push(xml), ({ body, query }) => ComponentEvents.receive(service, COMPONENT, query, body))
      expect(
        yield* receive(event(
          "<CreateTime>1700000000</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t-1</ComponentVerifyTicket>"
        ))
      ).toBe("success")
      yield* receive(event(
        "<InfoType>authorized</InfoType><AuthorizerAppid>wx00aa00aa00aa00aa</AuthorizerAppid><AuthorizationCode>c-1</AuthorizationCode><AuthorizationCodeExpiredTime>1700003600</AuthorizationCodeExpiredTime>"
      ))
      yield* receive(event("<InfoType>unauthorized</InfoType><AuthorizerAppid>wx00aa00aa00aa00aa</AuthorizerAppid>"))
      yield* receive(event("<InfoType>notify_third_fasteregister</InfoType>"))
      expect(calls).toEqual([
        "ticket t-1",
        "authorized wx00aa00aa00aa00aa c-1 1700003600000",
        "unauthorized wx00aa00aa00aa00aa"
      ])
      // A known type missing its fields, or naming another component: 400, nothing dispatched.
      const missing = yield* Effect.flip(receive(event("<InfoType>authorized</InfoType>")))
      expect(missing.error.code).toBe("invalid_push")
      const other = yield* Effect.flip(receive(
        `<xml><AppId>wx00000000000000ee</AppId><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>x</ComponentVerifyTicket></xml>`
      ))
      expect(other.error.code).toBe("invalid_push")
      expect(calls).toHaveLength(3)
    }))

  it.effect("a store that refuses the write answers 503, so WeChat pushes again", () =>
    Effect.gen(function*() {
      const { service } = recording()
      const failing: ComponentToken.ComponentTokenShape = {
        ...service,
        acceptTicket: () => Effect.fail(new TokenStore.StoreError({ operation: "set", detail: "disk full" }))
      }
      const { body, query } = yield* push(event(
        "<InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t-1</ComponentVerifyTicket>"
      ))
      const refused = yield* Effect.flip(ComponentEvents.receive(failing, COMPONENT, query, body))
      expect(refused).toMatchObject({ error: { code: "StoreError" } })
    }))
})
