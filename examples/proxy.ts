/**
 * Run: npx tsx examples/proxy.ts
 *
 * A business server that holds no token: it calls WeChat through the central
 * server's proxy with only a client key. The program starts the WeChat
 * emulator and the central server (with its proxy) on loopback ports, then,
 * as the business server:
 *
 * 1. sends a customer-service message with `WeChatClient` in proxy mode;
 * 2. uploads an image and downloads a media file with plain `fetch`, as a
 *    business server in any language would;
 * 3. has the emulator kill the token behind everyone's back, and sends again:
 *    the proxy refreshes once and replays, and the call succeeds;
 * 4. tries to get a token through the proxy, and is refused.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpServer from "@effect/platform/HttpServer"
import { Console, Context, Effect, Layer, Redacted, Schema } from "effect"
import { TokenConfig, TokenLayer, TokenStore, WeChatClient } from "../src/index.js"
import { NodeServer, Proxy } from "../src/server/index.js"
import * as Emulator from "../src/testing/index.js"

const APP_ID = "wx0123456789abcdef"
const SECRET = "demo-secret"
const CLIENT_KEY = "business-server-key-0123456789"

const Sent = Schema.Struct({ errcode: Schema.Literal(0), errmsg: Schema.String })
const message: WeChatClient.ApiRequest = {
  method: "POST",
  path: "/cgi-bin/message/custom/send",
  body: { touser: "oOPENID", msgtype: "text", text: { content: "hello from a server without a token" } }
}

// The central server: the engine fetching from the emulator, the proxy forwarding to it.
const centralServer = (emulatorUrl: string) => {
  const store = TokenStore.layerMemory
  return NodeServer.layer({ host: "127.0.0.1", port: 0, clientKeys: [Redacted.make(CLIENT_KEY)] }).pipe(
    Layer.provide(Proxy.layer({ wechatBaseUrl: emulatorUrl, wecomBaseUrl: emulatorUrl })),
    Layer.provide(TokenLayer.layer({
      config: TokenConfig.layer({ apps: [TokenConfig.app(APP_ID, SECRET)], apiBaseUrl: emulatorUrl }),
      store,
      httpClient: FetchHttpClient.layer
    })),
    Layer.provide(store)
  )
}

const program = Effect.gen(function*() {
  const { emulator, url: emulatorUrl } = yield* Emulator.serve({ apps: [{ appId: APP_ID, secret: SECRET }] })
  const context = yield* Layer.build(centralServer(emulatorUrl))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const server = `http://127.0.0.1:${address.port}`
  const proxied = (rest: string) => `${server}/v1/apps/${APP_ID}/wechat/${rest}`
  const auth = { authorization: `Bearer ${CLIENT_KEY}` }

  // 1. The Effect way: WeChatClient in proxy mode, only a client key.
  const client = yield* Effect.provide(
    WeChatClient.WeChatClient,
    WeChatClient.layerProxy({ baseUrl: server, clientKey: Redacted.make(CLIENT_KEY) }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
  )
  const sent = yield* client.call(APP_ID, message, Sent)
  yield* Console.log(`message sent: errcode ${sent.errcode}`)

  // 2. Any language: plain HTTP with the client key.
  const form = new FormData()
  form.append("media", new Blob([new Uint8Array(256 * 1024)], { type: "image/jpeg" }), "photo.jpg")
  const uploaded = yield* Effect.promise(() =>
    fetch(proxied("cgi-bin/media/upload?type=image"), { method: "POST", headers: auth, body: form }).then((r) =>
      r.json() as Promise<{ readonly media_id: string }>
    )
  )
  yield* Console.log(`uploaded: media_id ${uploaded.media_id.slice(0, 12)}…`)
  const mediaId = yield* emulator.apis.seedMedia(1024 * 1024)
  const download = yield* Effect.promise(() =>
    fetch(proxied(`cgi-bin/media/get?media_id=${mediaId}`), { headers: auth }).then(async (r) => ({
      type: r.headers.get("content-type"),
      bytes: (await r.arrayBuffer()).byteLength
    }))
  )
  yield* Console.log(`downloaded: ${download.bytes} bytes of ${download.type}`)

  // 3. The token dies behind everyone's back; the proxy recovers on its own.
  const issuedBefore = (yield* emulator.appStats(APP_ID)).tokensIssued
  yield* emulator.killTokens(APP_ID)
  yield* client.call(APP_ID, message, Sent)
  const calls = yield* emulator.apis.calls
  const last = calls.slice(-2).map((call) => call.errcode)
  yield* Console.log(
    `after the token was killed: WeChat answered ${last.join(" then ")}, ` +
      `${(yield* emulator.appStats(APP_ID)).tokensIssued - issuedBefore} new token, the call survived`
  )

  // 4. The proxy never hands out a token.
  const refused = yield* Effect.promise(() =>
    fetch(proxied("cgi-bin/token?grant_type=client_credential"), { headers: auth }).then(async (r) =>
      `${r.status} ${await r.text()}`
    )
  )
  yield* Console.log(`asking the proxy for a token: ${refused}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program, { disablePrettyLogger: true })
