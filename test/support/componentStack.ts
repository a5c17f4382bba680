/**
 * A third-party platform end to end over loopback: the emulator serving
 * WeChat on one port and pushing to the token server's authorization-event
 * URL on another, the server's engine calling the emulator over real HTTP.
 * Live clock. The store is the caller's, so a test can restart the server
 * over the same file or Redis.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Context, Effect, Layer, Logger, Redacted, Schedule, type Scope } from "effect"
import * as Component from "../../src/families/component/Component.js"
import * as ComponentConfig from "../../src/families/component/ComponentConfig.js"
import * as WeComConfig from "../../src/families/wecom/WeComConfig.js"
import * as WeComSuiteConfig from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import { CorpId } from "../../src/OwnerId.js"
import type * as Families from "../../src/server/Families.js"
import * as Gateway from "../../src/server/gateway/Gateway.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import * as Proxy from "../../src/server/Proxy.js"
import type * as ServerConfig from "../../src/server/ServerConfig.js"
import type * as StoreDocuments from "../../src/StoreDocuments.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import type * as TokenStore from "../../src/TokenStore.js"
import {
  AES_KEY,
  COMPONENT,
  COMPONENT_SECRET,
  MERCHANT,
  MERCHANT_2,
  MESSAGE_TOKEN,
  SUITE,
  suiteCredentials,
  suiteRegistration
} from "./fixtures.js"
import { call, KEY, OPS_KEY } from "./serverStack.js"

export { AES_KEY, COMPONENT, COMPONENT_SECRET, MERCHANT, MERCHANT_2, MESSAGE_TOKEN }

export const registration: Emulator.ComponentRegistration = {
  componentAppId: COMPONENT,
  secret: COMPONENT_SECRET,
  messageToken: MESSAGE_TOKEN,
  encodingAesKey: AES_KEY
}

export const credentials = ComponentConfig.component(COMPONENT, COMPONENT_SECRET, MESSAGE_TOKEN, AES_KEY)

export interface ComponentServer {
  readonly base: string
  readonly port: number
  readonly engine: TokenEngine["Type"]
}

/** The token server serving `COMPONENT` only, on a free loopback port, over `store`. */
export const serveComponentServer = (
  upstreamUrl: string,
  store: Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments, never>,
  logger: Logger.Logger<unknown, void> = Logger.none,
  options: {
    /** Instead of `KEY` alone. */
    readonly clientKeys?: ReadonlyArray<ServerConfig.ClientKey>
    /** Serve the proxy routes too, forwarding to `upstreamUrl`. */
    readonly proxy?: boolean
    /** Serve WeChat's own paths too (the WeChat-compatible gateway), and so the proxy. */
    readonly gateway?: boolean
    /** WeCom suites on the same engine, served by the same server. */
    readonly suites?: Layer.Layer<WeComSuiteConfig.WeComSuiteConfig>
  } = {}
): Effect.Effect<ComponentServer, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const proxy = Proxy.layer({ wechatBaseUrl: upstreamUrl, wecomBaseUrl: upstreamUrl })
    // The server finds the proxy and the gateway as optional services: none, either, or both.
    const front: Layer.Layer<never, never, TokenEngine | Families.Services> = options.gateway === true
      ? Layer.provideMerge(Gateway.layer({ secrets: [], wechatBaseUrl: upstreamUrl }), proxy)
      : options.proxy === true
      ? proxy
      : Layer.empty
    const context = yield* Layer.build(
      NodeServer.layer({
        host: "127.0.0.1",
        port: 0,
        clientKeys: options.clientKeys ?? [{ key: Redacted.make(KEY) }],
        opsKeys: [Redacted.make(OPS_KEY)]
      }).pipe(
        Layer.provide(front),
        Layer.provideMerge(TokenLayer.layerFamilies({
          config: TokenConfig.layer({ apps: [], mode: "classic", apiBaseUrl: upstreamUrl }),
          wecom: WeComConfig.layer({ apps: [], apiBaseUrl: upstreamUrl }),
          components: ComponentConfig.layer({ components: [credentials], apiBaseUrl: upstreamUrl }),
          ...(options.suites === undefined ? {} : { suites: options.suites }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return {
      base: `http://127.0.0.1:${address.port}`,
      port: address.port,
      engine: Context.get(context, TokenEngine)
    }
  }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))

/** The emulator knowing `COMPONENT`, served on loopback. */
export const serveWeChat = (options: Omit<Emulator.EmulatorOptions, "components"> = {}) =>
  Emulator.serve({ components: [registration], ...options })

/** Where the server takes `COMPONENT`'s pushes. */
export const eventsUrl = (base: string) => `${base}/wechat/components/${COMPONENT}/events`

/**
 * Retries `check` (every 20 ms, up to 60 s) until it holds. The bound is
 * for a broken build, not a speed goal: on a loaded machine a restart's
 * start-up alone has taken over 15 s.
 */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>): Effect.Effect<void, E | string, R> =>
  check.pipe(
    Effect.filterOrFail((held) => held, () => "condition never held"),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 3_000 }),
    Effect.asVoid
  )

/**
 * Points `COMPONENT`'s pushes at `server`, pushes a verify ticket, and waits
 * until the server holds the component token it fetched with it.
 */
export const componentTokenHeld = (controls: Emulator.ComponentControls, server: ComponentServer) =>
  Effect.gen(function*() {
    yield* controls.setPushUrl(COMPONENT, eventsUrl(server.base))
    yield* controls.pushTicket(COMPONENT)
    yield* eventually(Effect.map(
      Effect.either(server.engine.get(COMPONENT, Component.componentToken)),
      (held) => held._tag === "Right"
    ))
  })

export const componentRoute = (base: string, path = "") => `${base}/v1/components/${COMPONENT}${path}`

export const authorizerRoute = (base: string, authorizer: string, path: string) =>
  `${base}/v1/components/${COMPONENT}/authorizers/${authorizer}${path}`

export { call }

/** The service provider (`WECOM_PROVIDER`) the suite gateway tests configure. */
export const PROVIDER = "ww0909090909090909"
export const PROVIDER_SECRET = "provider-secret-never-answered-01"

/**
 * WeCom as the emulator with the fixtures' suite and `PROVIDER`, and a
 * gateway server over a memory store serving the suite, its command URL
 * set on the emulator and a first suite ticket pushed.
 */
export const serveSuiteGateway = (clientKeys?: ReadonlyArray<ServerConfig.ClientKey>) =>
  Effect.gen(function*() {
    const wecom = yield* Emulator.serve({ components: [registration], suites: [suiteRegistration] })
    const controls = wecom.emulator.wecomSuite
    yield* controls.registerProvider(PROVIDER, PROVIDER_SECRET)
    const server = yield* serveComponentServer(wecom.url, StoreSpec.layerMemory, undefined, {
      suites: WeComSuiteConfig.layerWith({
        suites: [suiteCredentials],
        provider: { corpId: CorpId.make(PROVIDER), secret: Redacted.make(PROVIDER_SECRET) }
      }),
      gateway: true,
      ...(clientKeys === undefined ? {} : { clientKeys })
    })
    yield* controls.setCommandUrl(SUITE, `${server.base}/wecom/suites/${SUITE}/events`)
    yield* Effect.orDie(controls.pushTicket(SUITE))
    return { wecom, controls, server }
  })
