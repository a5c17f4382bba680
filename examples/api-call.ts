/**
 * Run: npx tsx examples/api-call.ts
 *
 * Calls a WeChat API (`getcallbackip`) through `WeChatClient`, which adds the
 * access token and decodes the answer with your schema. Halfway, the WeChat
 * emulator kills the token behind the program's back, as another process
 * fetching a token would; the next call still succeeds, with one token
 * refresh and one replay, and the emulator's counters show it.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Schema } from "effect"
import { TokenConfig, TokenLayer, TokenStore, WeChatClient } from "../src/index.js"
import * as Emulator from "../src/testing/index.js"

const APP_ID = "wx0123456789abcdef"
const SECRET = "demo-secret"

// The success body of GET /cgi-bin/getcallbackip; errcode bodies are handled by the client.
const CallbackIps = Schema.Struct({ ip_list: Schema.Array(Schema.String) })
const getCallbackIp: WeChatClient.ApiRequest = { method: "GET", path: "/cgi-bin/getcallbackip" }

const program = Effect.gen(function*() {
  const client = yield* WeChatClient.WeChatClient
  const emulator = yield* Emulator.WeChatEmulator
  const counters = emulator.appStats(APP_ID)

  const { ip_list } = yield* client.call(APP_ID, getCallbackIp, CallbackIps)
  yield* Effect.log(`WeChat calls back from ${ip_list.join(", ")}`)

  yield* emulator.killTokens(APP_ID)
  yield* Effect.log("the emulator killed every token of the app; calling again")
  const before = yield* counters
  const again = yield* client.call(APP_ID, getCallbackIp, CallbackIps)
  const after = yield* counters

  yield* Effect.log(`the call survived: ${again.ip_list.length} ranges`).pipe(
    Effect.annotateLogs({
      tokensIssued: after.tokensIssued - before.tokensIssued,
      getcallbackipCalls: after.callbackIpCalls - before.callbackIpCalls,
      rejectedAsDead: after.deadTokenUses - before.deadTokenUses
    })
  )
})

// The engine and the client both reach WeChat through the in-process emulator;
// against WeChat itself use `TokenLayer` and an `HttpClient` layer instead.
const MainLayer = WeChatClient.layer({ baseUrl: "http://wechat.test" }).pipe(
  Layer.provideMerge(TokenLayer.layer({
    config: TokenConfig.layer({ apps: [TokenConfig.app(APP_ID, SECRET)], apiBaseUrl: "http://wechat.test" }),
    store: TokenStore.layerMemory,
    httpClient: Emulator.layerClient
  })),
  Layer.provide(Emulator.layerClient),
  Layer.provideMerge(Emulator.layer({ apps: [{ appId: APP_ID, secret: SECRET }] }))
)

program.pipe(Effect.provide(MainLayer), NodeRuntime.runMain)
