import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { parseClientKeys } from "../../src/server/ServerConfig.js"
import { APP, auth, awaitReady, errorCode, KEY, OTHER, send, startStack, THIRD } from "../support/serverStack.js"

const SCOPED = "scoped-client-key-for-one-app-9d8e"
const PAIR = "scoped-client-key-for-two-apps-4c5b"

const routes = (appId: string) =>
  [
    { method: "GET", path: `/v1/apps/${appId}/access-token` },
    { method: "POST", path: `/v1/apps/${appId}/access-token/refresh`, body: JSON.stringify({ stale_token: "stale" }) },
    { method: "GET", path: `/v1/apps/${appId}/jsapi-ticket` },
    {
      method: "POST",
      path: `/v1/apps/${appId}/jssdk-config`,
      body: JSON.stringify({ url: "https://example.com/page" })
    }
  ] as const

// Everything a careless or hostile client might send instead of the key.
const nearMisses: ReadonlyArray<Record<string, string>> = [
  {},
  { authorization: "" },
  { authorization: "Bearer" },
  { authorization: "Bearer " },
  { authorization: "Bearer wrong-key-wrong-key-wrong" },
  { authorization: KEY },
  { authorization: `Basic ${KEY}` },
  { authorization: `Bearer  ${KEY}` },
  { authorization: `Bearer ${KEY.slice(0, -1)}` },
  { authorization: `Bearer ${KEY}x` },
  { authorization: `Bearer ${KEY.toUpperCase()}` },
  { authorization: `Bearer ${KEY.slice(0, -1)}${KEY.endsWith("d") ? "e" : "d"}` },
  { authorization: `Bearer ${KEY.slice(1)}` },
  // The configured entry text, scope included, is not the key.
  { authorization: `Bearer ${SCOPED}@${APP}` },
  { authorization: `Bearer ${KEY},${SCOPED}` },
  { authorization: `Bearer ${KEY.slice(0, 16)}` },
  { "x-api-key": KEY },
  { cookie: `authorization=Bearer ${KEY}` }
]

const clientKeys = [
  { key: Redacted.make(KEY) },
  { key: Redacted.make(SCOPED), apps: [APP] },
  { key: Redacted.make(PAIR), apps: [APP, OTHER] }
] as never // brands: the app ids are checked by parseClientKeys in production; here they are literals

