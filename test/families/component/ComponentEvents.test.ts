import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Option, TestClock } from "effect"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { vi } from "vitest"
import { BadRequest } from "../../../src/api/ApiError.js"
import * as ComponentConfig from "../../../src/families/component/ComponentConfig.js"
import * as ComponentEvents from "../../../src/families/component/ComponentEvents.js"
import * as ComponentToken from "../../../src/families/component/ComponentToken.js"
import * as TokenStore from "../../../src/TokenStore.js"
import { seal } from "../../support/componentPush.js"

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

  it.effect("a forged 16 KB body is refused 401 before any XML is parsed; a genuine push parses its decrypted event only", () =>
    Effect.gen(function*() {
      const { calls, service } = recording()
      const validate = vi.spyOn(XMLValidator, "validate")
      const parse = vi.spyOn(XMLParser.prototype, "parse")
      try {
        // Everything the parser refuses (a DOCTYPE, nesting 1,000 deep) around a plausible <Encrypt>.
        const { body } = yield* push(event("<InfoType>component_verify_ticket</InfoType>"))
        const encrypt = body.slice(body.indexOf("<Encrypt>"), body.indexOf("</Encrypt>") + "</Encrypt>".length)
        const prefix = `<!DOCTYPE xml [<!ENTITY x "x">]><xml>${"<a>".repeat(1_000)}${encrypt}`
        const forged = `${prefix}${"</a>".repeat(1_000)}`.padEnd(ComponentEvents.MAX_PUSH_BYTES, " ")
        expect(forged.length).toBe(ComponentEvents.MAX_PUSH_BYTES)
        const query = { timestamp: "0", nonce: "1", msg_signature: "0".repeat(40) }
        const refused = yield* Effect.flip(ComponentEvents.receive(service, COMPONENT, query, forged))
        expect(refused).toMatchObject({ error: { code: "invalid_signature" } })
        expect(validate).not.toHaveBeenCalled()
        expect(parse).not.toHaveBeenCalled()
        expect(calls).toEqual([])

        // The spies see the parser: a genuine push parses once, its decrypted event.
        const genuine = yield* push(event(
          "<CreateTime>0</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t-1</ComponentVerifyTicket>"
        ))
        expect(yield* ComponentEvents.receive(service, COMPONENT, genuine.query, genuine.body)).toBe("success")
        expect(parse).toHaveBeenCalledTimes(1)
        expect(calls).toEqual(["ticket t-1"])
      } finally {
        validate.mockRestore()
        parse.mockRestore()
      }
    }))

  it.effect("a push signed an hour or a year ago, or an hour ahead, is refused 400 stale_push and changes nothing", () =>
    Effect.gen(function*() {
      const { calls, service } = recording()
      const ticket = event(
        "<InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t-old</ComponentVerifyTicket>"
      )
      const captured = yield* push(ticket)
      const receive = ({ body, query }: { readonly body: string; readonly query: ComponentEvents.PushQuery }) =>
        Effect.flip(ComponentEvents.receive(service, COMPONENT, query, body))
      yield* TestClock.adjust(Duration.hours(1))
      const hour = yield* receive(captured)
      expect(hour).toBeInstanceOf(BadRequest)
      expect(hour).toMatchObject({ error: { code: "stale_push" } })
      expect(hour.error.message).toContain("signed 3600 s ago")
      yield* TestClock.adjust(Duration.days(365))
      expect(yield* receive(captured)).toMatchObject({ error: { code: "stale_push" } })
      // Signed an hour ahead of this server's clock: refused too, and the answer says so.
      yield* TestClock.adjust(Duration.hours(1))
      const ahead = yield* push(ticket)
      yield* TestClock.setTime((yield* TestClock.currentTimeMillis) - 3_600_000)
      const early = yield* receive(ahead)
      expect(early).toMatchObject({ error: { code: "stale_push" } })
      expect(early.error.message).toContain("ahead of this server's clock")
      expect(calls).toEqual([])
      // Within the window a push is taken: signed 299 s ago.
      const recent = yield* push(ticket)
      yield* TestClock.adjust(Duration.seconds(ComponentEvents.PUSH_WINDOW_SECONDS - 1))
      expect(yield* ComponentEvents.receive(service, COMPONENT, recent.query, recent.body)).toBe("success")
      expect(calls).toEqual(["ticket t-old"])
    }))
})

describe("ComponentEvents.encryptedOf: the envelope's <Encrypt>, without an XML parse", () => {
  it("reads the element's text, plain or in CDATA", () => {
    expect(ComponentEvents.encryptedOf(`<xml><AppId>x</AppId><Encrypt><![CDATA[abc=]]></Encrypt></xml>`)).toEqual(
      Either.right("abc=")
    )
    expect(ComponentEvents.encryptedOf(`<xml><Encrypt> abc= </Encrypt></xml>`)).toEqual(Either.right("abc="))
  })

  it("refuses a body with no, an unclosed, an empty or a second <Encrypt>", () => {
    for (
      const body of [
        "<xml></xml>",
        "<xml><Encrypt>abc",
        "<xml><Encrypt><![CDATA[]]></Encrypt></xml>",
        "<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>"
      ]
    ) {
      expect(Either.isLeft(ComponentEvents.encryptedOf(body))).toBe(true)
    }
  })
})
