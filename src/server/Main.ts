/**
 * The programs behind the command line: `serve` (the central server, or the
 * demo when no app is configured) and `token` (print an app's current token).
 *
 * @since 0.1.0
 */
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import { ConfigError, Console, Context, Data, Effect, Layer, Option, Redacted } from "effect"
import { AccessToken } from "../AccessToken.js"
import * as AppId from "../AppId.js"
import * as CredentialRegistry from "../CredentialRegistry.js"
import * as Component from "../families/component/Component.js"
import * as ComponentConfig from "../families/component/ComponentConfig.js"
import * as WeComConfig from "../families/wecom/WeComConfig.js"
import * as WeComSuite from "../families/wecomSuite/WeComSuite.js"
import * as WeComSuiteConfig from "../families/wecomSuite/WeComSuiteConfig.js"
import type * as StoreDocuments from "../StoreDocuments.js"
import * as StoreSpec from "../StoreSpec.js"
import * as TokenConfig from "../TokenConfig.js"
import * as TokenLayer from "../TokenLayer.js"
import type * as TokenStore from "../TokenStore.js"
import * as Admin from "./admin/Admin.js"
import * as OperatorConsole from "./console/Console.js"
import * as Demo from "./Demo.js"
import * as Gateway from "./gateway/Gateway.js"
import * as CompactHeap from "./internal/compactHeap.js"
import * as UpstreamHttpClient from "./internal/upstreamHttpClient.js"
import * as Logging from "./Logging.js"
import * as NodeServer from "./NodeServer.js"
import * as Proxy from "./Proxy.js"
import * as ServerConfig from "./ServerConfig.js"
import * as Tracing from "./Tracing.js"

/**
 * Start-up stopped; the one line saying why has been printed already.
 *
 * @since 0.1.0
 * @category errors
 */
export class StartupFailed extends Data.TaggedError("StartupFailed")<{ readonly line: string }> {}

const refuse = (line: string) => Console.error(line).pipe(Effect.zipRight(Effect.fail(new StartupFailed({ line }))))

const configFailure = (error: ConfigError.ConfigError) => refuse(ServerConfig.describe(error))

const clientKeysRequired = ConfigError.MissingData(
  ["CLIENT_KEYS"],
  "CLIENT_KEYS: required when apps are configured (comma-separated bearer keys of at least 16 characters)"
)

// A line of its own (no variable to prefix): `describe` prints the message as is.
const refusal = (message: string) => ConfigError.InvalidData([], message)

/**
 * Everything `serve` reads, read up front, so a bad variable stops start-up
 * before anything listens: never half-configured. `names` are the variables
 * set in the environment: a typo of a known one, or a production setting
 * without any app to serve, must not quietly start something else.
 */
