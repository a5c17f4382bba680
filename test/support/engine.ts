/**
 * The one engine test harness: the engine (`TokenLayer.layer`) over the
 * in-process emulator, built inside each test so `TestClock` drives its
 * fibers, and the emulator's counters the tests assert on.
 */
import { Duration, Effect, type Layer } from "effect"
import type { AccessToken } from "../../src/AccessToken.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
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
