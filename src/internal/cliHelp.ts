/**
 * What the command line prints beyond @effect/cli's defaults: the environment
 * variables at the foot of `--help` (the list behind docs/configuration.md),
 * and no colour codes where no terminal reads them.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import { Array as Arr, Console, Effect } from "effect"
import { stripVTControlCharacters } from "node:util"
import { groups } from "./environment.js"

// Help text is read in a terminal: the table's Markdown backticks are noise there.
const plain = (text: string): string => text.replaceAll("`", "")

/** The ENVIRONMENT section of `--help`: every variable with its default, grouped as in the docs. */
export const environmentFooter: HelpDoc.HelpDoc = HelpDoc.blocks([
  HelpDoc.h1("ENVIRONMENT"),
  HelpDoc.p("Every variable, with its default; all of them: docs/configuration.md"),
  ...groups.flatMap((group) => {
    const definitions = group.variables.map((variable): [Span.Span, HelpDoc.HelpDoc] => [
      Span.code(variable.file === true ? `${variable.name} (or ${variable.name}_FILE)` : variable.name),
      HelpDoc.p(`${plain(variable.meaning)} (default: ${plain(variable.default)})`)
    ])
    return Arr.isNonEmptyReadonlyArray(definitions)
      ? [HelpDoc.h2(plain(group.title)), HelpDoc.descriptionList(definitions)]
      : []
  })
])

const forStream = (stream: NodeJS.WriteStream) => (args: ReadonlyArray<unknown>) =>
  stream.isTTY ? args : args.map((arg) => typeof arg === "string" ? stripVTControlCharacters(arg) : arg)

/**
 * Runs `self` with a console that drops colour codes from what it writes to
 * a stream that is not a terminal: `--help | less`, a file or a CI log gets
 * plain text instead of escape sequences.
 */
export const plainWhenPiped = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) => {
    const out = forStream(process.stdout)
    const err = forStream(process.stderr)
    return Effect.withConsole(self, {
      ...console,
      log: (...args) => console.log(...out(args)),
      info: (...args) => console.info(...out(args)),
      error: (...args) => console.error(...err(args)),
      warn: (...args) => console.warn(...err(args))
    })
  })
