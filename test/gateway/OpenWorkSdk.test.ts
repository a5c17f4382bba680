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
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import { eventually, PROVIDER, PROVIDER_SECRET, serveSuiteGateway } from "../support/componentStack.js"
import { AES_KEY, MESSAGE_TOKEN, SUITE, SUITE_CORP, SUITE_SECRET } from "../support/fixtures.js"
import { requireSdk, runSdkScript } from "../support/sdkScript.js"
import { KEY } from "../support/serverStack.js"

describe("SDK node-easywechat OpenWork through the gateway", () => {
  it.scopedLive(
    "suite and provider tokens, a forwarded service call, the corp token and a corp call: unchanged, no real credential",
    () =>
      Effect.gen(function*() {
        yield* requireSdk("node-easywechat")
        const { controls, server, wecom } = yield* serveSuiteGateway()
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
