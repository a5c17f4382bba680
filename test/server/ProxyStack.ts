/**
 * The proxy suites' stack: the emulator on a loopback port (an official
 * account and a WeCom corp), the token server with its proxy on another, the
 * proxy calling the emulator with Node's HTTP client, as `serve` runs it.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Context, type Duration, Effect, Layer, Logger, Redacted, Schema } from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as WeComConfig from "../../src/families/wecom/WeComConfig.js"
import * as OwnerId from "../../src/OwnerId.js"
import * as Gateway from "../../src/server/gateway/Gateway.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import * as Proxy from "../../src/server/Proxy.js"
import type { ClientKey } from "../../src/server/ServerConfig.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import { OPS_KEY } from "../support/serverStack.js"

export const APP = "wx0123456789abcdef"
export const OTHER = "wxfedcba9876543210"
export const SECRET = "s3cr3t-app-secret-never-logged"
export const CORP = "ww0123456789abcdef"
export const AGENT = "1000002"
export const WECOM_SECRET = "wecom-agent-secret-never-logged"
export const KEY = "client-key-0123456789abcdef"
/** A key for `OTHER` only. */
export const SCOPED_KEY = "scoped-client-key-0123456789"

export const auth = (key: string = KEY) => ({ authorization: `Bearer ${key}` })

export interface StackOptions {
  readonly allow?: ReadonlyArray<string>
  readonly maxBodyBytes?: number
  readonly replayBodyBytes?: number
  readonly upstreamTimeout?: Duration.DurationInput
  readonly requestTimeout?: Duration.DurationInput
  readonly maxConcurrentPerOwner?: number
  /** Where the proxy sends calls; default: the emulator. */
  readonly upstreamUrl?: string
  /** Receives every log line of the server; default: none. */
  readonly logger?: Logger.Logger<unknown, void>
  /** Serve WeChat's own paths too (the WeChat-compatible gateway); default: no. */
  readonly gateway?: boolean
  /** Serve the operator console to the ops key; default: no. */
  readonly console?: boolean
  /** The server's client keys; default: `KEY` for every app and `SCOPED_KEY` for `OTHER`. */
  readonly clientKeys?: ReadonlyArray<ClientKey>
}

export const startProxyStack = (options: StackOptions = {}) =>
  Effect.gen(function*() {
    const { emulator, url } = yield* Emulator.serve({
      apps: [{ appId: APP, secret: SECRET }, { appId: OTHER, secret: SECRET }],
      corps: [{ corpId: CORP, apps: [{ agent: AGENT, secret: WECOM_SECRET }] }]
    })
    const store = StoreSpec.layerMemory
    const clientKeys: ReadonlyArray<ClientKey> = options.clientKeys ?? [
      { key: Redacted.make(KEY) },
      { key: Redacted.make(SCOPED_KEY), apps: [Schema.decodeSync(OwnerId.OwnerId)(OTHER)] }
    ]
    const upstream = options.upstreamUrl ?? url
    const context = yield* Layer.build(
      NodeServer.layer({
        host: "127.0.0.1",
        port: 0,
        clientKeys,
        opsKeys: [Redacted.make(OPS_KEY)],
        ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
        ...(options.console === true ? { console: { keys: [Redacted.make(OPS_KEY)] } } : {})
      }).pipe(
        Layer.provide(
          options.gateway === true
            ? Gateway.layer({
              secrets: [APP, OTHER].map((appId) => ({ appId, secret: Redacted.make(SECRET) })),
              wechatBaseUrl: upstream
            })
            : Layer.empty
        ),
        Layer.provideMerge(
          Proxy.layer({
            wechatBaseUrl: upstream,
            wecomBaseUrl: upstream,
            ...(options.allow === undefined ? {} : { allow: options.allow }),
            ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
            ...(options.replayBodyBytes === undefined ? {} : { replayBodyBytes: options.replayBodyBytes }),
            ...(options.upstreamTimeout === undefined ? {} : { upstreamTimeout: options.upstreamTimeout }),
            ...(options.maxConcurrentPerOwner === undefined
              ? {}
              : { maxConcurrentPerOwner: options.maxConcurrentPerOwner })
          })
        ),
        Layer.provideMerge(TokenLayer.layerFamilies({
          config: TokenConfig.layer({
            apps: [TokenConfig.app(APP, SECRET), TokenConfig.app(OTHER, SECRET)],
            mode: "classic",
            apiBaseUrl: url
          }),
          wecom: WeComConfig.layer({ apps: [WeComConfig.app(CORP, AGENT, WECOM_SECRET)], apiBaseUrl: url }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, options.logger ?? Logger.none)))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return {
      base: `http://127.0.0.1:${address.port}`,
      port: address.port,
      emulatorUrl: url,
      emulator,
      engine: Context.get(context, TokenEngine)
    }
  })

export const appUrl = (base: string, rest: string, appId: string = APP) => `${base}/v1/apps/${appId}/wechat/${rest}`
export const weComUrl = (base: string, rest: string) => `${base}/v1/wecom/${CORP}/agents/${AGENT}/wechat/${rest}`

/** A plain Node server on a loopback port for upstreams the emulator cannot be: its base URL. */
export const rawUpstream = (handler: (request: IncomingMessage, response: ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly server: Server; readonly close: () => void }>((resume) => {
      const server = createServer(handler)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}`,
          server,
          close: () => {
            server.closeAllConnections()
            server.close()
          }
        }))
      })
    }),
    (server) => Effect.sync(server.close)
  )
