import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Fiber, identity, Layer, Option, Queue, TestClock } from "effect"
import * as Component from "../../../src/families/component/Component.js"
import * as ComponentApi from "../../../src/families/component/ComponentApi.js"
import * as ComponentConfig from "../../../src/families/component/ComponentConfig.js"
import * as ComponentEvents from "../../../src/families/component/ComponentEvents.js"
import * as ComponentToken from "../../../src/families/component/ComponentToken.js"
import * as WeChatApi from "../../../src/families/officialAccount/WeChatApi.js"
import * as OwnerId from "../../../src/OwnerId.js"
import * as StoreSpec from "../../../src/StoreSpec.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import { TokenEngine } from "../../../src/TokenEngine.js"
import { COMPONENT, credentials, MERCHANT, registration } from "../../support/componentStack.js"
import { validNow } from "../../support/engine.js"
import { settle } from "../../support/fixtures.js"

// The component families on the engine, the emulator as WeChat, TestClock
// driving both; pushes go straight to the intake (`ComponentEvents.receive`)
// in the same process, as the HTTP route would hand them over.

const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)

// How a push reaches the intake: at once, or held until the test lets it through.
type Delivery = <A>(deliver: Effect.Effect<A>) => Effect.Effect<A>

const stack = (options: Pick<Emulator.EmulatorOptions, "refreshTokenRotation"> = {}, delivery: Delivery = identity) => {
  let intake: ComponentToken.ComponentTokenShape = ComponentToken.none
  const transport: Emulator.PushTransport = (request) =>
    delivery(Effect.suspend(() => {
      const query = new URL(request.url).searchParams
      return ComponentEvents.receive(intake, COMPONENT, {
        timestamp: query.get("timestamp") ?? "",
        nonce: query.get("nonce") ?? "",
        msg_signature: query.get("msg_signature") ?? ""
      }, request.body).pipe(
        Effect.match({
          onFailure: (error) => ({ status: 400, body: error.error.code }),
          onSuccess: (body) => ({ status: 200, body })
        })
      )
    }))
  const emulator = Emulator.layer({
    components: [{ ...registration, pushUrl: `http://server.test/wechat/components/${COMPONENT}/events` }],
    pushTransport: transport,
    ...options
  })
  const engine = ComponentToken.layer().pipe(
    Layer.tap((context) =>
      Effect.sync(() => {
        intake = Context.get(context, ComponentToken.ComponentToken)
      })
    ),
    Layer.provide(Layer.mergeAll(
      ComponentConfig.layer({ components: [credentials], apiBaseUrl: "http://wechat.test" }),
      ComponentApi.layer({ baseUrl: "http://wechat.test" }),
      WeChatApi.layer({ baseUrl: "http://wechat.test" }),
      StoreSpec.layerMemory
    )),
    Layer.provide(Emulator.layerClient)
  )
  return Layer.provideMerge(engine, emulator)
}

const authorized = validNow(owner, Component.authorizerToken)

// The ticket pushed and MERCHANT authorized, its token held; the emulator's controls.
const merchantAuthorized = Effect.gen(function*() {
  const controls = (yield* Emulator.WeChatEmulator).component
  yield* controls.pushTicket(COMPONENT)
  yield* controls.authorize(COMPONENT, MERCHANT)
  yield* settle(authorized)
  return controls
})

