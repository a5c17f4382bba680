/**
 * The one engine test harness: the engine (`TokenLayer.layer`) over the
 * in-process emulator, built inside each test so `TestClock` drives its
 * fibers, and the emulator's counters the tests assert on.
 */
import { Context, Duration, Effect, Layer } from "effect"
import type { AccessToken } from "../../src/AccessToken.js"
import type * as CredentialFamily from "../../src/CredentialFamily.js"
import * as WeComApi from "../../src/families/wecom/WeComApi.js"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteApi from "../../src/families/wecomSuite/WeComSuiteApi.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import * as TokenEngineModule from "../../src/TokenEngine.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { APP, OTHER } from "./fixtures.js"

export { APP, OTHER }
export const SECRET = "emulated-secret"

/** Both apps, as the emulator knows them. */
export const registered: ReadonlyArray<Emulator.AppRegistration> = [
  { appId: APP, secret: SECRET },
  { appId: OTHER, secret: SECRET }
]

/** An emulator that knows both apps. */
export const emulatorLayer = (options: Emulator.EmulatorOptions = {}) =>
  Emulator.layer({ apps: registered, ...options })

/**
 * `emulator` with `faults` in place before anything built on it starts: an
 * engine's eager first fetch meets them (injected from a test's body, they
 * race that fetch).
 */
export const withFaults = <E, R>(
  emulator: Layer.Layer<Emulator.WeChatEmulator, E, R>,
  faults: ReadonlyArray<Emulator.FaultRule>
): Layer.Layer<Emulator.WeChatEmulator, E, R> =>
  Layer.tap(
    emulator,
    (context) => Effect.forEach(faults, Context.get(context, Emulator.WeChatEmulator).injectFault, { discard: true })
  )

/** The engine's configuration; classic mode unless a test says otherwise. */
export interface EngineOptions {
  readonly mode?: TokenMode
  readonly secret?: string
  readonly apps?: ReadonlyArray<string>
  readonly marginSeconds?: number
  readonly store?: Layer.Layer<TokenStore.TokenStore>
}

export const engineLayer = (
  options: EngineOptions = {}
): Layer.Layer<AccessToken | TokenEngine, never, Emulator.WeChatEmulator> =>
  TokenLayer.layer({
    config: TokenConfig.layer({
      apps: (options.apps ?? [APP]).map((appId) => TokenConfig.app(appId, options.secret ?? SECRET)),
      mode: options.mode ?? "classic",
      refreshMargin: Duration.seconds(options.marginSeconds ?? 300),
      apiBaseUrl: "http://wechat.test"
    }),
    store: options.store ?? TokenStore.layerMemory,
    httpClient: Emulator.layerClient
  })

/** Runs `body` with the engine; call it inside the test so `TestClock` already drives the engine. */
export const withEngine = <A, E, R>(
  layer: Layer.Layer<AccessToken | TokenEngine, never, Emulator.WeChatEmulator>,
  body: Effect.Effect<A, E, R>
) => Effect.provide(body, layer)

/**
 * Runs `body` with a fresh engine over a fresh emulator: the test's one setup,
 * the engine built inside the test so `TestClock` already drives it.
 */
export const inEngine = <A, E>(
  body: (
    engine: TokenEngine["Type"],
    emulator: Emulator.WeChatEmulatorShape
  ) => Effect.Effect<A, E, Emulator.WeChatEmulator>,
  options: {
    readonly engine?: EngineOptions
    readonly emulator?: Layer.Layer<Emulator.WeChatEmulator>
  } = {}
) =>
  withEngine(
    engineLayer(options.engine),
    Effect.flatMap(Effect.all([TokenEngine, Emulator.WeChatEmulator]), ([engine, emulator]) => body(engine, emulator))
  ).pipe(Effect.provide(options.emulator ?? emulatorLayer()))

/** One app's counters at the emulator. */
export const statsOf = (appId: string = APP) =>
  Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.appStats(appId))

/** Token fetches the emulator has answered for an app, whatever the endpoint. */
export const tokenFetches = (appId: string = APP) =>
  Effect.map(statsOf(appId), (stats) => stats.classicCalls + stats.stableCalls)

/** Whether WeChat would accept the access token now. */
export const isValid = (token: string) =>
  Effect.flatMap(Emulator.WeChatEmulator, (emulator) => emulator.isValidToken(token))

/** Whether the engine holds a valid credential now; read from the status, which never waits on a fetch. */
export const validNow = (appId: string, kind: string) =>
  Effect.flatMap(
    TokenEngine,
    (engine) =>
      Effect.map(engine.status, (statuses) =>
        statuses.some((status) => status.appId === appId && status.kind === kind && status.valid))
  )

/**
 * The WeCom suite families alone on an engine, with their API clients aimed
 * at the emulator's WeCom host; the suites' configuration and a store are
 * left for the test to provide.
 */
export const suiteEngineLayer = TokenEngineModule.layerFamilies(
  Effect.map(
    WeComSuite.families,
    (list) => list as readonly [CredentialFamily.CredentialFamily, ...Array<CredentialFamily.CredentialFamily>]
  )
).pipe(
  Layer.provideMerge(Layer.mergeAll(
    WeComSuiteApi.layer({ baseUrl: "http://wecom.test" }),
    WeComApi.layer({ baseUrl: "http://wecom.test" })
  ))
)
