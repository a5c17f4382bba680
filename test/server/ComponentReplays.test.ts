/**
 * Replayed and out-of-order pushes against the real server, as an attacker
 * who captured WeChat's pushes (or WeChat's own late retries) would send
 * them: each is answered `success` (WeChat must not retry it) and changes
 * nothing. Once with one server over the memory store, once with two
 * servers over one real Redis, the push captured at one replayed to the other.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option } from "effect"
import * as Component from "../../src/families/component/Component.js"
import * as AuthorizationCodes from "../../src/families/component/internal/authorizationCodes.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as StoreDocuments from "../../src/StoreDocuments.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import type * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import { seal } from "../support/componentPush.js"
import * as ComponentStack from "../support/componentStack.js"
import { AES_KEY, COMPONENT, MERCHANT, MESSAGE_TOKEN } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import { auth } from "../support/serverStack.js"

const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)

type Sealed = Effect.Effect.Success<ReturnType<typeof seal>>

const sign = (xml: string) =>
  seal({ componentAppId: COMPONENT, messageToken: MESSAGE_TOKEN, encodingAesKey: AES_KEY }, xml)

// POSTs a push as WeChat does: the signed query, the XML envelope.
const deliver = (server: ComponentStack.ComponentServer, push: Sealed) =>
  ComponentStack.call(
    `${ComponentStack.eventsUrl(server.base)}?${new URLSearchParams({ ...push.query, encrypt_type: "aes" })}`,
    {
      method: "POST",
      headers: { "content-type": "text/xml" },
      body: push.body
    }
  )

const authorizerToken = (server: ComponentStack.ComponentServer) =>
  ComponentStack.call(ComponentStack.authorizerRoute(server.base, MERCHANT, "/access-token"), { headers: auth() })

const live = (server: ComponentStack.ComponentServer) =>
  Effect.gen(function*() {
    expect((yield* authorizerToken(server)).status).toBe(200)
    const listed = yield* ComponentStack.call(ComponentStack.componentRoute(server.base, "/authorizers"), {
      headers: auth()
    })
    expect(listed.json.authorizers).toEqual([expect.objectContaining({ app_id: MERCHANT, valid: true })])
  })

interface Stack {
  readonly first: ComponentStack.ComponentServer
  readonly second: ComponentStack.ComponentServer
  readonly store: TokenStore.TokenStoreShape
  readonly documents: StoreDocuments.StoreDocumentsShape
  readonly controls: Emulator.ComponentControls
}

/**
 * WeChat and the server(s), a ticket in: `first` takes WeChat's pushes; the
 * captured ones are replayed to `second` (the same server, or another
 * replica on the same store). `shared` reads what the servers share.
 */
const stacks = {
  "one server, memory store": Effect.gen(function*() {
    const shared = yield* Layer.build(StoreSpec.layerMemory)
    return yield* stack(shared, Layer.succeedContext(shared), 1)
  }),
  "two servers on one Redis, captured at one and replayed to the other": Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const storeLayer = Layer.orDie(TokenStoreRedis.layer(redis.url))
    return yield* stack(yield* Layer.build(storeLayer), storeLayer, 2)
  })
}

type StoreAndDocuments = TokenStore.TokenStore | StoreDocuments.StoreDocuments

const stack = (
  shared: Context.Context<StoreAndDocuments>,
  storeLayer: Layer.Layer<StoreAndDocuments>,
  replicas: 1 | 2
) =>
  Effect.gen(function*() {
    const wechat = yield* ComponentStack.serveWeChat()
    const controls = wechat.emulator.component
    const first = yield* ComponentStack.serveComponentServer(wechat.url, storeLayer)
    const second = replicas === 1 ? first : yield* ComponentStack.serveComponentServer(wechat.url, storeLayer)
    yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(first.base))
    yield* controls.pushTicket(COMPONENT)
    yield* ComponentStack.eventually(Effect.map(
      ComponentStack.call(ComponentStack.componentRoute(first.base, "/access-token"), { headers: auth() }),
      (answer) => answer.status === 200
    ))
    return {
      first,
      second,
      store: Context.get(shared, TokenStore.TokenStore),
      documents: Context.get(shared, StoreDocuments.StoreDocuments),
      controls
    } satisfies Stack
  })

// With no push URL WeChat only logs its pushes: the test captures the last one and delivers it itself.
const captured = (controls: Emulator.ComponentControls) =>
  Effect.gen(function*() {
    const log = yield* controls.pushLog(COMPONENT)
    const xml = log[log.length - 1]!.xml
    return { xml, push: yield* sign(xml) }
  })

const success = (answer: { readonly status: number; readonly text: string }) =>
  expect([answer.status, answer.text]).toEqual([200, "success"])