const readConfig = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const unknown = ServerConfig.unknownVariables(names)
    const typo = unknown.find((variable) => variable.suggestion !== undefined)
    if (typo !== undefined) {
      return yield* Effect.fail(refusal(`${typo.name} is not a setting: did you mean ${typo.suggestion}?`))
    }
    const log = yield* ServerConfig.logSettings
    const apps = yield* TokenConfig.apps
    const wecom = yield* WeComConfig.config
    const components = yield* ComponentConfig.components
    const suites = yield* WeComSuiteConfig.config
    const engine = yield* TokenConfig.settings
    const server = yield* ServerConfig.settings
    const proxy = yield* ServerConfig.proxySettings
    const store = yield* StoreSpec.config
    const encryptionKey = yield* StoreSpec.encryptionKey
    // Any configured app, official account, WeCom or component, means production: no demo.
    const owners: ReadonlyArray<string> = [
      ...apps.map((app) => app.appId),
      ...wecom.apps.map((app) => app.owner),
      ...components.map((component) => component.componentAppId),
      ...suites.suites.map((suite) => suite.suiteId),
      ...Option.toArray(suites.provider).map((provider) => provider.corpId)
    ]
    // The demo answers made-up tokens with 200: started in place of a
    // production server (a typo in WECHAT_APPS, a secret file not mounted) it
    // would fool every business server that asks it.
    const production = ServerConfig.productionVariables(names)
    // With ADMIN_KEYS the owners may all come at run time: an empty server is
    // a production one waiting for them, never the demo.
    if (owners.length === 0 && server.adminKeys.length === 0 && production.length > 0) {
      return yield* Effect.fail(refusal(
        `no app is configured, yet ${production.join(", ")} ${
          production.length === 1 ? "is" : "are"
        } set: set WECHAT_APPS (or WECHAT_APP_ID and WECHAT_APP_SECRET), WECOM_APPS, WECHAT_COMPONENTS or WECOM_SUITES (or ADMIN_KEYS to add them at run time), or unset them all for the demo`
      ))
    }
    if (owners.length > 0 && server.clientKeys.length === 0) return yield* Effect.fail(clientKeysRequired)
    // A key limited to an app the server does not have is a typo that would
    // leave a business server with nothing but 404s.
    for (const [index, key] of owners.length > 0 ? server.clientKeys.entries() : []) {
      const missing = key.apps?.find((appId) => !owners.includes(appId))
      if (missing !== undefined) {
        return yield* Effect.fail(
          ConfigError.InvalidData(
            ["CLIENT_KEYS"],
            `CLIENT_KEYS: key ${index + 1} names ${missing}, which is not a configured app`
          )
        )
      }
    }
    // One key in both lists would open the ops detail to a business server,
    // or a business server's routes to the monitoring system.
    const clientSecrets = new Set(server.clientKeys.map(({ key }) => Redacted.value(key)))
    const shared = server.opsKeys.findIndex((key) => clientSecrets.has(Redacted.value(key)))
    if (shared >= 0) {
      return yield* Effect.fail(
        ConfigError.InvalidData(["OPS_KEYS"], `OPS_KEYS: key ${shared + 1} is also a client key (CLIENT_KEYS)`)
      )
    }
    // The registry holds secrets: sealed at rest or not served at all.
    if (server.adminKeys.length > 0 && Option.isNone(encryptionKey)) {
      return yield* Effect.fail(
        ConfigError.MissingData(
          ["STORE_ENCRYPTION_KEY"],
          "ADMIN_KEYS needs STORE_ENCRYPTION_KEY (64 hex characters): the apps and keys it adds are sealed with it"
        )
      )
    }
    return {
      log,
      apps,
      wecom,
      components,
      suites,
      owners,
      engine,
      server,
      proxy,
      store,
      encryptionKey,
      ignored: unknown.map((variable) => variable.name)
    }
  })

// With `ADMIN_KEYS` (and the `STORE_ENCRYPTION_KEY` `readConfig` demands
// then): the registry on the store's documents, the admin state filled
// before the engine starts, and every replica following the registry.
const adminLayer = (
  config: TokenConfig.TokenConfigShape,
  wecom: WeComConfig.WeComConfigShape,
  components: ReadonlyArray<ComponentConfig.ComponentCredentials>,
  server: ServerConfig.ServerSettings,
  encryptionKey: Redacted.Redacted<string>,
  store: Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments, TokenStore.StoreError>
) =>
  Admin.layer({
    adminKeys: server.adminKeys,
    envApps: config.apps.map((app) => app.appId),
    envAgents: wecom.apps.map((app) => app.owner),
    envComponents: components.map((component) => component.componentAppId),
    mode: config.mode,
    apiBaseUrl: config.apiBaseUrl,
    weComApiBaseUrl: wecom.apiBaseUrl,
    upstreamTimeout: config.upstreamTimeout
  }).pipe(
    Layer.provideMerge(CredentialRegistry.layer(encryptionKey)),
    Layer.provide(store),
    Layer.provide(UpstreamHttpClient.layer)
  )

