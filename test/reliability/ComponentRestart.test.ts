import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Component from "../../src/families/component/Component.js"
import * as OwnerId from "../../src/OwnerId.js"
import type * as StoreDocuments from "../../src/StoreDocuments.js"
import type * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreFile from "../../src/TokenStoreFile.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import * as ComponentStack from "../support/componentStack.js"
import { COMPONENT, MERCHANT } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import { auth } from "../support/serverStack.js"

const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)

// Restart: neither the ticket nor the refresh token is lost, and nothing is fetched again.
const restartKeepsEverything = (store: () => Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments>) =>
  Effect.gen(function*() {
    const wechat = yield* ComponentStack.serveWeChat()
    const controls = wechat.emulator.component
    const before = yield* Effect.scoped(Effect.gen(function*() {
      const server = yield* ComponentStack.serveComponentServer(wechat.url, store())
      yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(server.base))
      yield* controls.pushTicket(COMPONENT)
      // The server's own start-up request for a push may race this one: served once both settled.
      yield* ComponentStack.eventually(Effect.map(
        ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), { headers: auth() }),
        (answer) => answer.status === 200
      ))
      const componentToken = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), {
        headers: auth()
      })
      yield* controls.authorize(COMPONENT, MERCHANT)
      yield* ComponentStack.eventually(Effect.map(
        ComponentStack.call(ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"), {
          headers: auth()
        }),
        (answer) => answer.status === 200
      ))
      const authorizerToken = yield* ComponentStack.call(
        ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"),
        { headers: auth() }
      )
      return {
        // The latest held: the server's own start-up request for a push may have brought a later one.
        ticket: (yield* server.engine.get(COMPONENT, Component.verifyTicket)).value,
        componentToken: componentToken.json.access_token as string,
        authorizerToken: authorizerToken.json.access_token as string,
        refreshToken: (yield* server.engine.get(owner, Component.refreshToken)).value
      }
    }))
    yield* controls.setPushUrl(COMPONENT, undefined)
    const stats = yield* controls.stats(COMPONENT)

    const server = yield* ComponentStack.serveComponentServer(wechat.url, store())
    expect((yield* server.engine.get(COMPONENT, Component.verifyTicket)).value).toBe(before.ticket)
    expect((yield* server.engine.get(owner, Component.refreshToken)).value).toBe(before.refreshToken)
    const componentToken = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/access-token"), {
      headers: auth()
    })
    expect(componentToken.json.access_token).toBe(before.componentToken)
    const authorizerToken = yield* ComponentStack.call(
      ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"),
      { headers: auth() }
    )
    expect(authorizerToken.json.access_token).toBe(before.authorizerToken)
    expect(yield* controls.isValidAuthorizerToken(before.authorizerToken, MERCHANT)).toBe(true)
    // The authorizer is back in the list without anyone asking for it.
    const listed = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizers"), {
      headers: auth()
    })
    expect(listed.json.authorizers).toEqual([expect.objectContaining({ app_id: MERCHANT, valid: true })])
    expect(yield* controls.stats(COMPONENT)).toEqual(stats)
  })

describe("third-party platform: a restart loses neither ticket nor refresh tokens and fetches nothing", () => {
  it.scopedLive("file store", () => {
    const path = NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "component-")), "store.json")
    return restartKeepsEverything(() => TokenStoreFile.layerNode(path).pipe(Layer.orDie))
  }, { timeout: 30_000 })

  it.scopedLive("Redis store", () =>
    Effect.gen(function*() {
      const redis = yield* RedisServer.make
      yield* restartKeepsEverything(() => TokenStoreRedis.layer(redis.url).pipe(Layer.orDie))
    }), { timeout: 30_000 })
})
