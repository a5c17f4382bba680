import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Random, Schema, TestClock } from "effect"
import { createHash } from "node:crypto"
import * as JsSdk from "../src/JsSdk.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { TokenEngine } from "../src/TokenEngine.js"
import * as Harness from "./support/engine.js"
import { APP } from "./support/engine.js"

// The worked example of WeChat's JS-SDK documentation, appendix 1
// (附录1-JS-SDK使用权限签名算法, https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html#62):
// string1 = jsapi_ticket=…&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457&url=http://mp.weixin.qq.com?params=value
// signature = sha1(string1) = 0f9de62fce790f9a083d5c99e95740ceb90c27ed
const official = {
  jsapiTicket: "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
  nonceStr: "Wm3WZYTPz0wzccnW",
  timestamp: 1414587457,
  url: "http://mp.weixin.qq.com?params=value"
}
const officialSignature = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"

describe("JsSdk.signature", () => {
  it("reproduces the official example, which node's crypto confirms", () => {
    const string1 =
      `jsapi_ticket=${official.jsapiTicket}&noncestr=${official.nonceStr}&timestamp=${official.timestamp}&url=${official.url}`
    expect(createHash("sha1").update(string1).digest("hex")).toBe(officialSignature)
    expect(JsSdk.signature(official)).toBe(officialSignature)
  })

  it("ignores the #fragment but nothing else of the URL", () => {
    expect(JsSdk.signature({ ...official, url: `${official.url}#/route?x=1` })).toBe(officialSignature)
    // Not normalised: `new URL` would add a "/" before "?" and break the page's own signature.
    expect(JsSdk.signature({ ...official, url: "http://mp.weixin.qq.com/?params=value" })).not.toBe(officialSignature)
  })
})

describe("JsSdk.pageUrl", () => {
  it("accepts absolute http(s) URLs as given", () => {
    for (const url of [official.url, "https://example.com/a/b?c=d&e=%E4%B8%AD#frag", "http://127.0.0.1:8080/"]) {
      expect(JsSdk.pageUrl(url)).toEqual(Either.right(url))
      expect(Schema.is(JsSdk.JsSdkUrl)(url)).toBe(true)
    }
  })

  it("rejects anything else with an InvalidPageUrl that says what to send", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["", "empty"],
      ["/page?x=1", "not an absolute URL"],
      ["example.com/page", "not an absolute URL"],
      ["ftp://example.com/page", "scheme is ftp"],
      ["javascript:alert(1)", "scheme is javascript"],
      ["https://exa mple.com/", "whitespace"],
      [" https://example.com/", "whitespace"]
    ]
    for (const [url, reason] of cases) {
      const refused = Either.getOrThrow(Either.flip(JsSdk.pageUrl(url)))
      expect(refused._tag).toBe("InvalidPageUrl")
      expect(refused.message).toContain(reason)
      expect(refused.message).toContain("location.href")
      expect(Schema.is(JsSdk.JsSdkUrl)(url)).toBe(false)
    }
  })
})

describe("JsSdk.nonce", () => {
  it.effect("draws 16+ characters of [A-Za-z0-9] from Effect Random", () =>
    Effect.gen(function*() {
      const nonces = yield* Effect.replicateEffect(JsSdk.nonce, 50)
      for (const nonce of nonces) expect(nonce).toMatch(/^[A-Za-z0-9]{16,}$/)
      expect(new Set(nonces).size).toBe(50)
      // Seeded Random gives the same nonce: no other source of randomness.
      const seeded = () => Effect.withRandom(JsSdk.nonce, Random.make("seed"))
      expect(yield* seeded()).toBe(yield* seeded())
    }))
})