const serverLayer = (
  config: TokenConfig.TokenConfigShape,
  wecom: WeComConfig.WeComConfigShape,
  components: ReadonlyArray<ComponentConfig.ComponentCredentials>,
  suites: WeComSuiteConfig.WeComSuiteConfigShape,
  store: Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments, TokenStore.StoreError>,
  server: ServerConfig.ServerSettings,
  proxy: ServerConfig.ProxySettings,
  encryptionKey: Option.Option<Redacted.Redacted<string>>
) => {
  const consoleKeys = [...server.opsKeys, ...server.adminKeys]
  // `admin` reaches the engine (apps added at run time) and the edge (the
  // admin routes, the registry's client keys); the edge and the engine find
  // it as an optional service, so the server runs the same without it.
  const compose = <A, E>(admin: Layer.Layer<A, E>) =>
    NodeServer.layer({
      host: server.host,
      port: server.port,
      clientKeys: server.clientKeys,
      opsKeys: server.opsKeys,
      requestTimeout: server.requestTimeout,
      fastPath: server.fastPath,
      shutdownDrain: server.shutdownDrain,
      ...(consoleKeys.length === 0 ? {} : { console: { keys: consoleKeys } })
    }).pipe(
      // The console's replicas panel: the leases this replica's store grants (`OperatorConsole.layerWatchLeases`).
      Layer.provide(OperatorConsole.layerLeaseBook),
      Layer.provide(
        server.gateway
          ? Gateway.layer({
            secrets: config.apps,
            wechatBaseUrl: config.apiBaseUrl,
            upstreamTimeout: config.upstreamTimeout
          })
          : Layer.empty
      ),
      Layer.provideMerge(
        Proxy.layer({
          allow: proxy.allow,
          maxBodyBytes: proxy.maxBodyBytes,
          upstreamTimeout: config.upstreamTimeout,
          wechatBaseUrl: config.apiBaseUrl,
          wecomBaseUrl: wecom.apiBaseUrl
        })
      ),
      Layer.provideMerge(
        TokenLayer.layerFamilies({
          config: TokenConfig.layer(config),
          wecom: WeComConfig.layer(wecom),
          components: ComponentConfig.layer({ components, apiBaseUrl: config.apiBaseUrl }),
          suites: Layer.succeed(WeComSuiteConfig.WeComSuiteConfig, suites),
          store,
          httpClient: UpstreamHttpClient.layer
        }).pipe(Layer.provide(admin))
      ),
      Layer.provideMerge(admin),
      Layer.provide(store)
    )
  return server.adminKeys.length === 0 || Option.isNone(encryptionKey)
    ? compose(Layer.empty)
    : Admin.layerFollow.pipe(
      Layer.provideMerge(compose(adminLayer(config, wecom, components, server, encryptionKey.value, store)))
    )
}

// Node's listen and lookup errors carry an errno code; an operator needs the
// variable to change, not the code.
const errnoOf = (error: unknown): { readonly code?: unknown; readonly message?: unknown } | undefined =>
  typeof error === "object" && error !== null && "code" in error ? error : undefined

const startupCause = (
  error: HttpServerError.ServeError | TokenStore.StoreError | ConfigError.ConfigError,
  server: ServerConfig.ServerSettings
): string => {
  if (ConfigError.isConfigError(error)) return ServerConfig.describe(error)
  if (error._tag === "StoreError") return `TOKEN_STORE: ${error.message}`
  const cause = errnoOf(error.cause)
  const address = `${server.host}:${server.port}`
  switch (cause?.code) {
    case "EADDRINUSE":
      return `${address} is already in use by another process (set PORT, or stop the other process)`
    case "EACCES":
      return `no permission to listen on ${address} (ports below 1024 need privileges; set PORT)`
    case "EADDRNOTAVAIL":
      return `HOST ${server.host} is not an address of this machine`
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `HOST ${server.host} does not resolve to an address`
    default:
      return `cannot listen on ${address}: ${String(cause?.message ?? error.cause)}`
  }
}

/**
 * Runs the server until interrupted (SIGINT/SIGTERM under `NodeRuntime.runMain`):
 * then it stops accepting, lets in-flight requests finish and releases
 * everything, in reverse order of acquisition.
 *
 * @since 0.1.0
 * @category utils
 */
