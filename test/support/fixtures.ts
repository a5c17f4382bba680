/**
 * The suite's one fixtures module: the ids and keys every harness and test
 * share, and the waiting helper the TestClock suites share. The harnesses
 * (`engine.ts` for the engine under TestClock, `serverStack.ts` and
 * `componentStack.ts` for live servers over loopback, `replicas.ts` for
 * server processes) build on it and re-export what their tests use.
 */
import { Arbitrary, Duration, Effect, Schema, TestClock } from "effect"
import * as SuiteEvents from "../../src/families/wecomSuite/SuiteEvents.js"
import * as WeComSuiteConfig from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import type { SuiteCredentials } from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import type { PushRequest } from "../../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../../src/Token.js"

/** The app every suite configures. */
export const APP = "wx0123456789abcdef"
/** A second configured app, for the tests where apps must stay independent. */
export const OTHER = "wxfedcba9876543210"
/** An app id neither WeChat nor the server knows. */
export const THIRD = "wx00112233445566ff"

/** The server's client key. */
export const KEY = "client-key-0123456789abcdef"
/** The server's one ops key: `/readyz` and `/metrics` in detail. */
export const OPS_KEY = "ops-key-0123456789abcdef0123456789"

/** The third-party platform (component) and two merchants authorizing it. */
export const COMPONENT = "wx00c0c0c0c0c0c0c0"
export const COMPONENT_SECRET = "component-secret-never-logged"
export const MESSAGE_TOKEN = "pushToken2026"
// The official sample EncodingAESKey: 43 base64 characters.
export const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
export const MERCHANT = "wx00aa00aa00aa00aa"
export const MERCHANT_2 = "wx00bb00bb00bb00bb"

/** A WeCom suite (its message token and AES key are the component's) and a corp installing it. */
export const SUITE = "ww5c5c5c5c5c5c5c5c"
export const SUITE_SECRET = "suite-secret-never-in-clear-0123"
export const SUITE_CORP = "ww0c0c0c0c0c0c0c0c"
/** The suite as the emulator registers it and as `WECOM_SUITES` names it. */
export const suiteRegistration = {
  suiteId: SUITE,
  secret: SUITE_SECRET,
  messageToken: MESSAGE_TOKEN,
  encodingAesKey: AES_KEY
}
export const WECOM_SUITES = `${SUITE}:${SUITE_SECRET}:${MESSAGE_TOKEN}:${AES_KEY}`
/** The same suite as the library configures it. */
export const suiteCredentials = WeComSuiteConfig.suite(SUITE, SUITE_SECRET, MESSAGE_TOKEN, AES_KEY)
/** A `STORE_ENCRYPTION_KEY`: 32 bytes in hex. */
export const STORE_KEY = "0123456789abcdef".repeat(4)

/** Known server paths asked with a method they do not serve, and the methods their `Allow` lists. */
export const wrongMethods = [
  ["DELETE", `/v1/apps/${APP}/access-token`, "GET, HEAD"],
  ["POST", `/v1/apps/${APP}/jsapi-ticket`, "GET, HEAD"],
  ["GET", `/v1/apps/${APP}/jssdk-config`, "POST"],
  ["PUT", `/v1/apps/${APP}/access-token/refresh`, "POST"],
  ["POST", "/healthz", "GET, HEAD"],
  ["DELETE", "/metrics", "GET, HEAD"]
] as const

/**
 * Lets other fibers run until `done` holds; fails the test if it never does.
 * Under TestClock nothing else moves time, so yielding is all it takes.
 */
export const waitFor = <E, R>(done: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let turn = 0; turn < 1_000; turn++) {
      if (yield* done) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage("the condition never held")
  })

/**
 * Lets forked work that sleeps on TestClock (a push's exchange, its retries,
 * an eager fetch) run until `done` holds: up to 30 simulated seconds.
 */
export const settle = <E, R>(done: Effect.Effect<boolean, E, R>): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    for (let step = 0; step < 300; step++) {
      if (yield* done) return
      yield* TestClock.adjust(Duration.millis(100))
    }
    if (!(yield* done)) return yield* Effect.dieMessage("the condition never held within 30 simulated seconds")
  })

/** A suite's push as the emulator sends it (signature in the URL's query), opened as the intake opens it. */
export const openSuitePush = (suite: SuiteCredentials, request: PushRequest) => {
  const query = new URL(request.url).searchParams
  return SuiteEvents.open(suite, {
    msg_signature: query.get("msg_signature") ?? "",
    timestamp: query.get("timestamp") ?? "",
    nonce: query.get("nonce") ?? ""
  }, request.body)
}

/**
 * Records as a store holds them, for property tests of the stores' own
 * encoders and decoders against the `TokenRecord` schema: its encoded
 * fields through JSON (so no field is present but undefined, every time is
 * finite).
 */
export const storedRecords = Arbitrary.make(TokenRecord)
  .filter((record) => [record.fetchedAt, record.expiresAt, record.refreshAt].every(Number.isFinite))
  .map((record) => JSON.parse(JSON.stringify(Schema.encodeSync(TokenRecord)(record))) as Record<string, unknown>)
