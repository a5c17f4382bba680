/**
 * The server's logger: `LOG_FORMAT` json (one object a line, for collectors)
 * or pretty (for people), at `LOG_LEVEL`. What is logged never holds a
 * secret (they are `Redacted`) nor a whole token (the engine logs `mask`ed values).
 *
 * @since 0.1.0
 */
import { Layer, Logger } from "effect"
import type { LogSettings } from "./ServerConfig.js"

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
    ? (stderr ? Logger.withConsoleError(Logger.jsonLogger) : Logger.withConsoleLog(Logger.jsonLogger))
    : Logger.prettyLogger({ stderr })
  return Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(settings.level))
}
