/**
 * WeCom (企业微信) in an Effect app: provide `WeComToken.layerConfig`, ask
 * for an app's token, call a WeCom API with it, and sign a page for
 * `wx.config` and `wx.agentConfig`. Here WeCom is the bundled emulator on a
 * loopback port and the configuration comes from a `ConfigProvider`; a real
 * app sets WECOM_APPS and drops both.
 *
 *   npx tsx examples/wecom.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { ConfigProvider, Console, Effect, Layer, Schema } from "effect"
import { WeComToken } from "../src/index.js"
import * as Emulator from "../src/testing/index.js"

const corpId = "ww0123456789abcdef"
const agent = "1000002"
const secret = "example-agent-secret"

// What WeCom answers on GET /cgi-bin/agent/get.
const AgentInfo = Schema.Struct({ errcode: Schema.Number, agentid: Schema.Number, name: Schema.String })

const program = (wecomUrl: string) =>
  Effect.gen(function*() {
    const wecom = yield* WeComToken.WeComToken
    const token = yield* wecom.get(corpId, agent)
    const client = yield* HttpClient.HttpClient
    const info = yield* client.get(`${wecomUrl}/cgi-bin/agent/get`, {
      urlParams: { access_token: token.value, agentid: agent }
    }).pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(AgentInfo)))
    yield* Console.log(`agent ${info.agentid}: ${info.name}`)
    // Both signatures of a page: wx.config (corp ticket) and wx.agentConfig (agent ticket).
    const signed = yield* wecom.jsSdkConfig(corpId, agent, "https://work.example.com/app?from=menu")
    yield* Console.log(`wx.config appId ${signed.config.appId}, signature ${signed.config.signature}`)
    yield* Console.log(
      `wx.agentConfig agentid ${signed.agentConfig?.agentid}, signature ${signed.agentConfig?.signature}`
    )
    const again = yield* wecom.get(corpId, agent)
    yield* Console.log(`same token both times: ${again.value === token.value}`)
  })

const main = Effect.gen(function*() {
  const wecom = yield* Emulator.serve({ corps: [{ corpId, apps: [{ agent, secret }] }] })
  const config = ConfigProvider.fromMap(
    new Map([
      ["WECOM_APPS", `${corpId}/${agent}:${secret}`],
      ["WECOM_API_BASE_URL", wecom.url]
    ])
  )
  yield* program(wecom.url).pipe(
    Effect.provide(Layer.merge(WeComToken.layerConfig, FetchHttpClient.layer)),
    Effect.withConfigProvider(config)
  )
  const stats = yield* wecom.emulator.wecom.stats(`${corpId}/${agent}`)
  yield* Console.log(
    `upstream calls: gettoken ${stats.gettokenCalls}, corp ticket ${stats.corpTicketCalls}, agent ticket ${stats.agentTicketCalls}`
  )
})

NodeRuntime.runMain(Effect.scoped(main))
