/**
 * `/readyz` and `/metrics` past 1,000 credentials: counted per kind, not
 * listed, with at most 100 of the invalid ones named. The server holds
 * 1,150 authorizers from its store: 1,000 with a valid token, 150 whose
 * token WeChat will not issue (busy).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as AppId from "../../src/AppId.js"
import * as Component from "../../src/families/component/Component.js"
import { authorizer } from "../../src/OwnerId.js"
import * as StoreDocuments from "../../src/StoreDocuments.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../../src/Token.js"
import * as TokenStore from "../../src/TokenStore.js"
import { call, COMPONENT, serveComponentServer, serveWeChat } from "../support/componentStack.js"
import { auth, OPS_KEY } from "../support/serverStack.js"

const HOUR = 3_600_000
const WITH_TOKEN = 1_000
const WITHOUT_TOKEN = 150

const record = (appId: TokenRecord["appId"], kind: string, value: string, now: number, lifetime = 2 * HOUR) =>
  new TokenRecord({
    appId,
    kind,
    value,
    mode: kind === Component.refreshToken || kind === Component.verifyTicket ? "stable" : "classic",
    fetchedAt: now,
    expiresAt: now + lifetime,
    refreshAt: now + lifetime - HOUR / 12,
    generation: 1
  })

// A store as a server that ran for a while leaves it.
const storeHolding = (now: number) =>
  Layer.effect(
    TokenStore.TokenStore,
    Effect.gen(function*() {
      const store = yield* TokenStore.TokenStore
      const component = AppId.make(COMPONENT)
      yield* store.set(record(component, Component.verifyTicket, "ticket@@@held", now, 12 * HOUR))
      yield* store.set(record(component, Component.componentToken, "component-token-held", now))
      for (let index = 0; index < WITH_TOKEN + WITHOUT_TOKEN; index++) {
        const owner = authorizer(component, AppId.make(`wx${index.toString(16).padStart(16, "0")}`))
        yield* store.set(record(owner, Component.refreshToken, `refreshtoken@@@${index}`, now, 3_650 * 24 * HOUR))
        if (index < WITH_TOKEN) yield* store.set(record(owner, Component.authorizerToken, `token-${index}`, now))
      }
      return store
    }).pipe(Effect.orDie, Effect.provide(TokenStore.layerMemory))
  ).pipe(Layer.merge(StoreDocuments.layerMemory))

describe("/readyz and /metrics past 1,000 credentials", () => {
  it.live("count each kind, name at most 100 invalid ones, and stay ready while the configured owners are", () =>
    Effect.gen(function*() {
      const wechat = yield* serveWeChat()
      yield* wechat.emulator.injectFault({ fault: Emulator.Fault.Busy(), endpoints: ["api_authorizer_token"] })
      const server = yield* serveComponentServer(wechat.url, storeHolding(Date.now()))
      const readyz = yield* call(`${server.base}/readyz`, { headers: auth(OPS_KEY) })
      // Ready: the component, the one configured owner, holds its token.
      expect(readyz.status).toBe(200)
      expect(readyz.json.ready).toBe(true)
      expect(readyz.json.summary).toEqual(expect.arrayContaining([
        { kind: Component.authorizerToken, total: WITH_TOKEN + WITHOUT_TOKEN, valid: WITH_TOKEN },
        { kind: Component.refreshToken, total: WITH_TOKEN + WITHOUT_TOKEN, valid: WITH_TOKEN + WITHOUT_TOKEN },
        { kind: Component.componentToken, total: 1, valid: 1 }
      ]))
      expect(readyz.json.credentials).toHaveLength(100)
      for (const entry of readyz.json.credentials) {
        expect(entry).toMatchObject({ kind: Component.authorizerToken, valid: false })
        expect(Number.parseInt(String(entry.app_id).slice(-16), 16)).toBeGreaterThanOrEqual(WITH_TOKEN)
      }
      const metrics = yield* call(`${server.base}/metrics`, { headers: auth(OPS_KEY) })
      expect(metrics.text).toContain(
        `wechat_token_credentials{app="${COMPONENT}",kind="${Component.authorizerToken}",valid="true"} ${WITH_TOKEN}`
      )
      expect(metrics.text).toContain(
        `wechat_token_credentials{app="${COMPONENT}",kind="${Component.authorizerToken}",valid="false"} ${WITHOUT_TOKEN}`
      )
    }).pipe(Effect.scoped))
})
