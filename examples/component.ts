/**
 * A third-party platform (开放平台第三方平台) in an Effect app: provide
 * `ComponentToken.layerConfig`, take WeChat's pushes (verify tickets,
 * authorizations) with `ComponentEvents.receive`, get the component token,
 * send a merchant to the authorization page with a pre-auth code, and act on
 * the merchant's behalf with its authorizer token. Here WeChat is the bundled
 * emulator on a loopback port, its pushes are handed to the intake in the
 * same process, and the configuration comes from a `ConfigProvider`; a real
 * platform sets WECHAT_COMPONENTS and points its authorization-event URL at
 * the central server (`/wechat/components/{componentAppId}/events`), which
 * does the same.
 *
 *   npx tsx examples/component.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ConfigProvider, Console, Effect, Schedule } from "effect"
import { ComponentToken } from "../src/index.js"
import { ComponentEvents } from "../src/server/index.js"
import * as Emulator from "../src/testing/index.js"

const componentAppId = "wx00c0c0c0c0c0c0c0"
const secret = "example-component-secret"
const messageToken = "exampleToken"
const encodingAesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const merchant = "wx00aa00aa00aa00aa"

// Where WeChat's pushes land: the service once it is built.
let intake: ComponentToken.ComponentTokenShape = ComponentToken.none

const deliver: Emulator.PushTransport = (push) =>
  Effect.suspend(() => {
    const query = new URL(push.url).searchParams
    return ComponentEvents.receive(intake, componentAppId, {
      timestamp: query.get("timestamp") ?? "",
      nonce: query.get("nonce") ?? "",
      msg_signature: query.get("msg_signature") ?? ""
    }, push.body).pipe(
      Effect.match({
        onFailure: (refused) => ({ status: 400, body: refused.error.code }),
        onSuccess: (body) => ({ status: 200, body })
      })
    )
  })

const program = (wechat: Emulator.WeChatEmulatorShape) =>
  Effect.gen(function*() {
    const components = yield* ComponentToken.ComponentToken
    intake = components
    yield* wechat.component.setPushUrl(componentAppId, "http://platform.example/wechat/events")
    yield* wechat.component.pushTicket(componentAppId)
    const token = yield* components.get(componentAppId)
    yield* Console.log(`component token valid: ${yield* wechat.component.isValidComponentToken(token.value)}`)

    const preAuth = yield* components.preAuthCode(componentAppId, "https://saas.example/authorized")
    yield* Console.log(`send the merchant to ${preAuth.authorizationUrl?.split("?")[0]}`)
    // The merchant authorizes on WeChat's page; WeChat pushes `authorized`,
    // which is answered at once and exchanged in the background.
    yield* wechat.component.authorize(componentAppId, merchant, { preAuthCode: preAuth.preAuthCode })
    const authorizerToken = yield* components.authorizerToken(componentAppId, merchant).pipe(
      Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 })
    )
    yield* Console.log(
      `authorizer ${merchant} token valid: ${yield* wechat.component.isValidAuthorizerToken(
        authorizerToken.value,
        merchant
      )}`
    )
    const page = yield* components.jsSdkConfig(componentAppId, merchant, "https://shop.example/pay#top")
    yield* Console.log(`wx.config appId ${page.appId}, signature ${page.signature}`)
    const listed = yield* components.authorizers(componentAppId, { limit: 100 })
    yield* Console.log(`authorizers: ${listed.authorizers.map((entry) => entry.appId).join(", ")}`)
  })

const main = Effect.gen(function*() {
  const wechat = yield* Emulator.serve({
    components: [{ componentAppId, secret, messageToken, encodingAesKey }],
    pushTransport: deliver
  })
  const config = ConfigProvider.fromMap(
    new Map([
      ["WECHAT_COMPONENTS", `${componentAppId}:${secret}:${messageToken}:${encodingAesKey}`],
      ["WECHAT_API_BASE_URL", wechat.url]
    ])
  )
  yield* program(wechat.emulator).pipe(
    Effect.provide(ComponentToken.layerConfig),
    Effect.withConfigProvider(config)
  )
  const stats = yield* wechat.emulator.component.stats(componentAppId)
  yield* Console.log(
    `upstream calls: component token ${stats.componentTokenCalls}, query_auth ${stats.queryAuthCalls}, authorizer token ${stats.authorizerTokenCalls}`
  )
})

NodeRuntime.runMain(Effect.scoped(main))
