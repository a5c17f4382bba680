/**
 * Third-party platforms at run time: a component added through the admin
 * API takes WeChat's pushes and serves its token once the first verify
 * ticket arrives; a replaced secret is tried with the ticket held (WeChat's
 * refusal: 422 with the errcode, nothing changed); removed, its routes
 * answer 404. Its secret, message token and AES key are never answered back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  AES_KEY,
  COMPONENT,
  COMPONENT_SECRET,
  eventsUrl,
  eventually,
  MESSAGE_TOKEN,
  registration
} from "../../support/componentStack.js"
import { KEY } from "../../support/serverStack.js"
import { ADMIN_KEY, serve } from "./adminServer.js"

const body = (secret: string) => ({ secret, token: MESSAGE_TOKEN, encodingAesKey: AES_KEY })
const NEW_SECRET = "component-secret-after-the-reset"
const route = `/v1/admin/components/${COMPONENT}`
const tokenRoute = `/v1/components/${COMPONENT}/access-token`

describe("admin API: components", () => {
  it.scopedLive(
    "added untried, served from its first ticket, replaced after a try, removed everywhere",
    () =>
      Effect.gen(function*() {
        const { base, call, emulator, registry } = yield* serve
        const controls = emulator.component
        const answers: Array<string> = []
        const admin = (method: string, path: string, payload?: unknown) =>
          Effect.tap(call(method, path, ADMIN_KEY, payload), (answer) => Effect.sync(() => answers.push(answer.text)))

        expect((yield* call("GET", tokenRoute, KEY)).status).toBe(404)
        const added = yield* admin("PUT", route, body(COMPONENT_SECRET))
        expect(added.status, added.text).toBe(200)
        expect(JSON.parse(added.text)).toMatchObject({ componentAppId: COMPONENT, source: "admin" })

        // WeChat's first push reaches the component's events URL: its ticket admits it.
        yield* controls.setPushUrl(COMPONENT, `${base}/wechat/components/${COMPONENT}/events`)
        expect(eventsUrl(base)).toContain(COMPONENT)
        yield* controls.pushTicket(COMPONENT)
        yield* eventually(Effect.map(call("GET", tokenRoute, KEY), (answer) => answer.status === 200))
        const served = JSON.parse((yield* call("GET", tokenRoute, KEY)).text) as { access_token: string }
        expect(yield* controls.isValidComponentToken(served.access_token, COMPONENT)).toBe(true)

        // A wrong secret is tried with the ticket held and refused; the registry is as it was.
        const before = yield* registry.current
        const wrong = yield* admin("PUT", route, body("not-the-component-secret"))
        expect(wrong.status).toBe(422)
        expect(wrong.text).toContain("40125")
        const after = yield* registry.current
        expect(after.components).toEqual(before.components)
        expect((yield* call("GET", tokenRoute, KEY)).status).toBe(200)

        // Reset in WeChat's console, then put: tried, taken, and its token served.
        yield* controls.registerComponent({ ...registration, secret: NEW_SECRET })
        const replaced = yield* admin("PUT", route, body(NEW_SECRET))
        expect(replaced.status, replaced.text).toBe(200)
        const fresh = JSON.parse((yield* call("GET", tokenRoute, KEY)).text) as { access_token: string }
        expect(fresh.access_token).not.toBe(served.access_token)
        expect(yield* controls.isValidComponentToken(fresh.access_token, COMPONENT)).toBe(true)

        const listed = yield* admin("GET", "/v1/admin/components")
        expect(JSON.parse(listed.text)).toEqual({
          components: [{ componentAppId: COMPONENT, source: "admin", updatedAt: expect.any(String) }]
        })
        const audit = yield* admin("GET", "/v1/admin/audit")
        const entries = (JSON.parse(audit.text) as { entries: Array<{ action: string }> }).entries
        // Newest first: the first put had no ticket to try the secret with, and says so.
        expect(entries.filter((entry) => entry.action === "put-component")).toMatchObject([
          { outcome: "ok" },
          { outcome: "rejected 40125" },
          { outcome: "ok", detail: "untried: no verify ticket held" }
        ])

        // Bad input changes nothing.
        const held = yield* registry.current
        for (
          const bad of [
            { ...body(NEW_SECRET), encodingAesKey: "short" },
            { ...body(NEW_SECRET), token: "x" },
            { ...body(NEW_SECRET), aesKey: AES_KEY },
            { secret: NEW_SECRET }
          ]
        ) expect((yield* admin("PUT", route, bad)).status).toBe(400)
        expect((yield* registry.current).components).toEqual(held.components)

        expect((yield* admin("DELETE", route)).status).toBe(204)
        expect((yield* call("GET", tokenRoute, KEY)).status).toBe(404)
        expect((yield* admin("DELETE", route)).status).toBe(404)
        expect(JSON.parse((yield* admin("GET", "/v1/admin/components")).text)).toEqual({ components: [] })

        const everything = answers.join("\n")
        for (const secret of [COMPONENT_SECRET, NEW_SECRET, MESSAGE_TOKEN, AES_KEY]) {
          expect(everything).not.toContain(secret)
        }
      }),
    { timeout: 120_000 }
  )
})
