/**
 * The hot route answered by Node directly: `GET /v1/apps/{appId}/access-token`
 * with a valid key for an app whose token the engine holds, which is nearly
 * every request a token server sees. Everything else goes to the Effect app.
 *
 * Why: Effect's HTTP stack costs about five times what a bare `node:http`
 * answer costs per request (a fiber, the request and response models, the
 * router, the API's decoding and middleware), and no trimming of this
 * server's own middleware gets under that floor (BENCHMARKS.md). The hot
 * answer itself needs none of it: one header check, one memory read, one
 * `JSON.stringify`.
 *
 * How the answers stay identical to the Effect app's, for every input:
 *
 * - The fast path answers only when it is sure of the whole answer, and that
 *   answer is `200` with the token: method `GET` or `HEAD`, a path spelled
 *   exactly `/v1/apps/wx<16 lowercase hex>/access-token` (the `AppId` schema's
 *   own pattern, so the Effect app would decode it unchanged; no trailing
 *   slash, no `//`, no percent-encoding), any query (no route reads one), no
 *   request body (the Effect app would read it under `RequestLimits` first),
 *   a key that passes `ClientAuth.check` (the very check the middleware runs)
 *   and may ask for the app, and a token the engine would hand out from
 *   memory right now (`TokenEngine.peek`, at the server's `Clock`).
 * - In every other case it answers nothing and the request goes on to the
 *   Effect app untouched: 401, 404, 405, 503, a cold start, an expired
 *   token, a fetch to wait for, odd spellings. The Effect app is the only
 *   author of those answers, so they cannot differ.
 * - The `200` it writes is built by the same function as the Effect
 *   handler's (`accessTokenBody`), with the same headers in the same order;
 *   Node adds `Date`, `Connection` and `Keep-Alive` to both alike. `HEAD`
 *   gets the same headers and no body, as Node sends a `HEAD` answer.
 * - It counts each answer in the one request counter the app counts in
 *   (`ServerMetrics`), so `/metrics` cannot tell the paths apart. The in-flight gauge needs
 *   nothing: an answer written synchronously is in flight for no scrape.
 * - It answers only while the Effect app is listening: once the server is
 *   stopping and the app has left, requests meet what they would without it.
 *
 * `test/server/FastPath.test.ts` runs both paths side by side over loopback
 * on every input above and compares status, headers and body.
 *
 * @since 0.3.0
 */
import type { Clock } from "effect"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import type { Credential } from "../AccessToken.js"
import { Unauthorized } from "../api/ApiError.js"
import { PATTERN } from "../AppId.js"
import { accessTokenBody, secondsLeft } from "../internal/credentialAnswer.js"
import type { TokenEngineShape } from "../TokenEngine.js"
import type * as ClientAuth from "./ClientAuth.js"
import * as Routes from "./Routes.js"
import * as ServerMetrics from "./ServerMetrics.js"

/**
 * @since 0.3.0
 * @category utils
 */
export {
  /**
   * The body of `GET /v1/apps/{appId}/access-token`, written by both the
   * Effect handler and the fast path.
   *
   * @since 0.3.0
   */
  accessTokenBody,
  /**
   * `expires_in` (whole seconds left, never negative) and `expires_at` (ISO
   * 8601) of a credential at `now`: the lifetime part of every answer that
   * carries a token or ticket.
   *
   * @since 0.3.0
   */
  lifetime
} from "../internal/credentialAnswer.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly engine: TokenEngineShape
  /** The server's `Clock`: the one the Effect handlers read. */
  readonly clock: Clock.Clock
  readonly auth: ClientAuth.Check
  /**
   * Where the last-resort guard reports a throw of the fast path (the
   * request then goes to the Effect app): each distinct message once, at
   * most `FAILURE_REPORTS` a minute. Default: a line on stderr.
   *
   * @since 0.3.0
   */
  readonly log?: (message: string) => void
}

/**
 * The most fast-path failures reported in one minute of the server's
 * `Clock`: a failure that recurs on every request must not flood the log
 * (nor, at tens of thousands of requests a second, hold the event loop).
 *
 * @since 0.3.0
 * @category utils
 */
export const FAILURE_REPORTS = 10

/**
 * Answers a request when it is the hot route in the case described above
 * and returns `true`; otherwise touches nothing and returns `false`.
 *
 * @since 0.3.0
 * @category models
 */
export type Answer = (request: IncomingMessage, response: ServerResponse) => boolean

// The route as the route table matches it (a query or the end after it),
// with an app id the `AppId` schema takes unchanged. Anything else is not
// this route spelled canonically.
const ROUTE = Routes.server.get(Routes.ACCESS_TOKEN).regex

// An answer changes only when its `expires_in` does (once a second) or the
// credential does: rendered once for each, not per request.
interface Rendered {
  readonly expiresIn: number
  readonly body: string
  readonly headers: ReadonlyArray<string>
}

