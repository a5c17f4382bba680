/**
 * A real token server with the admin API over the WeChat emulator: one
 * configured app (`APP`), one configured WeCom app (`ENV_AGENT`), a
 * component WeChat knows and the server does not (`COMPONENT`), the
 * registry on an in-memory store, and `call` to send any method, path, key
 * and body (a string is sent as is, so malformed bodies reach the server).
 * Provided `ServedConsole`, the server also serves the console.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import * as CredentialRegistry from "../../../src/CredentialRegistry.js"
import * as WeComConfig from "../../../src/families/wecom/WeComConfig.js"
import * as Admin from "../../../src/server/admin/Admin.js"
import * as NodeServer from "../../../src/server/NodeServer.js"
import * as StoreSpec from "../../../src/StoreSpec.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import * as TokenConfig from "../../../src/TokenConfig.js"
import * as TokenLayer from "../../../src/TokenLayer.js"
import { registration } from "../../support/componentStack.js"
import { APP, KEY, OTHER, SECRET } from "../../support/serverStack.js"

export const ADMIN_KEY = "admin-key-0123456789abcdef-0123456789"
export const ENCRYPTION_KEY = Redacted.make("0123456789abcdef".repeat(4))
export const CORP = "ww0123456789abcdef"
/** A corp with no configured app: its corp ticket is held by an app added at run time. */
export const CORP2 = "ww0000000000000abc"
/** A corp WeCom does not know. */
export const UNKNOWN_CORP = "ww00000000000000ff"
export const CORP_SECRET = "corp-secret-never-in-any-answer"
/** The secret of every WeCom app but `ENV_AGENT` (WeCom tells apps apart by their secrets). */
export const AGENT_SECRET = "agent-secret-never-in-any-answer"
/** A configured WeCom app: read-only through the admin API. */
export const ENV_AGENT = `${CORP}/1000001`

/** The console the server serves: none unless provided. */
export class ServedConsole extends Context.Reference<ServedConsole>()("test/ServedConsole", {
  defaultValue: (): NodeServer.Options["console"] => undefined
}) {}

export const serve = Effect.gen(function*() {
  const served = yield* ServedConsole
  const { emulator, url } = yield* Emulator.serve({
    apps: [{ appId: APP, secret: SECRET }, { appId: OTHER, secret: SECRET }],
    corps: [{
      corpId: CORP,
      apps: [{ agent: "1000001", secret: CORP_SECRET }, { agent: "1000002", secret: AGENT_SECRET }]
    }, { corpId: CORP2, apps: [{ agent: "1000003", secret: AGENT_SECRET }] }],
    // Known to WeChat, configured nowhere: added through the admin API.
    components: [registration]
  })
  const store = StoreSpec.layerMemory
  const admin = Admin.layer({
    adminKeys: [Redacted.make(ADMIN_KEY)],
    envApps: [APP as never],
    envAgents: [ENV_AGENT as never],
    mode: "classic",
    apiBaseUrl: url,
    weComApiBaseUrl: url,
    upstreamTimeout: Duration.seconds(5)
  }).pipe(
    Layer.provideMerge(CredentialRegistry.layer(ENCRYPTION_KEY)),
    Layer.provide(store),
    Layer.provide(FetchHttpClient.layer)
  )
  const engine = TokenLayer.layerFamilies({
    config: TokenConfig.layer({ apps: [TokenConfig.app(APP, SECRET)], mode: "classic", apiBaseUrl: url }),
    wecom: WeComConfig.layer({ apps: [WeComConfig.app(CORP, "1000001", CORP_SECRET)], apiBaseUrl: url }),
    store,
    httpClient: FetchHttpClient.layer
  }).pipe(Layer.provide(admin))
  const context = yield* Layer.build(
    NodeServer.layer({
      host: "127.0.0.1",
      port: 0,
      clientKeys: [{ key: Redacted.make(KEY) }],
      ...(served === undefined ? {} : { console: served })
    }).pipe(
      Layer.provideMerge(Admin.layerFollow),
      Layer.provideMerge(engine),
      Layer.provideMerge(admin),
      Layer.provide(store)
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const base = `http://127.0.0.1:${address.port}`
  const call = (method: string, path: string, key: string, body?: unknown) =>
    Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
      })
      return { status: response.status, text: await response.text() }
    })
  return {
    base,
    call,
    emulator,
    registry: Context.get(context, CredentialRegistry.CredentialRegistry),
    fetches: Effect.map(emulator.appStats(OTHER), (stats) => stats.classicCalls + stats.stableCalls)
  }
})
