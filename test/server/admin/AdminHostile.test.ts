/**
 * Hostile requests on every admin route: malformed, deep, oversized,
 * wrong types, unknown fields, ids of the wrong shape, the wrong kind of
 * key. Each gets a 4xx, and the registry's owners and keys stay as they were.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AES_KEY, COMPONENT, COMPONENT_SECRET, MESSAGE_TOKEN } from "../../support/componentStack.js"
import { APP, KEY, OTHER, SECRET } from "../../support/serverStack.js"
import { ADMIN_KEY, CORP, serve } from "./adminServer.js"

const bodies = [
  "{",
  "[]",
  "null",
  `{"secret":1}`,
  `{"secret":""}`,
  `{"secret":"${"x".repeat(300)}"}`,
  `{"secret":"${SECRET}","unknown":true}`,
  `{"secret":"${SECRET}","mode":"x"}`,
  "[".repeat(10_000) + "]".repeat(10_000),
  JSON.stringify({ secret: "x".repeat(2_000_000) })
]
const keyBodies = [
  "{",
  `{"scope":"${APP}","label":"x"}`,
  `{"scope":["not-an-owner"],"label":"x"}`,
  `{"scope":[],"label":""}`,
  `{"scope":[],"label":"x","admin":true}`,
  `{"scope":[],"label":${JSON.stringify("x".repeat(101))}}`
]
const component = { secret: COMPONENT_SECRET, token: MESSAGE_TOKEN, encodingAesKey: AES_KEY }
const componentBodies = [
  { ...component, encodingAesKey: "x".repeat(42) },
  { ...component, encodingAesKey: `${"x".repeat(42)}!` },
  { ...component, token: "ab" },
  { ...component, token: 12345 },
  { ...component, aesKey: AES_KEY },
  { secret: COMPONENT_SECRET, token: MESSAGE_TOKEN }
].map((body) => JSON.stringify(body))

describe("admin API: hostile requests", () => {
  it.scopedLive("every route answers 4xx and changes nothing", () =>
    Effect.gen(function*() {
      const { call, registry } = yield* serve
      const snapshot = Effect.map(registry.current, (held) =>
        JSON.stringify([
          Array.from(held.apps.keys()),
          Array.from(held.agents.keys()),
          Array.from(held.components.keys()),
          Array.from(held.keys.keys())
        ]))
      expect((yield* call("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, { secret: SECRET })).status).toBe(200)
      const before = yield* snapshot
      const refused: Array<string> = []
      const expect4xx = (method: string, path: string, key: string, body?: string) =>
        Effect.map(call(method, path, key, body), (answer) => {
          if (answer.status < 400 || answer.status >= 500) {
            refused.push(`${method} ${path} ${answer.status}`)
          }
        })
      for (const body of bodies) {
        yield* expect4xx("PUT", `/v1/admin/apps/${OTHER}`, ADMIN_KEY, body)
        yield* expect4xx("PUT", `/v1/admin/wecom/${CORP}/agents/1000002`, ADMIN_KEY, body)
        yield* expect4xx("PUT", `/v1/admin/components/${COMPONENT}`, ADMIN_KEY, body)
      }
      for (const body of componentBodies) {
        yield* expect4xx("PUT", `/v1/admin/components/${COMPONENT}`, ADMIN_KEY, body)
      }
      for (const body of keyBodies) {
        yield* expect4xx("POST", "/v1/admin/keys", ADMIN_KEY, body)
      }
      const badIds = [
        ["PUT", "/v1/admin/apps/wx123", `{"secret":"s"}`],
        ["DELETE", "/v1/admin/apps/..%2Fkeys"],
        ["PUT", "/v1/admin/wecom/notacorp/agents/1", `{"secret":"s"}`],
        ["DELETE", `/v1/admin/wecom/${CORP}/agents/${"a".repeat(40)}`],
        ["DELETE", "/v1/admin/keys/not%20an%20id"],
        ["PUT", "/v1/admin/components/wx123", `{"secret":"s","token":"abc","encodingAesKey":"${"a".repeat(43)}"}`],
        ["DELETE", "/v1/admin/components/..%2Fapps"]
      ] as const
      for (const [method, path, body] of badIds) {
        yield* expect4xx(method, path, ADMIN_KEY, body)
      }
      // The wrong kind of key, both ways.
      for (
        const [method, path] of [
          ["GET", "/v1/admin/apps"],
          ["DELETE", `/v1/admin/apps/${OTHER}`],
          ["GET", "/v1/admin/components"]
        ] as const
      ) {
        yield* expect4xx(method, path, KEY)
        expect((yield* call(method, path, KEY)).status).toBe(401)
      }
      expect((yield* call("GET", `/v1/apps/${APP}/access-token`, ADMIN_KEY)).status).toBe(401)
      expect(refused).toEqual([])
      expect(yield* snapshot).toBe(before)
    }))
})
