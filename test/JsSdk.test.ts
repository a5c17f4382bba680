import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Random, Schema } from "effect"
import * as JsSdk from "../src/JsSdk.js"

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
    const string1 = `jsapi_ticket=${official.jsapiTicket}&noncestr=${official.nonceStr}&timestamp=${official.timestamp}&url=${official.url}`
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
      const result = JsSdk.pageUrl(url)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("InvalidPageUrl")
        expect(result.left.message).toContain(reason)
        expect(result.left.message).toContain("location.href")
      }
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
