/**
 * Run: npx tsx examples/jssdk.ts  (then curl "http://127.0.0.1:3000/jssdk-config?url=https://example.com/page?id=7")
 *
 * A page server's JS-SDK endpoint: the page sends `location.href` and gets the
 * values for `wx.config`. With no WECHAT_APPS / WECHAT_APP_ID in the
 * environment it signs with tickets from an in-process WeChat emulator; with
 * them it uses WeChat itself (`TokenLayer` reads the usual variables).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Config, Effect, Layer, Option, Schema } from "effect"
import { createServer } from "node:http"
import { JsSdk, TokenConfig, TokenEngine, TokenLayer, TokenStore } from "../src/index.js"
import * as Emulator from "../src/testing/index.js"

const DEMO_APP_ID = "wx0123456789abcdef"

// Without configured apps: one demo app, answered by the emulator in memory.
const demoEngine = TokenLayer.layer({
  config: TokenConfig.layer({
    apps: [TokenConfig.app(DEMO_APP_ID, "demo-secret")],
    apiBaseUrl: "http://wechat.test"
  }),
  store: TokenStore.layerMemory,
  httpClient: Emulator.layerClient
}).pipe(Layer.provide(Emulator.layer({ apps: [{ appId: DEMO_APP_ID, secret: "demo-secret" }] })))

const engine = Layer.unwrapEffect(
  Effect.map(
    Config.all([Config.option(Config.string("WECHAT_APPS")), Config.option(Config.string("WECHAT_APP_ID"))]),
    ([apps, single]) => Option.isSome(apps) || Option.isSome(single) ? TokenLayer.layerConfig : demoEngine
  )
)

const Query = Schema.Struct({ url: Schema.String, appId: Schema.optional(Schema.String) })

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/jssdk-config",
    Effect.gen(function*() {
      const query = yield* HttpServerRequest.schemaSearchParams(Query)
      const { apps } = yield* TokenEngine.TokenEngine
      // The first configured app unless the page names one.
      const appId = query.appId ?? apps[0] ?? DEMO_APP_ID
      return HttpServerResponse.unsafeJson(yield* JsSdk.config(appId, query.url))
    }).pipe(
      Effect.catchTags({
        ParseError: () =>
          Effect.succeed(
            HttpServerResponse.unsafeJson({ error: "send ?url=<the page's location.href>" }, { status: 400 })
          ),
        InvalidPageUrl: (error) =>
          Effect.succeed(HttpServerResponse.unsafeJson({ error: error.message }, { status: 400 })),
        UnknownApp: (error) => Effect.succeed(HttpServerResponse.unsafeJson({ error: error.message }, { status: 404 }))
      }),
      // Anything else means no valid ticket could be had from WeChat right now.
      Effect.catchAll((error) =>
        Effect.succeed(HttpServerResponse.unsafeJson({ error: error.message }, { status: 503 }))
      )
    )
  )
)

const port = Config.integer("PORT").pipe(Config.withDefault(3000))

HttpServer.serve(app).pipe(
  HttpServer.withLogAddress,
  Layer.provide(engine),
  Layer.provide(
    Layer.unwrapEffect(Effect.map(port, (port) => NodeHttpServer.layer(createServer, { host: "127.0.0.1", port })))
  ),
  Layer.launch,
  NodeRuntime.runMain
)
