/**
 * Demo mode: no app configured, so the server runs against the bundled WeChat
 * emulator with a demo app and a generated client key, and prints how to call it.
 *
 * @since 0.1.0
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import { Chunk, Effect, Random, Redacted } from "effect"
import { randomInt } from "node:crypto"
import * as WeComConfig from "../families/wecom/WeComConfig.js"
import * as TokenConfig from "../TokenConfig.js"

/**
 * The demo app's id: a well-formed id no real app is likely to have.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEMO_APP_ID = "wx0123456789abcdef"

/**
 * The demo WeCom corp and its app (AgentId), served beside the demo app.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEMO_CORP_ID = "ww0123456789abcdef"

/**
 * @since 0.2.0
 * @category constants
 */
export const DEMO_AGENT = "1000002"

/**
 * The demo third-party platform (component) and the merchants that authorize
 * it once the server's push URL is known (`connectComponent`).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEMO_COMPONENT_APP_ID = "wxc0123456789abcde"

/**
 * @since 0.3.0
 * @category constants
 */
export const DEMO_AUTHORIZERS: ReadonlyArray<string> = [
  "wx0123456789abc001",
  "wx0123456789abc002",
  "wx0123456789abc003"
]

/**
 * `bytes` random bytes from Effect `Random`, as lowercase hex.
 *
 * @since 0.1.0
 * @category utils
 */
export const randomHex = (bytes: number): Effect.Effect<string> =>
  Effect.map(
    Effect.replicateEffect(Random.nextIntBetween(0, 256), bytes),
    (values) => values.map((value) => value.toString(16).padStart(2, "0")).join("")
  )

const cryptoInt = (min: number, max: number) => Effect.sync(() => randomInt(min, max))

/**
 * Effect's default `Random` is a fast generator with a small seed: fine for
 * jitter, guessable for a key. Keys are drawn through `Random` from this
 * instance, backed by the operating system's CSPRNG.
 *
 * @since 0.1.0
 * @category utils
 */
export const secureRandom: Random.Random = {
  [Random.RandomTypeId]: Random.RandomTypeId,
  next: Effect.map(cryptoInt(0, 2 ** 48 - 1), (n) => n / 2 ** 48),
  nextBoolean: Effect.map(cryptoInt(0, 2), (n) => n === 1),
  nextInt: cryptoInt(-(2 ** 31), 2 ** 31),
  nextRange: (min, max) => Effect.map(cryptoInt(0, 2 ** 48 - 1), (n) => min + (n / 2 ** 48) * (max - min)),
  nextIntBetween: (min, max) => cryptoInt(min, max),
  shuffle: (elements) =>
    Effect.sync(() => {
      const items = Array.from(elements)
      for (let i = items.length - 1; i > 0; i--) {
        const j = randomInt(0, i + 1)
        ;[items[i], items[j]] = [items[j]!, items[i]!]
      }
      return Chunk.fromIterable(items)
    })
}

/**
 * Starts the emulator on a free loopback port with the demo app registered
 * under a fresh secret; everything stops with the scope.
 *
 * @since 0.1.0
 * @category utils
 */