describe("Access", () => {
  it.live("every /v1 route refuses missing, wrong and near-miss keys with 401 and never reaches a handler", () =>
    Effect.gen(function*() {
      const stack = yield* startStack({ apps: [APP, OTHER], clientKeys })
      yield* awaitReady(stack.base)
      const before = yield* stack.emulator.stats
      for (const route of routes(APP)) {
        for (const headers of nearMisses) {
          const answer = yield* send(stack.port, {
            method: route.method,
            path: route.path,
            headers: { ...headers, "content-type": "application/json" },
            ...("body" in route ? { body: route.body } : {})
          })
          expect({ route: route.path, headers, status: answer.status }).toEqual({
            route: route.path,
            headers,
            status: 401
          })
          expect(errorCode(answer.text)).toBe("unauthorized")
        }
      }
      // No refused request made the server touch WeChat (no refresh, no ticket).
      const after = yield* stack.emulator.stats
      expect(after.apps[APP]?.ticketCalls ?? 0).toBe(before.apps[APP]?.ticketCalls ?? 0)
      expect(after.apps[APP]?.classicCalls).toBe(before.apps[APP]?.classicCalls)
      // The right key passes on every route.
      for (const route of routes(APP)) {
        const answer = yield* send(stack.port, {
          method: route.method,
          path: route.path,
          headers: { ...auth(), "content-type": "application/json" },
          ...("body" in route ? { body: route.body } : {})
        })
        expect({ route: route.path, status: answer.status }).toEqual({ route: route.path, status: 200 })
      }
    }).pipe(Effect.scoped))

  it.live("a key limited to some apps serves those and answers 404 unknown_app for any other, like an app the server lacks", () =>
    Effect.gen(function*() {
      const stack = yield* startStack({ apps: [APP, OTHER], clientKeys })
      const get = (key: string, appId: string) =>
        send(stack.port, { path: `/v1/apps/${appId}/access-token`, headers: auth(key) })
      for (const key of [KEY, SCOPED, PAIR]) expect((yield* get(key, APP)).status).toBe(200)
      expect((yield* get(KEY, OTHER)).status).toBe(200)
      expect((yield* get(PAIR, OTHER)).status).toBe(200)
      for (const route of routes(OTHER)) {
        const answer = yield* send(stack.port, {
          method: route.method,
          path: route.path,
          headers: { ...auth(SCOPED), "content-type": "application/json" },
          ...("body" in route ? { body: route.body } : {})
        })
        expect({ route: route.path, status: answer.status }).toEqual({ route: route.path, status: 404 })
        expect(errorCode(answer.text)).toBe("unknown_app")
        expect(answer.text).not.toContain("access_token\"")
      }
      // Indistinguishable from an app this server does not have: same status, same body but the id.
      const hidden = yield* get(SCOPED, OTHER)
      const absent = yield* get(KEY, THIRD)
      expect(absent.status).toBe(404)
      expect(hidden.text.replace(OTHER, "APP")).toBe(absent.text.replace(THIRD, "APP"))
      // A scoped key cannot escape through an oddly written app id either.
      for (
        const path of [
          `/v1/apps/${OTHER.toUpperCase()}/access-token`,
          `/v1/apps/${APP}%2F..%2F${OTHER}/access-token`,
          `/v1/apps/${OTHER}%00/access-token`
        ]
      ) {
        const answer = yield* send(stack.port, { path, headers: auth(SCOPED) })
        expect(answer.status).toBeGreaterThanOrEqual(400)
        expect(answer.status).toBeLessThan(500)
        expect(answer.text).not.toContain("access_token\"")
      }
    }).pipe(Effect.scoped))

  describe("CLIENT_KEYS", () => {
    const parse = (raw: string) => parseClientKeys(raw)
    const view = (raw: string) =>
      Either.map(parse(raw), (keys) => keys.map((entry) => ({ key: Redacted.value(entry.key), apps: entry.apps })))

    it("keeps the old form: comma-separated keys for every app", () => {
      expect(view(`${KEY}, ${SCOPED}`)).toEqual(
        Either.right([{ key: KEY, apps: undefined }, { key: SCOPED, apps: undefined }])
      )
    })

    it("limits a key to the apps after @, joined by +", () => {
      expect(view(`${KEY},${SCOPED}@${APP},${PAIR}@${APP}+${OTHER}`)).toEqual(Either.right([
        { key: KEY, apps: undefined },
        { key: SCOPED, apps: [APP] },
        { key: PAIR, apps: [APP, OTHER] }
      ]))
      // The scope is read after the last @: a key may itself contain @.
      expect(view(`user@example.com-key-0123@${APP}`)).toEqual(
        Either.right([{ key: "user@example.com-key-0123", apps: [APP] }])
      )
    })

    it("refuses a mistyped scope instead of widening the key to every app, without echoing the key", () => {
      for (
        const raw of [
          `${SCOPED}@`,
          `${SCOPED}@wx123`,
          `${SCOPED}@${APP}+`,
          `${SCOPED}@${APP.toUpperCase()}`,
          `${SCOPED}@${APP},${OTHER}`,
          `${SCOPED}@${APP} +${OTHER}`,
          `short@${APP}`,
          OTHER
        ]
      ) {
        const parsed = parse(raw)
        expect(Either.isLeft(parsed), raw).toBe(true)
        if (Either.isLeft(parsed)) {
          expect(parsed.left.toString()).toContain("CLIENT_KEYS")
          expect(parsed.left.toString()).not.toContain(SCOPED)
        }
      }
    })
  })
})