describe("JsSdk.config", () => {
  // The engine is built inside each test, so TestClock drives it.
  const withEngine = <A, E>(body: Effect.Effect<A, E, TokenEngine | Emulator.WeChatEmulator>) =>
    Harness.withEngine(Harness.engineLayer(), body).pipe(
      Effect.provide(Harness.emulatorLayer({ ticketRenewal: "new-per-call" }))
    )
  const ticketCalls = Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.stats).pipe(
    Effect.map((stats) => stats.apps[APP]?.ticketCalls ?? 0)
  )

  it.scoped("signs the page with the current jsapi ticket, a Random nonce and the Clock's seconds", () =>
    withEngine(Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const engine = yield* TokenEngine
      const page = "https://example.com/shop?id=7"
      const config = yield* JsSdk.config(APP, page)
      const ticket = yield* engine.get(APP, "jsapi_ticket")
      expect(yield* emulator.isValidTicket(ticket.value, "jsapi")).toBe(true)
      expect(config.appId).toBe(APP)
      expect(config.timestamp).toBe(Math.floor((yield* Clock.currentTimeMillis) / 1000))
      expect(config.nonceStr).toMatch(/^[A-Za-z0-9]{16}$/)
      // Recomputed here from the documented string, not through JsSdk.signature.
      const string1 =
        `jsapi_ticket=${ticket.value}&noncestr=${config.nonceStr}&timestamp=${config.timestamp}&url=${page}`
      expect(config.signature).toBe(createHash("sha1").update(string1).digest("hex"))
      expect(Schema.is(JsSdk.JsSdkConfig)(config)).toBe(true)
      // Later pages reuse the cached ticket, each with its own nonce.
      const other = yield* JsSdk.config(APP, "https://example.com/other")
      expect(other.nonceStr).not.toBe(config.nonceStr)
      expect(yield* ticketCalls).toBe(1)
    })))

  it.scoped("after the ticket is refreshed, configs are signed with the new one", () =>
    withEngine(Effect.gen(function*() {
      const emulator = yield* Emulator.WeChatEmulator
      const engine = yield* TokenEngine
      const page = "https://example.com/"
      const before = yield* JsSdk.config(APP, page)
      const first = yield* engine.get(APP, "jsapi_ticket")
      yield* TestClock.adjust(Duration.hours(2))
      const after = yield* JsSdk.config(APP, page)
      const current = yield* engine.get(APP, "jsapi_ticket")
      expect(current.value).not.toBe(first.value)
      expect(yield* emulator.isValidTicket(current.value, "jsapi")).toBe(true)
      expect(after.timestamp - before.timestamp).toBe(7_200)
      expect(after.signature).toBe(
        JsSdk.signature({ jsapiTicket: current.value, nonceStr: after.nonceStr, timestamp: after.timestamp, url: page })
      )
      expect(after.signature).not.toBe(
        JsSdk.signature({ jsapiTicket: first.value, nonceStr: after.nonceStr, timestamp: after.timestamp, url: page })
      )
      expect(yield* ticketCalls).toBe(2)
    })))

  it.scoped("signs the URL without its #fragment", () =>
    withEngine(Effect.gen(function*() {
      const engine = yield* TokenEngine
      const config = yield* JsSdk.config(APP, "https://example.com/shop?id=7#/cart?step=2")
      const ticket = yield* engine.get(APP, "jsapi_ticket")
      const string1 = `jsapi_ticket=${ticket.value}&noncestr=${config.nonceStr}&timestamp=${config.timestamp}` +
        `&url=https://example.com/shop?id=7`
      expect(config.signature).toBe(createHash("sha1").update(string1).digest("hex"))
    })))

  it.scoped("a bad URL fails with InvalidPageUrl before any upstream call", () =>
    withEngine(Effect.gen(function*() {
      for (const url of ["/relative/page", "", "ftp://example.com/", "https://exa mple.com/"]) {
        const result = yield* Effect.flip(JsSdk.config(APP, url))
        expect(result).toMatchObject({ _tag: "InvalidPageUrl", url })
      }
      expect(yield* ticketCalls).toBe(0)
    })))

  it.scoped("an app that is not configured fails with UnknownApp", () =>
    withEngine(Effect.gen(function*() {
      const result = yield* Effect.flip(JsSdk.config("wxffffffffffffffff", "https://example.com/"))
      expect(result).toMatchObject({ _tag: "UnknownApp", appId: "wxffffffffffffffff" })
      expect(yield* ticketCalls).toBe(0)
    })))
})
