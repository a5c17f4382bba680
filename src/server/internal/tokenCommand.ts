/**
 * `effect-wechat-token token <appId>`: the token a running server holds.
 * It asks the server (`--server`/`TOKEN_SERVER_URL`, `--key`/`TOKEN_SERVER_KEY`)
 * by default, because a second fetcher is the trap this command used to be:
 * in classic mode every fetch from WeChat kills the token the server serves
 * five minutes later. Fetching from WeChat itself takes `--direct`.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Config, type ConfigError, Console, Effect, Option, type Redacted } from "effect"
import * as RemoteTokenLayer from "../../client/RemoteTokenLayer.js"
import * as TokenConfig from "../../TokenConfig.js"
import * as Logging from "../Logging.js"
import * as Main from "../Main.js"
import * as ServerConfig from "../ServerConfig.js"

const refuse = (line: string) =>
  Console.error(line).pipe(Effect.zipRight(Effect.fail(new Main.StartupFailed({ line }))))

const configFailure = (error: ConfigError.ConfigError) => refuse(ServerConfig.describe(error))

const owner = Args.text({ name: "appId" }).pipe(
  Args.withDescription("an app id (wx…), or a WeCom app as corpid/agent (asking a server only)")
)
const server = Options.text("server").pipe(
  Options.optional,
  Options.withDescription("the token server's base URL (default: TOKEN_SERVER_URL)")
)
const key = Options.redacted("key").pipe(
  Options.optional,
  Options.withDescription("a client key of that server (default: TOKEN_SERVER_KEY; a flag shows in `ps`)")
)
const direct = Options.boolean("direct").pipe(
  Options.withDescription(
    "fetch from WeChat with this process's own WECHAT_* configuration instead of asking a server"
  )
)

// A flag wins over its variable; neither is a refusal naming both and the way out.
const fromFlagOrEnv = <A>(
  flag: Option.Option<A>,
  variable: Config.Config<A>,
  name: string,
  flagName: string
): Effect.Effect<A, Main.StartupFailed> =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Effect.flatMap(
        Effect.orElseSucceed(Config.option(variable), () => Option.none<A>()),
        Option.match({
          onSome: Effect.succeed,
          onNone: () =>
            refuse(
              `token: no server to ask: give ${flagName} or set ${name} (or --direct to fetch from WeChat itself)`
            )
        })
      )
  })

const fromServer = (
  ownerId: string,
  flags: { readonly server: Option.Option<string>; readonly key: Option.Option<Redacted.Redacted> }
) =>
  Effect.gen(function*() {
    const baseUrl = yield* fromFlagOrEnv(
      flags.server,
      Config.string("TOKEN_SERVER_URL"),
      "TOKEN_SERVER_URL",
      "--server"
    )
    if (!/^https?:\/\//.test(baseUrl)) {
      return yield* refuse("token: the server's URL must start with http:// or https://")
    }
    const clientKey = yield* fromFlagOrEnv(flags.key, Config.redacted("TOKEN_SERVER_KEY"), "TOKEN_SERVER_KEY", "--key")
    const options = { baseUrl, clientKey }
    const slash = ownerId.indexOf("/")
    const credential = yield* (slash < 0
      ? Effect.flatMap(RemoteTokenLayer.make(options), (tokens) => tokens.get(ownerId))
      : Effect.flatMap(
        RemoteTokenLayer.makeWeCom(options),
        (tokens) => tokens.get(ownerId.slice(0, slash), ownerId.slice(slash + 1))
      )).pipe(
        Effect.catchAll((error) => refuse(`no token from ${baseUrl}: ${error.message}`)),
        Effect.scoped,
        Effect.provide(FetchHttpClient.layer)
      )
    yield* Console.log(credential.value)
  })

const fromWeChat = (appId: string) =>
  Effect.gen(function*() {
    const settings = yield* Effect.catchAll(TokenConfig.settings, configFailure)
    if (settings.mode === "classic") {
      // WeChat's classic endpoint invalidates the previous token five minutes after
      // each fetch: whoever else holds this app's token loses it.
      yield* Console.error(
        "warning: --direct in classic mode fetches a new token from WeChat; every other holder of this app's token (a token server included) loses theirs within 5 minutes"
      )
    }
    yield* Main.token(appId)
  })

/** The `token` subcommand. */
export const command = Command.make("token", { owner, server, key, direct }, (flags) =>
  Effect.gen(function*() {
    const log = yield* Effect.catchAll(ServerConfig.logSettings, configFailure)
    const run = Effect.gen(function*() {
      if (!flags.direct) return yield* fromServer(flags.owner, flags)
      if (Option.isSome(flags.server) || Option.isSome(flags.key)) {
        return yield* refuse("token: --direct asks WeChat itself; --server and --key are for asking a server")
      }
      return yield* fromWeChat(flags.owner)
    })
    return yield* Effect.provide(run, Logging.layer(log, { stderr: true }))
  })).pipe(
    Command.withDescription(
      "Print the access token a running server holds (--server or TOKEN_SERVER_URL, --key or TOKEN_SERVER_KEY); --direct fetches from WeChat instead"
    )
  )