export const start = Effect.gen(function*() {
  const secret = yield* Effect.withRandom(randomHex(16), secureRandom)
  const corpSecret = yield* Effect.withRandom(randomHex(16), secureRandom)
  const clientKey = Redacted.make(yield* Effect.withRandom(randomHex(32), secureRandom))
  const component = {
    componentAppId: DEMO_COMPONENT_APP_ID,
    secret: yield* Effect.withRandom(randomHex(16), secureRandom),
    messageToken: yield* Effect.withRandom(randomHex(16), secureRandom),
    // 43 hex digits are 43 valid EncodingAESKey characters.
    encodingAesKey: (yield* Effect.withRandom(randomHex(22), secureRandom)).slice(0, 43)
  }
  // Loaded only here: a configured server never loads the test kit.
  const Emulator = yield* Effect.promise(() => import("../testing/index.js"))
  const emulator = yield* Emulator.serve({
    apps: [{ appId: DEMO_APP_ID, secret }],
    corps: [{ corpId: DEMO_CORP_ID, apps: [{ agent: DEMO_AGENT, secret: corpSecret }] }],
    components: [component],
    host: "127.0.0.1",
    port: 0
  })
  return {
    app: TokenConfig.app(DEMO_APP_ID, secret),
    weComApp: WeComConfig.app(DEMO_CORP_ID, DEMO_AGENT, corpSecret),
    apiBaseUrl: emulator.url,
    clientKey,
    component: {
      componentAppId: component.componentAppId,
      secret: Redacted.make(component.secret),
      messageToken: Redacted.make(component.messageToken),
      encodingAesKey: Redacted.make(component.encodingAesKey)
    },
    /**
     * Points the demo component's pushes at `pushUrl` (the server's
     * `/wechat/components/{componentAppId}/events`), pushes a verify ticket
     * and has the demo merchants authorize, each pushed as `authorized`.
     */
    connectComponent: (pushUrl: string) =>
      Effect.gen(function*() {
        yield* emulator.emulator.component.setPushUrl(DEMO_COMPONENT_APP_ID, pushUrl)
        yield* emulator.emulator.component.pushTicket(DEMO_COMPONENT_APP_ID)
        for (const authorizer of DEMO_AUTHORIZERS) {
          yield* emulator.emulator.component.authorize(DEMO_COMPONENT_APP_ID, authorizer)
        }
        // The demo component is registered above, so no control can refuse it.
      }).pipe(Effect.orDie)
  }
})

const urlOf = (address: HttpServer.Address): string =>
  address._tag === "UnixAddress"
    ? `http+unix://${address.path}`
    : `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`

/**
 * The authorization-event URL of `componentAppId` on the server at `address`.
 *
 * @since 0.3.0
 * @category utils
 */
export const eventsUrl = (address: HttpServer.Address, componentAppId: string): string =>
  `${urlOf(address)}/wechat/components/${componentAppId}/events`

/**
 * What demo mode prints: the base URL, the client key and a ready `curl` line.
 * The key is a throw-away generated for this run, so printing it is the point.
 *
 * @since 0.1.0
 * @category utils
 */
export const banner = (options: {
  readonly address: HttpServer.Address
  readonly appId: string
  readonly clientKey: Redacted.Redacted<string>
  /** The demo WeCom app as `corpid/agent`, when served. */
  readonly weComApp?: string
  /** The demo third-party platform, when served. */
  readonly componentAppId?: string
}): string => {
  const base = urlOf(options.address)
  const key = Redacted.value(options.clientKey)
  return [
    "",
    "effect-wechat-token demo: none of WECHAT_APPS, WECOM_APPS, WECHAT_COMPONENTS configured, serving demo apps from the bundled WeChat emulator.",
    `  base URL:   ${base}`,
    `  client key: ${key}`,
    `  app id:     ${options.appId}`,
    `  API docs:   ${base}/docs`,
    "",
    "Try:",
    `curl -s -H 'Authorization: Bearer ${key}' ${base}/v1/apps/${options.appId}/access-token`,
    ...(options.weComApp === undefined ? [] : [
      "",
      `WeCom (企业微信) demo app ${options.weComApp}:`,
      `curl -s -H 'Authorization: Bearer ${key}' ${base}/v1/wecom/${
        options.weComApp.replace("/", "/agents/")
      }/access-token`
    ]),
    ...(options.componentAppId === undefined ? [] : [
      "",
      `Third-party platform (component) demo ${options.componentAppId} and its authorizers:`,
      `curl -s -H 'Authorization: Bearer ${key}' ${base}/v1/components/${options.componentAppId}/authorizers`
    ]),
    ""
  ].join("\n")
}
