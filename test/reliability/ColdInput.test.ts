/**
 * A third-party platform's cold start: its component token cannot be
 * fetched before WeChat pushes the verify ticket, and each attempt fails
 * with `MissingInput`, backing off up to a minute. Once the ticket arrives
 * the token must be fetched at once, by the schedule, with no caller: a
 * backoff meant for a failing upstream must not hold back a credential whose
 * input just arrived (three replicas would otherwise each serve a first
 * token fetched late, and refresh it late).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock, TestServices } from "effect"
import * as ComponentApi from "../../src/families/component/ComponentApi.js"
import * as ComponentConfig from "../../src/families/component/ComponentConfig.js"
import * as ComponentToken from "../../src/families/component/ComponentToken.js"
import * as WeChatApi from "../../src/families/officialAccount/WeChatApi.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { COMPONENT, credentials, registration } from "../support/componentStack.js"

const BASE_URL = "http://wechat.test"

const stack = ComponentToken.layer().pipe(
  Layer.provide(Layer.mergeAll(
    ComponentConfig.layer({ components: [credentials], apiBaseUrl: BASE_URL }),
    ComponentApi.layer({ baseUrl: BASE_URL }),
    WeChatApi.layer({ baseUrl: BASE_URL }),
    StoreSpec.layerMemory
  )),
  Layer.provide(Emulator.layerClient),
  Layer.provideMerge(Emulator.layer({ components: [registration] }))
)

describe("an input that arrives after a cold start", () => {
  it.scoped(
    "the verify ticket, ten minutes late: the component token is fetched at once, with no caller",
    () =>
      Effect.gen(function*() {
        const components = yield* ComponentToken.ComponentToken
        const controls = (yield* Emulator.WeChatEmulator).component
        // Ten minutes without a ticket: the schedule's attempts back off to a minute apart.
        for (let second = 0; second < 600; second++) yield* TestClock.adjust(Duration.seconds(1))
        expect((yield* controls.stats(COMPONENT)).componentTokenCalls).toBe(0)

        const ticket = yield* controls.pushTicket(COMPONENT)
        yield* components.acceptTicket(COMPONENT, ticket)
        // Two simulated seconds at most; each step also lets real time pass, as
        // the fetch crosses the emulator's HTTP client, which a loaded machine slows.
        const issued = controls.stats(COMPONENT).pipe(Effect.map((stats) => stats.componentTokensIssued))
        for (let step = 0; step < 20 && (yield* issued) === 0; step++) {
          yield* TestClock.adjust(Duration.millis(100))
          yield* TestServices.provideLive(Effect.sleep(Duration.millis(50)))
        }
        expect(yield* issued).toBe(1)
      }).pipe(Effect.provide(stack)),
    120_000
  )
})
