#!/usr/bin/env node
/**
 * The `effect-wechat-token` command: `serve` runs the central token server
 * (the demo when no app is configured), `token <appId>` prints the access
 * token a running server holds, `emulator` runs the WeChat emulator. Its
 * `--version` is `package.json`'s, read in `internal/version.ts` (the one
 * place); the command has no API page, so it carries no `@since`.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { environmentFooter, plainWhenPiped } from "./internal/cliHelp.js"
import { version } from "./internal/version.js"
import * as Token from "./server/internal/tokenCommand.js"
import * as Main from "./server/Main.js"
import * as Emulator from "./testing/internal/command.js"

const serve = Command.make("serve", {}, () => Main.serve).pipe(
  Command.withDescription(
    "Run the central token server (demo mode with the bundled emulator when no app is configured)"
  )
)

const cli = Command.run(
  Command.make("effect-wechat-token").pipe(Command.withSubcommands([serve, Token.command, Emulator.command])),
  {
    name: "effect-wechat-token",
    version,
    footer: environmentFooter
  }
)

cli(process.argv).pipe(
  plainWhenPiped,
  // Start-up failures and bad arguments have printed their one line already;
  // a defect is a bug and is shown in full.
  Effect.tapDefect((cause) => Effect.logError(cause)),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
