/**
 * The server suites' names for the shared stack in `test/support/serverStack.ts`:
 * an upstream started on its own (so a test can fault it before the server
 * starts) and a server known by its base URL.
 */
import type { HttpServerError } from "@effect/platform"
import { type Duration, Effect, type Scope } from "effect"
import type { TokenMode } from "../../src/Token.js"
import { serveTokenServer, serveUpstream, type Upstream } from "../support/serverStack.js"

export {
  APP,
  auth,
  awaitReady,
  call,
  KEY,
  OPS_KEY,
  opsAuth,
  OTHER,
  SECRET,
  type Upstream
} from "../support/serverStack.js"

/** The emulator with `APP` and `OTHER` registered. */
export const startUpstream: Effect.Effect<Upstream, HttpServerError.ServeError, Scope.Scope> = serveUpstream()

/** The token server with `KEY` as its one client key; its base URL. */
export const startServer = (options: {
  readonly upstream: Upstream
  readonly mode?: TokenMode
  readonly apps?: ReadonlyArray<string>
  readonly maxBodyBytes?: number
  readonly requestTimeout?: Duration.DurationInput
}) => Effect.map(serveTokenServer(options), (server) => server.base)
