/**
 * The server's logger: `LOG_FORMAT` json (one object a line, for collectors)
 * or pretty (for people), at `LOG_LEVEL`. What is logged never holds a
 * secret (they are `Redacted`) nor a whole token (the engine logs `mask`ed values).
 *
 * @since 0.1.0
 */
import { Inspectable, Layer, Logger } from "effect"
import type { LogSettings } from "./ServerConfig.js"

// `Effect.log("a", "b")` hands the logger an array: collectors index
// `message` as one field of one type, so the parts become one string.
const oneMessage = (message: unknown): unknown =>
  Array.isArray(message)
    ? message.map((part) => typeof part === "string" ? part : Inspectable.toStringUnknown(part)).join(": ")
    : message

/**
 * JSON lines whose `message` is always a string.
 *
 * @since 0.3.0
 * @category loggers
 */
export const jsonLogger: Logger.Logger<unknown, string> = Logger.mapInput(Logger.jsonLogger, oneMessage)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: LogSettings,
  options: {
    /** Log to stderr, keeping stdout for a command's answer. Default false. */
    readonly stderr?: boolean
    readonly isTTY?: boolean
  } = {}
): Layer.Layer<never> => {
  const stderr = options.stderr === true
  const isTTY = options.isTTY ?? ((stderr ? process.stderr.isTTY : process.stdout.isTTY) === true)
  const format = settings.format ?? (isTTY ? "pretty" : "json")
  const logger = format === "json"
    ? (stderr ? Logger.withConsoleError(jsonLogger) : Logger.withConsoleLog(jsonLogger))
    : Logger.prettyLogger({ stderr })
  // One after the other, not `Layer.merge`: with the two merged, the fiber
  // they were provided to kept the new logger after the provide ended, so a
  // second provide added a second one and every line was written twice
  // (test/server/Logging.test.ts).
  return Layer.provideMerge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(settings.level))
}
