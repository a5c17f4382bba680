/**
 * The whole system as users run it: the WeChat emulator on a loopback port,
 * the token server on another, the engine talking to the emulator over real
 * HTTP. Live clock: these suites exercise sockets, not simulated days.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Context, type Duration, Effect, Layer, Logger, Redacted, Schedule } from "effect"
import { request as httpRequest } from "node:http"
import type { ClientKey } from "../../../src/server/ServerConfig.js"
import * as TokenServer from "../../../src/server/TokenServer.js"
import * as Emulator from "../../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../../src/Token.js"
import * as TokenConfig from "../../../src/TokenConfig.js"
import { TokenEngine } from "../../../src/TokenEngine.js"
import * as TokenLayer from "../../../src/TokenLayer.js"
import * as TokenStore from "../../../src/TokenStore.js"

export const APP = "wx0123456789abcdef"
export const OTHER = "wxfedcba9876543210"
export const THIRD = "wx00112233445566ff"
export const SECRET = "reliability-app-secret-7f3a9c"
export const KEY = "reliability-client-key-0a1b2c3d"

export interface StackOptions {
  readonly apps?: ReadonlyArray<string>
  readonly mode?: TokenMode
  readonly clientKeys?: ReadonlyArray<ClientKey>
  readonly tokenLifetime?: Duration.DurationInput
  readonly upstreamTimeout?: Duration.Duration
  readonly refreshMargin?: Duration.Duration
  readonly maxBodyBytes?: number
  /** What WeChat knows; default: every app with `SECRET`. */
  readonly registrations?: ReadonlyArray<Emulator.AppRegistration>
  /** Injected before the server starts, so even its first fetch meets them. */
  readonly faults?: ReadonlyArray<Emulator.FaultRule>
  /** Receives every log line of the emulator, engine and server; default: none (quiet test output). */
  readonly logger?: Logger.Logger<unknown, void>
}

export const startStack = (options: StackOptions = {}) =>
  Effect.gen(function*() {
    const apps = options.apps ?? [APP]
    const upstream = yield* Emulator.serve({
      apps: options.registrations ?? apps.map((appId) => ({ appId, secret: SECRET })),
      ...(options.tokenLifetime === undefined ? {} : { tokenLifetime: options.tokenLifetime })
    })
    yield* Effect.forEach(options.faults ?? [], upstream.emulator.injectFault, { discard: true })
    const store = TokenStore.layerMemory
    const context = yield* Layer.build(
      TokenServer.layerNode({
        host: "127.0.0.1",
        port: 0,
        clientKeys: options.clientKeys ?? [{ key: Redacted.make(KEY) }],
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes })
      }).pipe(
        Layer.provideMerge(TokenLayer.make({
          config: TokenConfig.layerWith({
            apps: apps.map((appId) => TokenConfig.app(appId, SECRET)),
            mode: options.mode ?? "classic",
            apiBaseUrl: upstream.url,
            ...(options.upstreamTimeout === undefined ? {} : { upstreamTimeout: options.upstreamTimeout }),
            ...(options.refreshMargin === undefined ? {} : { refreshMargin: options.refreshMargin })
          }),
          store,
          httpClient: FetchHttpClient.layer
        })),
        Layer.provide(store)
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return {
      base: `http://127.0.0.1:${address.port}`,
      port: address.port,
      emulator: upstream.emulator,
      engine: Context.get(context, TokenEngine)
    }
  }).pipe(
    // Fibers forked while the stack starts (refresh loops, request handlers) keep this logger.
    Effect.provide(Logger.replace(Logger.defaultLogger, options.logger ?? Logger.none))
  )

// The engine fetches every app's token at start-up: suites that count the
// fetches their requests cause wait for that first.
export const awaitReady = (port: number) =>
  send(port, { path: "/readyz" }).pipe(
    Effect.filterOrFail((answer) => answer.status === 200),
    Effect.retry({ times: 200, schedule: Schedule.spaced("25 millis") }),
    Effect.orDie,
    Effect.asVoid
  )

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly text: string
}

/**
 * One request with exactly the method, raw path, headers and body given:
 * `fetch` would normalise the path and refuse some headers, which is what
 * these suites must not let it do.
 */
export const send = (
  port: number,
  init: {
    readonly method?: string
    readonly path: string
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string | Uint8Array
  }
): Effect.Effect<Answer> =>
  Effect.async<Answer>((resume) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method: init.method ?? "GET",
        path: init.path,
        // Node frames a GET body with neither length nor chunking; the length keeps every request well-formed HTTP.
        headers: init.body === undefined
          ? init.headers ?? {}
          : { ...init.headers, "content-length": String(Buffer.byteLength(init.body)) },
        agent: false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resume(
            Effect.succeed({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString("utf8")
            })
          ))
        res.on("error", (error) => resume(Effect.die(error)))
      }
    )
    req.on("error", (error) => resume(Effect.die(error)))
    req.end(init.body)
    return Effect.sync(() => req.destroy())
  })

export const bearer = (key: string = KEY) => ({ authorization: `Bearer ${key}` })

/** The JSON error body every refusal must have, or undefined when the text is not one. */
export const errorCode = (text: string): string | undefined => {
  try {
    const body: unknown = JSON.parse(text)
    if (typeof body !== "object" || body === null || !("error" in body)) return undefined
    const error: unknown = body.error
    return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
      ? error.code
      : undefined
  } catch {
    return undefined
  }
}