/**
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options): Answer => {
  const answer = unguarded(options)
  const report = reporter(options.clock, options.log ?? toStderr)
  // The fast path runs outside any fiber: a throw here would reach Node's
  // `uncaughtException` and end the process. Last resort: report it and let
  // the Effect app answer the request (or drop it, if the answer had
  // already begun), and keep serving.
  return (request, response) => {
    try {
      return answer(request, response)
    } catch (error) {
      report(error)
      if (!response.headersSent) return false
      response.destroy()
      return true
    }
  }
}

const toStderr = (message: string): void => {
  process.stderr.write(`${message}\n`)
}

// The first line of a failure, short: a thrown value can be anything, a
// stack trace or a whole request body.
const MAX_REPORTED_CHARS = 200
const describe = (error: unknown): string => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  const line = text.split("\n", 1)[0]!
  return line.length > MAX_REPORTED_CHARS ? `${line.slice(0, MAX_REPORTED_CHARS)}… (truncated)` : line
}

// Remembered messages, oldest forgotten first: a bug throwing a new message
// on each request must not grow the server's memory either.
const MAX_REMEMBERED = 1_000
const MINUTE = 60_000

const reporter = (clock: Clock.Clock, log: (message: string) => void) => {
  const reported = new Set<string>()
  let windowStart = Number.NEGATIVE_INFINITY
  let inWindow = 0
  let suppressed = 0
  return (error: unknown): void => {
    const message = describe(error)
    if (reported.has(message)) return
    const now = clock.unsafeCurrentTimeMillis()
    if (now - windowStart >= MINUTE) {
      windowStart = now
      inWindow = 0
    }
    // Over the budget the message is not remembered: it is reported in a later minute.
    if (inWindow >= FAILURE_REPORTS) {
      suppressed += 1
      return
    }
    inWindow += 1
    reported.add(message)
    if (reported.size > MAX_REMEMBERED) reported.delete(reported.values().next().value!)
    const skipped = suppressed === 0 ? "" : ` (${suppressed} failure(s) not reported before it: over the rate limit)`
    suppressed = 0
    log(`fast path failed, answered by the app instead: ${message}${skipped}`)
  }
}

const unguarded = (options: Options): Answer => {
  const { auth, clock, engine } = options
  const rendered = new WeakMap<Credential, Rendered>()
  const render = (credential: Credential, now: number): Rendered => {
    const known = rendered.get(credential)
    const seconds = secondsLeft(credential, now)
    if (known !== undefined && known.expiresIn === seconds) return known
    const body = JSON.stringify(accessTokenBody(credential, now))
    const fresh: Rendered = {
      expiresIn: seconds,
      body,
      // The Effect app's headers, in its order (`HttpServerResponse.unsafeJson`
      // with `Cache-Control: no-store`).
      headers: [
        "cache-control",
        "no-store",
        "content-type",
        "application/json",
        "content-length",
        String(Buffer.byteLength(body))
      ]
    }
    rendered.set(credential, fresh)
    return fresh
  }
  return (request, response) => {
    const method = request.method
    if (method !== "GET" && method !== "HEAD") return false
    const url = request.url ?? ""
    const route = ROUTE.exec(url)
    if (route === null) return false
    // A body is read (and limited) by the Effect app before any route runs.
    const headers = request.headers
    if (headers["transfer-encoding"] !== undefined) return false
    if (headers["content-length"] !== undefined && headers["content-length"] !== "0") return false
    const appId = route[1]!
    if (!PATTERN.test(appId)) return false
    const key = auth.keyOn(request.socket, headers.authorization)
    if (key instanceof Unauthorized || !auth.allows(key, appId)) return false
    const now = clock.unsafeCurrentTimeMillis()
    const credential = engine.peek(appId, now)
    if (credential === undefined) return false
    const answer = render(credential, now)
    // Headers as a flat list: Node writes them as given, in this order.
    response.writeHead(200, answer.headers as Array<string>)
    // Node writes no body for HEAD, here as for the Effect app.
    response.end(answer.body)
    ServerMetrics.unsafeCountTokenRead(method)
    return true
  }
}

/**
 * Puts `answer` in front of whatever answers `server`'s requests: a request
 * it answers reaches no `request` listener; any other reaches them as before.
 * With no listener left (the app has stopped), it answers nothing either.
 *
 * @since 0.3.0
 * @category utils
 */
export const install = (server: Server, answer: Answer): Server => {
  // `emit` is the one place Node hands a parsed request to the listeners;
  // wrapping it keeps the platform's own listener where the platform put it.
  // Its overloads cannot be implemented one by one: the casts see it as the
  // plain `EventEmitter` method it is.
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: Array<unknown>) => boolean
  server.emit =
    ((event: string | symbol, ...args: Array<unknown>): boolean =>
      (event === "request" && server.listenerCount("request") > 0 &&
        answer(args[0] as IncomingMessage, args[1] as ServerResponse)) ||
      emit(event, ...args)) as Server["emit"]
  return server
}
