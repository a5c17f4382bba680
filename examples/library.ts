/**
 * The library in an Effect app: provide `TokenLayer`, ask `AccessToken` for a
 * token, call a WeChat API with it. Here WeChat is the bundled emulator on a
 * loopback port, and the configuration comes from a `ConfigProvider` instead
 * of the environment; a real app just sets WECHAT_APPS and drops both.
 *
 *   npx tsx examples/library.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { ConfigProvider, Console, Effect, Layer, Schema } from "effect"
import { AccessToken, TokenLayer } from "../src/index.js"
import * as Emulator from "../src/testing/index.js"

const appId = "wx0123456789abcdef"
const secret = "example-app-secret"

// What WeChat answers on GET /cgi-bin/getcallbackip.
const CallbackIps = Schema.Struct({ ip_list: Schema.Array(Schema.String) })

const program = (wechatUrl: string) =>
  Effect.gen(function*() {
    const tokens = yield* AccessToken.AccessToken
    const token = yield* tokens.get(appId)
    const client = yield* HttpClient.HttpClient
    const ips = yield* client.get(`${wechatUrl}/cgi-bin/getcallbackip`, { urlParams: { access_token: token.value } })
      .pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(CallbackIps))
      )
    yield* Console.log(`WeChat calls back from ${ips.ip_list.join(", ")}`)
    // A second get is answered from memory: no upstream call.
    const again = yield* tokens.get(appId)
    yield* Console.log(`same token both times: ${again.value === token.value}`)
  })

const main = Effect.gen(function*() {
  const wechat = yield* Emulator.serve({ apps: [{ appId, secret }] })
  const config = ConfigProvider.fromMap(
    new Map([
      ["WECHAT_APPS", `${appId}:${secret}`],
      ["WECHAT_API_BASE_URL", wechat.url]
    ])
  )
  yield* program(wechat.url).pipe(
    Effect.provide(Layer.merge(TokenLayer.layerConfig, FetchHttpClient.layer)),
    Effect.withConfigProvider(config)
  )
  const stats = yield* wechat.emulator.stats
  yield* Console.log(`upstream token fetches: ${stats.apps[appId]?.stableCalls ?? 0}`)
})

NodeRuntime.runMain(Effect.scoped(main))
