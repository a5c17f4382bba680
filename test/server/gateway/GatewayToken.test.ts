/**
 * The gateway token on its own: what it binds, how long it lasts, and that
 * no edit of it passes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Redacted, Schema } from "effect"
import * as OwnerId from "../../../src/OwnerId.js"
import * as GatewayToken from "../../../src/server/gateway/internal/gatewayToken.js"

const APP = "wx0123456789abcdef"
const OTHER = "wxfedcba9876543210"
const NOW = 1_800_000_000

const key = { key: Redacted.make("gateway-test-key-0123456789") }
const scoped = { key: Redacted.make("gateway-scoped-key-0123456789"), apps: [Schema.decodeSync(OwnerId.OwnerId)(APP)] }

describe("GatewayToken", () => {
  it("a token names its key, kind and owner; any keyring with the same keys reads it", () => {
    const token = GatewayToken.keyring([key, scoped]).issue(scoped, "app", APP, NOW)
    expect(token).toMatch(/^gw1\.[A-Za-z0-9_-]{11}\.a\.[0-9a-z]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
    expect(token).not.toContain(Redacted.value(scoped.key))
    const again = GatewayToken.keyring([{ key: Redacted.make("gateway-scoped-key-0123456789") }, key])
    expect(again.verify(token, NOW + 60)).toMatchObject({ kind: "app", owner: APP })
  })

  it("valid for 7200 s plus 300 s of grace, and not before 300 s ahead of its issue time", () => {
    const ring = GatewayToken.keyring([key])
    const token = ring.issue(key, "wecom", "ww0123456789abcdef/1000002", NOW)
    expect(ring.verify(token, NOW + 7200 + 300)?.owner).toBe("ww0123456789abcdef/1000002")
    expect(ring.verify(token, NOW + 7200 + 301)).toBeUndefined()
    expect(ring.verify(token, NOW - 300)).toBeDefined()
    expect(ring.verify(token, NOW - 301)).toBeUndefined()
  })

  it("every edit, another key, a removed key: refused", () => {
    const ring = GatewayToken.keyring([key, scoped])
    const token = ring.issue(key, "app", APP, NOW)
    const parts = token.split(".")
    const edited = [
      [parts[0], parts[1], "w", ...parts.slice(3)],
      [...parts.slice(0, 3), (NOW + 100).toString(36), ...parts.slice(4)],
      [...parts.slice(0, 4), Buffer.from(OTHER).toString("base64url"), parts[5]],
      ["gw2", ...parts.slice(1)],
      [...parts.slice(0, 5), parts[5]!.slice(0, -1)],
      [...parts, "x"]
    ].map((edit) => edit.join("."))
    for (const candidate of edited) expect(ring.verify(candidate, NOW)).toBeUndefined()
    expect(ring.verify(`${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`, NOW)).toBeUndefined()
    expect(ring.verify("x".repeat(600), NOW)).toBeUndefined()
    expect(GatewayToken.keyring([scoped]).verify(token, NOW)).toBeUndefined()
  })

  it("stays within WeChat's 512 characters for the longest owner names", () => {
    const owner = `wx0123456789abcdef:${"wx0123456789abcdef"}`
    expect(GatewayToken.keyring([key]).issue(key, "app", owner, NOW).length).toBeLessThanOrEqual(512)
  })
})
