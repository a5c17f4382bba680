import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Component from "../../src/families/component/Component.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import { type PushQuery, seal } from "../support/componentPush.js"
import * as ComponentStack from "../support/componentStack.js"
import { AES_KEY, COMPONENT, MERCHANT, MERCHANT_2, MESSAGE_TOKEN } from "../support/fixtures.js"
import { auth, OPS_KEY, send } from "../support/serverStack.js"

const json = { ...auth(), "content-type": "application/json" }

describe("third-party platform over loopback: WeChat pushes to the real server, the server calls WeChat", () => {
  it.scopedLive(
    "ticket push → one component token for 500 callers → a merchant authorizes → refresh token stored → authorizer token served",
    () =>
      Effect.gen(function*() {
        const wechat = yield* ComponentStack.serveWeChat()
        const controls = wechat.emulator.component
        const server = yield* ComponentStack.serveComponentServer(wechat.url, StoreSpec.layerMemory)

        // No ticket yet: a clear 503, /readyz says why, and WeChat was asked to push one.
        const early = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), {
          headers: auth()
        })
        expect(early.status).toBe(503)
        expect(early.json.error.code).toBe("missing_component_verify_ticket")
        expect(early.json.error.message).toContain("api_start_push_ticket")
        const unready = yield* ComponentStack.call(`${server.base}/readyz`, { headers: auth(OPS_KEY) })
        expect(unready.status).toBe(503)
        expect(unready.json.credentials).toContainEqual(expect.objectContaining({
          app_id: COMPONENT,
          kind: Component.verifyTicket,
          valid: false,
          last_error: expect.objectContaining({ code: "missing_component_verify_ticket" })
        }))
        yield* ComponentStack.eventually(Effect.map(controls.stats(COMPONENT), (stats) => stats.startPushCalls >= 1))

        // WeChat pushes a ticket to the server over HTTP; the server answers `success`.
        yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(server.base))
        const ticket = yield* controls.pushTicket(COMPONENT)
        const log = yield* controls.pushLog(COMPONENT)
        expect(log[log.length - 1]).toMatchObject({ infoType: "component_verify_ticket", delivered: true })
        expect((yield* server.engine.get(COMPONENT, Component.verifyTicket)).value).toBe(ticket)

        const tokens = yield* Effect.all(
          Array.from({ length: 500 }, () =>
            ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), { headers: auth() })),
          { concurrency: "unbounded" }
        )
        expect(tokens.every((answer) =>
          answer.status === 200
        )).toBe(true)
        const values = new Set(tokens.map((answer) => answer.json.access_token as string))
        expect(values.size).toBe(1)
        expect((yield* controls.stats(COMPONENT)).componentTokensIssued).toBe(1)
        expect(yield* controls.isValidComponentToken([...values][0]!, COMPONENT)).toBe(true)
        yield* ComponentStack.eventually(
          Effect.map(ComponentStack.call(`${server.base}/readyz`), (answer) => answer.status === 200)
        )

        // A merchant authorizes: WeChat pushes `authorized`; the server answers, then exchanges the code.
        yield* controls.authorize(COMPONENT, MERCHANT)
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        yield* ComponentStack.eventually(Effect.map(
          Effect.either(server.engine.get(owner, Component.refreshToken)),
          (held) => held._tag === "Right"
        ))
        const stored = yield* server.engine.get(owner, Component.refreshToken)
        expect(stored.value).toBe(yield* controls.currentRefreshToken(COMPONENT, MERCHANT))
        const token = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"),
          { headers: auth() }
        )
        expect(token.status).toBe(200)
        expect(yield* controls.isValidAuthorizerToken(token.json.access_token, MERCHANT)).toBe(true)
        // The token api_query_auth answered is the one served: no extra api_authorizer_token call.
        const stats = yield* controls.stats(COMPONENT)
        expect(stats.queryAuthCalls).toBe(1)
        expect(stats.authorizerTokenCalls).toBe(0)

        // Its ticket and a signed page, as for an app.
        const ticketAnswer = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT, "/jsapi-ticket"),
          { headers: auth() }
        )
        expect(ticketAnswer.status).toBe(200)
        const page = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT, "/jssdk-config"),
          {
            method: "POST",
            headers: json,
            body: JSON.stringify({ url: "https://shop.example/pay?x=1#top" })
          }
        )
        expect(page.status).toBe(200)
        expect(page.json.appId).toBe(MERCHANT)

        // The list shows it, paged.
        const listed = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizers?limit=10"), {
          headers: auth()
        })
        expect(listed.status).toBe(200)
        expect(listed.json.authorizers).toEqual([expect.objectContaining({ app_id: MERCHANT, valid: true })])
        expect(listed.json.next_cursor).toBeUndefined()

        // The redirect flow: a pre-auth code, the merchant authorizes with it, the caller exchanges the code.
        const preAuth = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/pre-auth-code"), {
          method: "POST",
          headers: json,
          body: JSON.stringify({ redirect_uri: "https://saas.example/authorized" })
        })
        expect(preAuth.status).toBe(200)
        expect(preAuth.json.authorization_url).toContain(`component_appid=${COMPONENT}`)
        yield* controls.stopPushes(COMPONENT)
        const code = yield* controls.authorize(COMPONENT, MERCHANT_2, { preAuthCode: preAuth.json.pre_auth_code })
        const exchanged = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizations"), {
          method: "POST",
          headers: json,
          body: JSON.stringify({ authorization_code: code })
        })
        expect(exchanged.status).toBe(200)
        expect(exchanged.json.authorizer_app_id).toBe(MERCHANT_2)
        const again = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizations"), {
          method: "POST",
          headers: json,
          body: JSON.stringify({ authorization_code: code })
        })
        expect(again.status).toBe(400)
        expect(again.json.error.code).toBe("invalid_authorization_code")
        const second = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT_2, "/access-token"),
          { headers: auth() }
        )
        expect(yield* controls.isValidAuthorizerToken(second.json.access_token, MERCHANT_2)).toBe(true)
        yield* controls.resumePushes(COMPONENT)

        // The merchant revokes: the authorizer is retired, refreshes stop, routes answer 404.
        yield* controls.unauthorize(COMPONENT, MERCHANT)
        yield* ComponentStack.eventually(Effect.map(
          ComponentStack.call(ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"), {
            headers: auth()
          }),
          (answer) => answer.status === 404
        ))
        const status = (yield* server.engine.status).filter((entry) => entry.appId === owner)
        expect(status).toMatchObject([{ kind: Component.refreshToken, retired: true, valid: false }])
        const remaining = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizers"), {
          headers: auth()
        })
        expect(remaining.json.authorizers.map((entry: { app_id: string }) => entry.app_id)).toEqual([MERCHANT_2])
      }),
    { timeout: 30_000 }
  )

  it.scopedLive("a push that is not WeChat's changes nothing: bad signature or unknown component 401, garbage 400", () =>
    Effect.gen(function*() {
      const wechat = yield* ComponentStack.serveWeChat()
      const server = yield* ComponentStack.serveComponentServer(wechat.url, StoreSpec.layerMemory)
      const ticketXml = (ticket: string) =>
        `<xml><AppId><![CDATA[${COMPONENT}]]></AppId><CreateTime>1700000000</CreateTime>` +
        `<InfoType><![CDATA[component_verify_ticket]]></InfoType>` +
        `<ComponentVerifyTicket><![CDATA[${ticket}]]></ComponentVerifyTicket></xml>`
      const post = (path: string, query: Partial<PushQuery>, body: string) =>
        send(server.port, {
          method: "POST",
          path: `${path}?${new URLSearchParams({ ...query, encrypt_type: "aes" } as Record<string, string>)}`,
          headers: { "content-type": "text/xml" },
          body
        })
      const events = `/wechat/components/${COMPONENT}/events`

      const forged = yield* seal(
        { componentAppId: COMPONENT, messageToken: "someoneElse1", encodingAesKey: AES_KEY },
        ticketXml("forged")
      )
      const badSignature = yield* post(events, forged.query, forged.body)
      expect(badSignature.status).toBe(401)

      const wrongKey = yield* seal(
        { componentAppId: COMPONENT, messageToken: MESSAGE_TOKEN, encodingAesKey: "B".repeat(43) },
        ticketXml("wrong-key")
      )
      expect((yield* post(events, wrongKey.query, wrongKey.body)).status).toBe(400)

      const genuine = yield* seal(
        { componentAppId: COMPONENT, messageToken: MESSAGE_TOKEN, encodingAesKey: AES_KEY },
        ticketXml("genuine")
      )
      expect((yield* post("/wechat/components/wx00000000000000ee/events", genuine.query, genuine.body)).status).toBe(
        401
      )
      expect((yield* post(events, genuine.query, "not xml at all")).status).toBe(400)
      expect((yield* post(events, {}, genuine.body)).status).toBe(400)
      const held = yield* Effect.either(server.engine.get(COMPONENT, Component.verifyTicket))
      expect(held._tag).toBe("Left")

      // The genuine push is taken; the same push again is idempotent.
      const first = yield* post(events, genuine.query, genuine.body)
      expect(first).toMatchObject({ status: 200, text: "success" })
      const stored = yield* server.engine.get(COMPONENT, Component.verifyTicket)
      expect(stored.value).toBe("genuine")
      const duplicate = yield* post(events, genuine.query, genuine.body)
      expect(duplicate).toMatchObject({ status: 200, text: "success" })
      const status = (yield* server.engine.status).find((entry) => entry.kind === Component.verifyTicket)!
      expect(Option.map(status.record, (record) => record.generation)).toEqual(Option.some(1))
    }))
})