describe("Component family under TestClock", () => {
  it.scoped(
    "a simulated day of pushes and refreshes: fetches at the limit, every token valid when handed out",
    () =>
      Effect.gen(function*() {
        const components = yield* ComponentToken.ComponentToken
        const emulator = yield* Emulator.WeChatEmulator
        const controls = emulator.component
        yield* controls.pushTicket(COMPONENT)
        yield* settle(validNow(COMPONENT, Component.componentToken))
        yield* controls.authorize(COMPONENT, MERCHANT)
        yield* settle(authorized)
        yield* controls.resetStats
        for (let minute = 0; minute < 24 * 60; minute++) {
          yield* TestClock.adjust(Duration.minutes(1))
          const componentToken = yield* components.get(COMPONENT)
          expect(yield* controls.isValidComponentToken(componentToken.value, COMPONENT)).toBe(true)
          const authorizerToken = yield* components.authorizerToken(COMPONENT, MERCHANT)
          expect(yield* controls.isValidAuthorizerToken(authorizerToken.value, MERCHANT)).toBe(true)
        }
        const stats = yield* controls.stats(COMPONENT)
        // 7,200 s tokens, refreshed 300 s early (jitter only later): at most ⌈86400 / 6900⌉ = 13 a day each.
        expect(stats.componentTokensIssued).toBeLessThanOrEqual(13)
        expect(stats.componentTokensIssued).toBeGreaterThanOrEqual(12)
        expect(stats.authorizerTokenCalls).toBeLessThanOrEqual(13)
        expect(stats.authorizerTokenCalls).toBeGreaterThanOrEqual(12)
        // A ticket every 10 minutes, every one delivered and taken; WeChat was never asked to resume.
        expect(stats.pushesDelivered).toBeGreaterThanOrEqual(144)
        expect(stats.pushesFailed).toBe(0)
        expect(stats.startPushCalls).toBe(0)
        // The refresh token WeChat rotated on every refresh is the one stored.
        const engine = yield* TokenEngine
        expect((yield* engine.get(owner, Component.refreshToken)).value).toBe(
          yield* controls.currentRefreshToken(COMPONENT, MERCHANT)
        )
      }).pipe(Effect.provide(stack({ refreshTokenRotation: "every-refresh" }))),
    { timeout: 120_000 }
  )

  it.scoped("tickets delivered after a newer one was issued: the component token follows the last push at once", () =>
    Effect.gen(function*() {
      // Pushes wait in line until the test delivers the next one, so WeChat
      // holds a newer ticket than the one the server has just been pushed.
      const line = yield* Queue.unbounded<Effect.Effect<void>>()
      const held: Delivery = (deliver) =>
        Effect.flatMap(
          Deferred.make<Effect.Effect.Success<typeof deliver>>(),
          (answered) =>
            Queue.offer(line, Effect.flatMap(deliver, (answer) => Deferred.succeed(answered, answer))).pipe(
              Effect.zipRight(Deferred.await(answered))
            )
        )
      // The intake's answer may wait on the simulated clock (the store's write).
      const deliverNext = Effect.flatMap(
        Effect.fork(Effect.flatten(Queue.take(line))),
        (delivering) => settle(Effect.map(Fiber.poll(delivering), Option.isSome))
      )
      yield* Effect.gen(function*() {
        const controls = (yield* Emulator.WeChatEmulator).component
        yield* TestClock.adjust(Duration.millis(10))
        // The first ticket (WeChat's schedule) and the one the server asked
        // for wait in line; a third is issued meanwhile.
        yield* Effect.fork(controls.pushTicket(COMPONENT))
        yield* TestClock.adjust(Duration.millis(10))
        // Oldest first: each reaches the server already refused (61006), and
        // the fetch it starts asks for one more, until the last one is current.
        while ((yield* Queue.size(line)) > 0) yield* deliverNext
        // Within a second of the last push, not after a rejection's five-minute pause.
        yield* TestClock.adjust(Duration.seconds(1))
        expect(yield* validNow(COMPONENT, Component.componentToken)).toBe(true)
        const stats = yield* controls.stats(COMPONENT)
        // Refused twice in one fetch (the ticket, then its replacement), then issued.
        expect(stats).toMatchObject({ componentTokenCalls: 3, componentTokensIssued: 1, pushesDelivered: 4 })
      }).pipe(Effect.provide(stack({}, held)))
    }))

  it.scoped("61023: the refresh token is recovered from the authorizer list; not listed: MissingInput", () =>
    Effect.gen(function*() {
      const components = yield* ComponentToken.ComponentToken
      const engine = yield* TokenEngine
      const controls = yield* merchantAuthorized
      const held = yield* components.authorizerToken(COMPONENT, MERCHANT)

      const fresh = yield* controls.invalidateRefreshToken(COMPONENT, MERCHANT)
      const replaced = yield* components.refreshAuthorizerToken(COMPONENT, MERCHANT, held.value)
      expect(replaced.value).not.toBe(held.value)
      expect(yield* controls.isValidAuthorizerToken(replaced.value, MERCHANT)).toBe(true)
      expect((yield* engine.get(owner, Component.refreshToken)).value).toBe(fresh)
      expect((yield* controls.stats(COMPONENT)).listCalls).toBe(1)

      yield* controls.loseAuthorizer(COMPONENT, MERCHANT)
      const lost = yield* Effect.flip(components.refreshAuthorizerToken(COMPONENT, MERCHANT, replaced.value))
      expect(lost).toMatchObject({ _tag: "MissingInput", kind: Component.refreshToken })
      expect(lost.message).toContain("authorize the component again")
    }).pipe(Effect.provide(stack())))

  it.scoped("61003 (revoked while pushes were lost): the authorizer is retired at its next refresh", () =>
    Effect.gen(function*() {
      const components = yield* ComponentToken.ComponentToken
      const engine = yield* TokenEngine
      const controls = yield* merchantAuthorized
      yield* controls.stopPushes(COMPONENT)
      yield* controls.unauthorize(COMPONENT, MERCHANT)
      const refused = yield* Effect.flip(components.refreshAuthorizerToken(COMPONENT, MERCHANT))
      expect(refused).toMatchObject({ _tag: "WeChatApiError", errcode: 61003 })
      const status = (yield* engine.status).filter((entry) => entry.appId === owner)
      expect(status).toMatchObject([{ kind: Component.refreshToken, retired: true }])
      expect((yield* Effect.flip(components.authorizerToken(COMPONENT, MERCHANT)))._tag).toBe("UnknownApp")
    }).pipe(Effect.provide(stack())))
})
