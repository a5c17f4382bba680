/**
 * node-easywechat's OpenWork (a WeCom service provider's SDK) from npm,
 * unmodified but for its host, against the gateway on the emulator: the
 * suite and provider tokens, a pre-auth code and the corp's authorization
 * (service calls forwarded with the real suite token), the corp token from
 * the placeholder permanent code, and a message sent for the corp.
 * Installed in test/gateway/sdk/ by .ci/gateway-sdks.sh (`npm test`'s
 * pretest); the SDK runs in a process of its own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteConfig from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import { CorpId } from "../../src/OwnerId.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { eventually, registration, serveComponentServer } from "../support/componentStack.js"
import { AES_KEY, MESSAGE_TOKEN, SUITE, SUITE_CORP, SUITE_SECRET, suiteRegistration } from "../support/fixtures.js"
import { requireSdk, runSdkScript } from "../support/sdkScript.js"
import { KEY } from "../support/serverStack.js"

const PROVIDER = "ww0909090909090909"
const PROVIDER_SECRET = "provider-secret-never-answered-01"

describe("SDK node-easywechat OpenWork through the gateway", () => {
  it.scopedLive(
    "suite and provider tokens, a forwarded service call, the corp token and a corp call: unchanged, no real credential",
    () =>
      Effect.gen(function*() {
        yield* requireSdk("node-easywechat")
        const wecom = yield* Emulator.serve({ components: [registration], suites: [suiteRegistration] })
        const controls = wecom.emulator.wecomSuite
        yield* controls.registerProvider(PROVIDER, PROVIDER_SECRET)
        const server = yield* serveComponentServer(wecom.url, StoreSpec.layerMemory, undefined, {
          suites: WeComSuiteConfig.layerWith({
            suites: [WeComSuiteConfig.suite(SUITE, SUITE_SECRET, MESSAGE_TOKEN, AES_KEY)],
            provider: { corpId: CorpId.make(PROVIDER), secret: Redacted.make(PROVIDER_SECRET) }
          }),
          gateway: true
        })
        yield* controls.setCommandUrl(SUITE, `${server.base}/wecom/suites/${SUITE}/events`)
        yield* Effect.orDie(controls.pushTicket(SUITE))
        yield* Effect.orDie(controls.install(SUITE, SUITE_CORP, 1000002))
        const owner = WeComSuite.corpOwner(SUITE as never, SUITE_CORP as never)
        yield* eventually(Effect.map(
          Effect.either(server.engine.get(owner, WeComSuite.corpToken)),
          (held) => held._tag === "Right"
        ))
        const results = yield* runSdkScript("openwork.mjs", {
          GATEWAY: server.base,
          SUITE_ID: SUITE,
          PROVIDER_ID: PROVIDER,
          CLIENT_KEY: KEY,
          PUSH_TOKEN: MESSAGE_TOKEN,
          AES_KEY,
          WORK: mkdtempSync(join(tmpdir(), "gateway-openwork-")),
          CORP_ID: SUITE_CORP
        })
        expect(results).toEqual({
          suiteToken: expect.stringMatching(/^gw1\./),
          providerToken: expect.stringMatching(/^gw1\./),
          preAuthCode: expect.objectContaining({ errcode: 0, pre_auth_code: expect.any(String), expires_in: 1200 }),
          authorization: SUITE_CORP,
          corpToken: expect.stringMatching(/^gw1\./),
          message: expect.objectContaining({ errcode: 0 })
        })
        // WeCom got the corp's real token; the SDK never saw a real credential nor a secret.
        const [seen] = yield* wecom.emulator.apis.calls
        expect(seen).toMatchObject({ path: "/cgi-bin/message/send" })
        expect(yield* wecom.emulator.wecom.isValidToken(seen!.token!)).toBe(true)
        const real = [
          seen!.token!,
          (yield* server.engine.get(SUITE, WeComSuite.suiteToken)).value,
          (yield* controls.permanentCode(SUITE, SUITE_CORP))!,
          SUITE_SECRET,
          PROVIDER_SECRET
        ]
        const answered = JSON.stringify(results)
        for (const value of real) expect(answered.includes(value)).toBe(false)
      }),
    { timeout: 180_000 }
  )
})
