import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Component from "../../src/families/component/Component.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as TokenStoreFile from "../../src/TokenStoreFile.js"
import * as ComponentStack from "../support/componentStack.js"
import { AES_KEY, COMPONENT, COMPONENT_SECRET, MERCHANT, MESSAGE_TOKEN } from "../support/fixtures.js"
import { auth, KEY } from "../support/serverStack.js"

describe("Secrets: third-party platform", () => {
  it.scopedLive(
    "pushes, tokens, a 61023 recovery and a revocation: no component secret, message token or AES key anywhere, no whole token in the logs",
    () =>
      Effect.gen(function*() {
        const logs: Array<string> = []
        const path = NodePath.join(
          NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "component-secrets-")),
          "store.json"
        )
        const wechat = yield* ComponentStack.serveWeChat({ refreshTokenRotation: "every-refresh" })
        const controls = wechat.emulator.component
        const server = yield* ComponentStack.serveComponentServer(
          wechat.url,
          TokenStoreFile.layerNode(path).pipe(Layer.orDie),
          Logger.map(Logger.jsonLogger, (line) => void logs.push(line))
        ).pipe(Logger.withMinimumLogLevel(LogLevel.All))
        const answers: Array<string> = []
        const values = new Set<string>()
        yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(server.base))
        values.add(yield* controls.pushTicket(COMPONENT))
        yield* ComponentStack.eventually(Effect.map(
          ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), { headers: auth() }),
          (answer) => answer.status === 200
        ))
        values.add(
          (yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), { headers: auth() }))
            .json.access_token
        )
        yield* controls.authorize(COMPONENT, MERCHANT)
        yield* ComponentStack.eventually(Effect.map(
          ComponentStack.call(ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"), {
            headers: auth()
          }),
          (answer) => answer.status === 200
        ))
        const token = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"),
          { headers: auth() }
        )
        values.add(token.json.access_token)
        yield* controls.invalidateRefreshToken(COMPONENT, MERCHANT)
        const refreshed = yield* ComponentStack.call(
          ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token/refresh"),
          {
            method: "POST",
            headers: { ...auth(), "content-type": "application/json" },
            body: JSON.stringify({ stale_token: token.json.access_token })
          }
        )
        expect(refreshed.status).toBe(200)
        values.add(refreshed.json.access_token)
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        values.add((yield* server.engine.get(owner, Component.refreshToken)).value)
        // A forged push, a wrong key, then the revocation.
        answers.push(
          (yield* ComponentStack.call(`${ComponentStack.eventsUrl(server.base)}?timestamp=1&nonce=2&msg_signature=3`, {
            method: "POST",
            headers: { "content-type": "text/xml" },
            body: "<xml><Encrypt>AAAA</Encrypt></xml>"
          })).text
        )
        answers.push(
          (yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), {
            headers: auth(`${KEY}x`)
          })).text
        )
        yield* controls.unauthorize(COMPONENT, MERCHANT)
        for (const route of ["/readyz", "/metrics", "/openapi.json"]) {
          answers.push((yield* ComponentStack.call(`${server.base}${route}`)).text)
        }
        for (const status of yield* server.engine.status) answers.push(JSON.stringify(status))

        const stored = NodeFs.readFileSync(path, "utf8")
        const everything = [...logs, ...answers, stored]
        expect(logs.length).toBeGreaterThan(5)
        for (const secret of [COMPONENT_SECRET, MESSAGE_TOKEN, AES_KEY]) {
          for (const text of everything) expect(text).not.toContain(secret)
        }
        // Tokens, tickets and refresh tokens live in the store by design; in logs only masked.
        expect(values.size).toBeGreaterThanOrEqual(5)
        for (const value of values) {
          for (const line of logs) expect(line).not.toContain(value)
        }
      }),
    { timeout: 60_000 }
  )
})
