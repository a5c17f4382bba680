// A user's program, compiled against the installed package: the library with
// the bundled emulator as WeChat, six simulated hours on TestClock.
import { Duration, Effect, Layer, TestClock, TestContext } from "effect"
import { AccessToken, TokenConfig, TokenLayer, TokenStore } from "effect-wechat-token"
import * as Emulator from "effect-wechat-token/testing"

const APP_ID = "wx0123456789abcdef"
const SECRET = "consumer-secret"
const BASE_URL = "http://wechat.test"

const program = Effect.gen(function*() {
  const tokens = yield* AccessToken.AccessToken
  const emulator = yield* Emulator.WeChatEmulator
  let served = 0
  let invalid = 0
  // Every 10 simulated minutes for 6 hours: ask for a token, check WeChat accepts it.
  for (let minute = 0; minute < 6 * 60; minute += 10) {
    const token = yield* tokens.get(APP_ID)
    served++
    if (!(yield* emulator.isValidToken(token.value))) invalid++
    yield* TestClock.adjust(Duration.minutes(10))
  }
  const stats = yield* emulator.appStats(APP_ID)
  return { served, invalid, fetches: stats.classicCalls + stats.stableCalls }
})

const MainLayer = TokenLayer.layer({
  config: TokenConfig.layer({ apps: [TokenConfig.app(APP_ID, SECRET)], apiBaseUrl: BASE_URL }),
  store: TokenStore.layerMemory,
  httpClient: Emulator.layerClient
}).pipe(Layer.provideMerge(Emulator.layer({ apps: [{ appId: APP_ID, secret: SECRET }] })))

const result = await Effect.runPromise(
  program.pipe(Effect.provide(MainLayer), Effect.scoped, Effect.provide(TestContext.TestContext))
)
console.log(JSON.stringify(result))
