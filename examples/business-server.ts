/**
 * A business server that takes its WeChat access tokens from the central
 * token server instead of holding the app secret. Start the central server
 * first (`npm start` prints its URL and a client key), then:
 *
 *   TOKEN_SERVER_URL=http://127.0.0.1:8787 TOKEN_SERVER_KEY=<key> \
 *     APP_ID=wx0123456789abcdef npx tsx examples/business-server.ts
 *
 * and open http://127.0.0.1:3000/token.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { AccessToken, RemoteTokenLayer } from "../src/index.js"
import { mask } from "../src/Token.js"

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/token",
    Effect.gen(function*() {
      const appId = yield* Config.string("APP_ID")
      const tokens = yield* AccessToken.AccessToken
      // Cached locally until shortly before the expiry the server announced.
      const token = yield* tokens.get(appId)
      return yield* HttpServerResponse.json({
        token: mask(token.value),
        usableUntil: new Date(token.expiresAt).toISOString()
      })
    })
  ),
  HttpRouter.post(
    "/token/rejected",
    Effect.gen(function*() {
      // What to do when WeChat answers 40001/40014/42001 for a token: report
      // it. The central server replaces it once, however many servers report it.
      const appId = yield* Config.string("APP_ID")
      const tokens = yield* AccessToken.AccessToken
      const stale = yield* tokens.get(appId)
      const fresh = yield* tokens.refresh(appId, stale.value)
      return yield* HttpServerResponse.json({ replaced: mask(stale.value), now: mask(fresh.value) })
    })
  ),
  Effect.catchAll((error) => HttpServerResponse.json({ error: String(error) }, { status: 502 }))
)

HttpServer.serve(app).pipe(
  HttpServer.withLogAddress,
  Layer.provide(RemoteTokenLayer.layerConfig),
  Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 3000 })),
  Layer.launch,
  NodeRuntime.runMain
)
