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
export const layer = (settings: LogSettings, isTTY: boolean = process.stdout.isTTY === true): Layer.Layer<never> =>
  Layer.merge(
    (settings.format ?? (isTTY ? "pretty" : "json")) === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(settings.level)
  )
