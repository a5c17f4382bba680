/**
 * node-easywechat's OpenPlatform (a third-party platform's SDK) from npm,
 * unmodified but for its host, against the gateway on the emulator: the
 * component token, a pre-auth code, the exchange of a merchant's code, an
 * official account of the merchant from the refresh token, a message sent
 * for it. Installed in test/gateway/sdk/ by .ci/gateway-sdks.sh (`npm
 * test`'s pretest); the SDK runs in a process of its own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Component from "../../src/families/component/Component.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as ComponentStack from "../support/componentStack.js"
import { AES_KEY, COMPONENT, COMPONENT_SECRET, MERCHANT, MESSAGE_TOKEN } from "../support/fixtures.js"
import { requireSdk, runSdkScript } from "../support/sdkScript.js"
import { KEY } from "../support/serverStack.js"

describe("SDK node-easywechat OpenPlatform through the gateway", () => {
  it.live(
    "component token, pre-auth code, code exchange, an authorizer's message: unchanged, no real credential seen",
    () =>
      Effect.gen(function*() {
        yield* requireSdk("node-easywechat")
        const wechat = yield* ComponentStack.serveWeChat()
        const controls = wechat.emulator.component
        const server = yield* ComponentStack.serveComponentServer(wechat.url, StoreSpec.layerMemory, Logger.none, {
          gateway: true
        })
        yield* ComponentStack.componentTokenHeld(controls, server)
        // The redirect flow: the SDK exchanges the code the merchant's browser brought.
        yield* controls.stopPushes(COMPONENT)
        const code = yield* controls.authorize(COMPONENT, MERCHANT)
        const results = yield* runSdkScript("open.mjs", {
          GATEWAY: server.base,
          COMPONENT_ID: COMPONENT,
          CLIENT_KEY: KEY,
          PUSH_TOKEN: MESSAGE_TOKEN,
          AES_KEY,
          WORK: mkdtempSync(join(tmpdir(), "gateway-open-")),
          CODE: code
        })
        expect(results).toEqual({
          componentToken: expect.stringMatching(/^gw1\./),
          preAuthCode: { pre_auth_code: expect.stringMatching(/^preauthcode@@@/), expires_in: 1800 },
          authorization: {
            authorization_info: expect.objectContaining({
              authorizer_appid: MERCHANT,
              authorizer_access_token: expect.stringMatching(/^gw1\./),
              authorizer_refresh_token: "refreshtoken@@@held-by-the-token-server"
            })
          },
          message: { errcode: 0, errmsg: "ok" },
          authorizerToken: expect.stringMatching(/^gw1\./)
        })
        // WeChat got the merchant's real token; the SDK never saw a real credential nor the secret.
        const [seen] = yield* wechat.emulator.apis.calls
        expect(seen?.owner).toBe(MERCHANT)
        expect(yield* controls.isValidAuthorizerToken(seen!.token!, MERCHANT)).toBe(true)
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        const real = [
          seen!.token!,
          (yield* server.engine.get(COMPONENT, Component.componentToken)).value,
          (yield* server.engine.get(owner, Component.refreshToken)).value,
          COMPONENT_SECRET
        ]
        const answered = JSON.stringify(results)
        for (const value of real) expect(answered.includes(value)).toBe(false)
      }).pipe(Effect.scoped),
    180_000
  )
})