// The merchant authorizes and revokes (both pushes captured and delivered),
// then, a moment later (CreateTime counts whole seconds), authorizes again.
const revokedThenBack = ({ controls, first, second }: Stack) =>
  Effect.gen(function*() {
    yield* controls.setPushUrl(COMPONENT, undefined)
    yield* controls.authorize(COMPONENT, MERCHANT)
    const authorized = yield* captured(controls)
    success(yield* deliver(first, authorized.push))
    yield* ComponentStack.eventually(Effect.map(authorizerToken(first), (answer) => answer.status === 200))
    yield* controls.unauthorize(COMPONENT, MERCHANT)
    const unauthorized = yield* captured(controls)
    success(yield* deliver(first, unauthorized.push))
    expect((yield* authorizerToken(first)).status).toBe(404)
    yield* Effect.sleep(Duration.millis(1_100))
    yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(first.base))
    const code = yield* controls.authorize(COMPONENT, MERCHANT)
    yield* ComponentStack.eventually(Effect.map(authorizerToken(first), (answer) => answer.status === 200))
    yield* ComponentStack.eventually(Effect.map(authorizerToken(second), (answer) => answer.status === 200))
    return { authorized, unauthorized, code }
  })

// The authorizer's code still waiting for its exchange (an exchanged one is kept, marked, until it expires).
const pendingCode = (documents: StoreDocuments.StoreDocumentsShape) =>
  Effect.map(AuthorizationCodes.list(documents), (codes) => {
    const held = codes.get(owner)
    return held?.exchangedAt === undefined ? held?.code : undefined
  })

const heldTicket = (server: ComponentStack.ComponentServer) =>
  Effect.map(server.engine.get(COMPONENT, Component.verifyTicket), (ticket) => ticket.value)

describe.each(Object.entries(stacks))("component pushes replayed or out of order change nothing: %s", (_, make) => {
  it.scopedLive(
    "exact replays of a captured `authorized` and `unauthorized`: success, nothing changes",
    () =>
      Effect.gen(function*() {
        const stack = yield* make
        const { authorized, unauthorized } = yield* revokedThenBack(stack)
        // The new code was exchanged: nothing is pending.
        yield* ComponentStack.eventually(Effect.map(pendingCode(stack.documents), (code) => code === undefined))
        const journal = yield* stack.documents.get(AuthorizationCodes.NAME)
        success(yield* deliver(stack.second, unauthorized.push))
        success(yield* deliver(stack.second, authorized.push))
        // The replayed code was not journaled again, and the authorizer stays live everywhere.
        expect(yield* stack.documents.get(AuthorizationCodes.NAME)).toEqual(journal)
        yield* live(stack.first)
        yield* live(stack.second)
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "an `unauthorized` signed anew after the merchant authorized again: ignored, the authorizer stays",
    () =>
      Effect.gen(function*() {
        const stack = yield* make
        const { unauthorized } = yield* revokedThenBack(stack)
        // Not an exact replay (a new signature, as a late retry of WeChat's has): only its CreateTime tells.
        success(yield* deliver(stack.second, yield* sign(unauthorized.xml)))
        yield* live(stack.first)
        yield* live(stack.second)
      }),
    { timeout: 60_000 }
  )

  it.scopedLive("a verify ticket arriving after a newer one: the newer one is kept", () =>
    Effect.gen(function*() {
      const { controls, first, second, store } = yield* make
      yield* controls.setPushUrl(COMPONENT, undefined)
      yield* controls.pushTicket(COMPONENT)
      const older = yield* captured(controls)
      yield* Effect.sleep(Duration.millis(1_100))
      yield* controls.setPushUrl(COMPONENT, ComponentStack.eventsUrl(first.base))
      const newer = yield* controls.pushTicket(COMPONENT)
      yield* ComponentStack.eventually(Effect.map(heldTicket(second), (ticket) => ticket === newer))
      success(yield* deliver(second, older.push))
      expect(yield* heldTicket(first)).toBe(newer)
      expect(yield* heldTicket(second)).toBe(newer)
      const stored = yield* store.get({ appId: COMPONENT as never, kind: Component.verifyTicket })
      expect(Option.map(stored, (record) => record.value)).toEqual(Option.some(newer))
    }), { timeout: 60_000 })
})

describe("component pushes: the replay guard lets WeChat's retries in", () => {
  it.scopedLive(
    "a push answered 503 (the store refused the write) is taken when WeChat sends it again",
    () =>
      Effect.gen(function*() {
        const memory = yield* Layer.build(StoreSpec.layerMemory)
        let full = false
        const store: TokenStore.TokenStoreShape = {
          ...Context.get(memory, TokenStore.TokenStore),
          set: (record) =>
            full
              ? Effect.fail(new TokenStore.StoreError({ operation: "set", detail: "disk full" }))
              : Context.get(memory, TokenStore.TokenStore).set(record)
        }
        const shared = Context.add(memory, TokenStore.TokenStore, store)
        const { controls, first } = yield* stack(shared, Layer.succeedContext(shared), 1)
        yield* controls.setPushUrl(COMPONENT, undefined)
        const ticket = yield* controls.pushTicket(COMPONENT)
        const { push } = yield* captured(controls)
        full = true
        const refused = yield* deliver(first, push)
        expect([refused.status, refused.json.error.code]).toEqual([503, "StoreError"])
        expect(yield* heldTicket(first)).not.toBe(ticket)
        full = false
        success(yield* deliver(first, push))
        expect(yield* heldTicket(first)).toBe(ticket)
      }),
    { timeout: 60_000 }
  )
})
