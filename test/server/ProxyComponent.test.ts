/**
 * The proxy for a third-party platform's authorizers, end to end: the
 * merchant authorizes (WeChat pushes to the server), then a business server
 * calls a WeChat API of the merchant with only its client key.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Redacted } from "effect"
import * as Component from "../../src/families/component/Component.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as ComponentStack from "../support/componentStack.js"
import { COMPONENT, MERCHANT } from "../support/fixtures.js"
import { call, KEY } from "../support/serverStack.js"

const SCOPED = "component-scoped-key-0123456789"

const serve = (upstreamUrl: string) =>
  ComponentStack.serveComponentServer(upstreamUrl, StoreSpec.layerMemory, Logger.none, {
    clientKeys: [{ key: Redacted.make(KEY) }, { key: Redacted.make(SCOPED), apps: [COMPONENT as never] }],
    proxy: true
  })

const proxied = (base: string, authorizer: string, rest: string) =>
  `${base}/v1/components/${COMPONENT}/authorizers/${authorizer}/wechat/${rest}`

describe("Proxy: authorizers of a third-party platform", () => {
  it.live(
    "an authorizer's API through the proxy, with its own token; scoped by the component; a dead token replayed",
    () =>
      Effect.gen(function*() {
        const wechat = yield* ComponentStack.serveWeChat()
        const controls = wechat.emulator.component
        const server = yield* serve(wechat.url)
        yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(server.base))
        yield* controls.pushTicket(COMPONENT)
        yield* controls.authorize(COMPONENT, MERCHANT)
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        yield* ComponentStack.eventually(Effect.map(
          Effect.either(server.engine.get(owner, Component.refreshToken)),
          (held) => held._tag === "Right"
        ))
        const send = (key: string, authorizer = MERCHANT) =>
          call(proxied(server.base, authorizer, "cgi-bin/message/custom/send"), {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ touser: "o", msgtype: "text" })
          })
        const sent = yield* send(SCOPED)
        expect([sent.status, sent.json]).toEqual([200, { errcode: 0, errmsg: "ok" }])
        const [seen] = yield* wechat.emulator.apis.calls
        expect(seen?.owner).toBe(MERCHANT)
        expect(yield* controls.isValidAuthorizerToken(seen!.token!, MERCHANT)).toBe(true)

        // The token dies behind everyone's back: one replay with the new one.
        yield* wechat.emulator.killTokens(MERCHANT)
        const again = yield* send(KEY)
        expect([again.status, again.json?.errcode]).toEqual([200, 0])
        const calls = yield* wechat.emulator.apis.calls
        expect(calls.slice(1).map((call) => call.errcode)).toEqual([40001, 0])

        // A merchant that never authorized, a component the server does not run: 404, nothing forwarded.
        const stranger = yield* send(KEY, "wx00dd00dd00dd00dd")
        expect(stranger.status).toBe(404)
        const otherComponent = yield* call(
          `${server.base}/v1/components/wx00eeeeeeeeeeeeee/authorizers/${MERCHANT}/wechat/cgi-bin/message/custom/send`,
          { method: "POST", headers: { authorization: `Bearer ${SCOPED}` }, body: "{}" }
        )
        expect(otherComponent.status).toBe(404)
        expect((yield* wechat.emulator.apis.calls).length).toBe(3)
        // The component's own token is never what an app route forwards with.
        const componentAsApp = yield* call(`${server.base}/v1/apps/${COMPONENT}/wechat/cgi-bin/message/custom/send`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}` },
          body: "{}"
        })
        expect(componentAsApp.status).toBe(404)
      }).pipe(Effect.scoped),
    60_000
  )
})