export const serve: Effect.Effect<never, StartupFailed> = Effect.gen(function*() {
  const names = yield* Effect.sync(() => Object.keys(process.env))
  const config = yield* Effect.catchAll(readConfig(names), configFailure)
  yield* CompactHeap.apply(config.server.compactHeap)
  // Refresh tokens and permanent codes mint tokens for months: sealed at rest when a key is given.
  const store = StoreSpec.mapStore(
    StoreSpec.layer(config.store, {
      encryptionKey: config.encryptionKey,
      sealedKinds: [Component.refreshToken, WeComSuite.permanentCode]
    }),
    Layer.provide(Tracing.layerStoreSpans, OperatorConsole.layerWatchLeases)
  )
  const main = config.owners.length > 0 || config.server.adminKeys.length > 0
    ? serverLayer(
      { apps: config.apps, ...config.engine },
      config.wecom,
      config.components,
      config.suites,
      store,
      config.server,
      config.proxy,
      config.encryptionKey
    ).pipe(
      Layer.tap(() =>
        Effect.logInfo("token server started").pipe(Effect.annotateLogs({ apps: config.owners.join(",") }))
      )
    )
    : Layer.unwrapScoped(Effect.gen(function*() {
      const demo = yield* Demo.start
      // No production setting is set (`readConfig`): the key is the demo's
      // own, and the demo listens on loopback only.
      const clientKeys = [{ key: demo.clientKey }]
      return serverLayer(
        { apps: [demo.app], ...config.engine, apiBaseUrl: demo.apiBaseUrl },
        { apps: [demo.weComApp], apiBaseUrl: demo.apiBaseUrl },
        [{ ...demo.component, componentAppId: AppId.make(demo.component.componentAppId) }],
        { suites: [], provider: Option.none(), apiBaseUrl: demo.apiBaseUrl },
        store,
        { ...config.server, host: "127.0.0.1", clientKeys },
        config.proxy,
        config.encryptionKey
      ).pipe(
        Layer.tap((context) => {
          const address = Context.get(context, HttpServer.HttpServer).address
          return Console.log(Demo.banner({
            address,
            appId: demo.app.appId,
            weComApp: demo.weComApp.owner,
            componentAppId: demo.component.componentAppId,
            clientKey: demo.clientKey
          })).pipe(
            // Now that the server listens, the demo component's pushes can reach it.
            Effect.zipRight(demo.connectComponent(Demo.eventsUrl(address, demo.component.componentAppId)))
          )
        })
      )
    }))
  const unsealed = config.store._tag !== "Memory" &&
    (config.components.length > 0 || config.suites.suites.length > 0) && Option.isNone(config.encryptionKey)
  const warnings = Effect.zipRight(
    Effect.logWarning(
      "STORE_ENCRYPTION_KEY is not set: authorizer refresh tokens and suite permanent codes are stored in clear; set it (64 hex characters)"
    ).pipe(Effect.when(() => unsealed)),
    Effect.forEach(
      config.ignored,
      (name) => Effect.logWarning(`${name} is not a setting of effect-wechat-token; ignored`),
      { discard: true }
    )
  )
  return yield* Effect.zipRight(warnings, Layer.launch(Layer.provide(main, Tracing.layerConfig))).pipe(
    Effect.catchAll((error) => refuse(`cannot start: ${startupCause(error, config.server)}`)),
    Effect.provide(Logging.layer(config.log))
  )
})

/**
 * Prints the current token of `appId` on stdout (logs go to stderr), using
 * `TokenLayer` from the environment.
 *
 * @since 0.1.0
 * @category utils
 */
export const token = (appId: string): Effect.Effect<void, StartupFailed> =>
  Effect.gen(function*() {
    const log = yield* Effect.catchAll(ServerConfig.logSettings, configFailure)
    yield* Effect.gen(function*() {
      const tokens = yield* AccessToken
      const credential = yield* tokens.get(appId)
      yield* Console.log(credential.value)
    }).pipe(
      Effect.provide(TokenLayer.layerConfig),
      Effect.catchTags({
        ConfigError: configFailure,
        UnknownApp: (error) => refuse(`${error.message}: configure it in WECHAT_APPS or WECHAT_APP_ID`)
      }),
      Effect.catchAll((error) =>
        error._tag === "StartupFailed" ? Effect.fail(error) : refuse(`no token: ${error.message}`)
      ),
      Effect.scoped,
      Effect.provide(Logging.layer(log, { stderr: true }))
    )
  })
