import { HttpApp } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as MessageSignature from "../src/MessageSignature.js"

// Vectors computed independently (Python hashlib) from the rule in WeChat's
// "接入指南": sha1 of token, timestamp, nonce sorted as strings and concatenated.
const vectors = [
  {
    token: "testtoken",
    timestamp: "1409304348",
    nonce: "1234567",
    signature: "774110fe0eb07cd0f5508816d21be82fa00f5b29"
  },
  {
    token: "weixin",
    timestamp: "1700000000",
    nonce: "abc123XYZ",
    signature: "f0187415220b8b3091778f30a1902009e4da9efe"
  },
  {
    token: "中文token",
    timestamp: "1414587457",
    nonce: "Wm3WZYTPz0wzccnW",
    signature: "43c51d1ea05a3f8e783b269fc0120f429980ec56"
  }
]

// A second implementation to cross-check against: node's crypto, written out.
const reference = (token: string, timestamp: string, nonce: string) =>
  createHash("sha1").update([token, timestamp, nonce].sort().join("")).digest("hex")

describe("MessageSignature.verify", () => {
  it("accepts the known vectors, which node's crypto reproduces", () => {
    for (const { nonce, signature, timestamp, token } of vectors) {
      expect(reference(token, timestamp, nonce)).toBe(signature)
      expect(MessageSignature.sign({ token: Redacted.make(token), timestamp, nonce })).toBe(signature)
      expect(MessageSignature.verify({ token: Redacted.make(token), signature, timestamp, nonce })).toBe(true)
    }
  })

  it("rejects a wrong signature, a tampered timestamp or nonce, a wrong token and odd lengths", () => {
    const { nonce, signature, timestamp, token } = vectors[0]!
    const secret = Redacted.make(token)
    const flipped = `${signature.slice(0, -1)}${signature.endsWith("0") ? "1" : "0"}`
    expect(MessageSignature.verify({ token: secret, signature: flipped, timestamp, nonce })).toBe(false)
    expect(MessageSignature.verify({ token: secret, signature, timestamp: "1409304349", nonce })).toBe(false)
    expect(MessageSignature.verify({ token: secret, signature, timestamp, nonce: "1234568" })).toBe(false)
    expect(MessageSignature.verify({ token: Redacted.make("othertoken"), signature, timestamp, nonce })).toBe(false)
    expect(MessageSignature.verify({ token: secret, signature: "", timestamp, nonce })).toBe(false)
    expect(MessageSignature.verify({ token: secret, signature: signature.slice(0, 39), timestamp, nonce })).toBe(false)
    expect(MessageSignature.verify({ token: secret, signature: `${signature}0`, timestamp, nonce })).toBe(false)
  })

  it("agrees with node's crypto on arbitrary inputs", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.string(), FastCheck.string(), FastCheck.string(), (token, timestamp, nonce) => {
        const signature = reference(token, timestamp, nonce)
        return MessageSignature.verify({ token: Redacted.make(token), signature, timestamp, nonce })
      }),
      { numRuns: 300 }
    )
  })
})

describe("MessageSignature.verificationHandler", () => {
  const { nonce, signature, timestamp, token } = vectors[0]!
  const handle = HttpApp.toWebHandler(MessageSignature.verificationHandler({ token: Redacted.make(token) }))
  const get = (query: Record<string, string>) =>
    Effect.promise(() => handle(new Request(`http://localhost/wechat/callback?${new URLSearchParams(query)}`)))

  it.effect("echoes echostr as text/plain when the signature is valid", () =>
    Effect.gen(function*() {
      const response = yield* get({ signature, timestamp, nonce, echostr: "5838479218127813673" })
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toMatch(/^text\/plain/)
      expect(yield* Effect.promise(() => response.text())).toBe("5838479218127813673")
    }))

  it.effect("401 on a tampered timestamp, without echoing", () =>
    Effect.gen(function*() {
      const response = yield* get({ signature, timestamp: "1409304349", nonce, echostr: "5838479218127813673" })
      expect(response.status).toBe(401)
      expect(yield* Effect.promise(() => response.text())).not.toContain("5838479218127813673")
    }))

  it.effect("400 naming the missing parameters", () =>
    Effect.gen(function*() {
      const response = yield* get({ signature, timestamp })
      expect(response.status).toBe(400)
      expect(yield* Effect.promise(() => response.text())).toContain("nonce, echostr")
    }))
})
