/**
 * `effect-wechat-token emulator`: the WeChat emulator on its own, over real
 * HTTP, so the library (or any WeChat client) can be tried against it
 * without a test runner: `WECHAT_API_BASE_URL=<the printed URL>`.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import { Console, Effect, Either } from "effect"
import * as WeChatEmulator from "../WeChatEmulator.js"

// The app the README's and docs/emulator.md's snippets use, so they run against a bare `emulator`.
const DEFAULT_APP: WeChatEmulator.AppRegistration = { appId: "wx0123456789abcdef", secret: "test-secret" }

const parseApp = (raw: string): Either.Either<WeChatEmulator.AppRegistration, string> => {
  const colon = raw.indexOf(":")
  const appId = raw.slice(0, colon)
  const secret = raw.slice(colon + 1)
  return colon > 0 && /^wx[0-9a-f]{16}$/.test(appId) && secret !== ""
    ? Either.right({ appId, secret })
    : Either.left(`--app: APPID:SECRET, the app id "wx" and 16 lowercase hex characters (got ${raw.length} characters)`)
}

const port = Options.integer("port").pipe(
  Options.withDefault(0),
  Options.withDescription("port to listen on (0: any free port, printed)")
)
const host = Options.text("host").pipe(
  Options.withDefault("127.0.0.1"),
  Options.withDescription("address to listen on")
)
const apps = Options.text("app").pipe(
  Options.repeated,
  Options.mapEffect((raws) =>
    Either.mapLeft(
      Either.all(raws.map(parseApp)),
      (message) => ValidationError.invalidValue(HelpDoc.p(message))
    )
  ),
  Options.withDescription(`an app WeChat knows, APPID:SECRET (repeatable; default ${DEFAULT_APP.appId}:test-secret)`)
)

/** The `emulator` subcommand: serves until SIGINT or SIGTERM. */
export const command = Command.make("emulator", { port, host, apps }, (options) =>
  Effect.gen(function*() {
    const registered = options.apps.length === 0 ? [DEFAULT_APP] : options.apps
    const served = yield* WeChatEmulator.serve({ apps: registered, host: options.host, port: options.port })
    yield* Console.log(`WeChat emulator at ${served.url}`)
    // The emulator's secrets guard nothing real: printing them makes the next step one paste.
    const appsVariable = registered.map((app) => `${app.appId}:${app.secret}`).join(",")
    yield* Console.log(
      `point the library or the server at it: WECHAT_API_BASE_URL=${served.url} WECHAT_APPS=${appsVariable}`
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)).pipe(
    Command.withDescription("Run the WeChat emulator on its own over HTTP (tokens, tickets, media, faults)")
  )
