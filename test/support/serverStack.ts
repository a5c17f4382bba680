/**
 * The whole system as users run it: the WeChat emulator on a loopback port,
 * the token server on another, the engine talking to the emulator over real
 * HTTP. Live clock: the suites using it exercise sockets, not simulated days.
 *
 * The one server-stack harness of the suite: the server tests reach it
 * through `test/server/harness.ts`, the reliability suites directly.
 */
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { Context, type Duration, Effect, Layer, Logger, Redacted, Schedule } from "effect"
import { request as httpRequest } from "node:http"
import * as Console from "../../src/server/console/Console.js"
import * as NodeServer from "../../src/server/NodeServer.js"
import type { ClientKey } from "../../src/server/ServerConfig.js"
import type * as StoreDocuments from "../../src/StoreDocuments.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import type { TokenMode } from "../../src/Token.js"
import * as TokenConfig from "../../src/TokenConfig.js"
import { TokenEngine } from "../../src/TokenEngine.js"
import * as TokenLayer from "../../src/TokenLayer.js"
import * as TokenStore from "../../src/TokenStore.js"
import { APP, KEY, OPS_KEY, OTHER, THIRD } from "./fixtures.js"

export { APP, KEY, OPS_KEY, OTHER, THIRD }
export const SECRET = "s3cr3t-app-secret-never-logged"

/** The emulator serving WeChat on loopback, and the counts the tests read. */
export interface Upstream {
  readonly url: string
  readonly emulator: Emulator.WeChatEmulatorShape
  /** Token endpoint calls (classic and stable) for `APP`. */
  readonly tokenFetches: Effect.Effect<number>
  readonly ticketFetches: Effect.Effect<number>
  /** While on, every upstream call answers WeChat's "system busy". */
  readonly setFaulted: (faulted: boolean) => Effect.Effect<void>
}

export interface UpstreamOptions {
  /** What WeChat knows; default: `APP` and `OTHER`, both with `SECRET`. */
  readonly registrations?: ReadonlyArray<Emulator.AppRegistration>
  readonly tokenLifetime?: Duration.DurationInput
  /** Injected before anything can call, so even the server's first fetch meets them. */
  readonly faults?: ReadonlyArray<Emulator.FaultRule>
}

export const serveUpstream = (options: UpstreamOptions = {}) =>
  Effect.gen(function*() {
    const { emulator, url } = yield* Emulator.serve({
      apps: options.registrations ?? [{ appId: APP, secret: SECRET }, { appId: OTHER, secret: SECRET }],
      ...(options.tokenLifetime === undefined ? {} : { tokenLifetime: options.tokenLifetime })
    })
    yield* Effect.forEach(options.faults ?? [], emulator.injectFault, { discard: true })
    const stats = emulator.appStats(APP)
    const upstream: Upstream = {
      url,
      emulator,
      tokenFetches: Effect.map(stats, (app) => app.classicCalls + app.stableCalls),
      ticketFetches: Effect.map(stats, (app) => app.ticketCalls),
      setFaulted: (faulted) => faulted ? emulator.injectFault({ fault: Emulator.Fault.Busy() }) : emulator.clearFaults
    }
    return upstream
  })

export interface ServerOptions {
  readonly upstream: Pick<Upstream, "url">
  /** The apps the server is configured with; default: `APP` only. */
  readonly apps?: ReadonlyArray<string>
  readonly mode?: TokenMode
  /** Default: `KEY`, for every app. */
  readonly clientKeys?: ReadonlyArray<ClientKey>
  readonly upstreamTimeout?: Duration.Duration
  readonly refreshMargin?: Duration.Duration
  readonly maxBodyBytes?: number
  readonly requestTimeout?: Duration.DurationInput
  /** The store and its documents; default: a memory store of its own, without documents. */
  readonly store?: Layer.Layer<TokenStore.TokenStore | StoreDocuments.StoreDocuments, TokenStore.StoreError>
  /** The operator console, when the test serves it. */
  readonly console?: NodeServer.Options["console"]
  /** What the server sees of the engine, e.g. with synthetic credentials added; default: the engine itself. */
  readonly engineView?: (engine: TokenEngine["Type"]) => TokenEngine["Type"]
  /**
   * Receives every log line of the engine and server (and of the emulator
   * with `startStack`); default: the caller's logger, so a test can capture
   * the logs by providing its own around the whole run.
   */
  readonly logger?: Logger.Logger<unknown, void>
}

// Fibers forked while the stack starts (refresh loops, request handlers) keep this logger.
const withLogger =
  (logger: Logger.Logger<unknown, void> | undefined) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    logger === undefined ? self : Effect.provide(self, Logger.replace(Logger.defaultLogger, logger))

export interface Server {
  /** `http://127.0.0.1:<port>` */
  readonly base: string
  readonly port: number
  readonly engine: TokenEngine["Type"]
}

/** The token server on a free loopback port, its engine fetching from `upstream`, a memory store. */
export const serveTokenServer = (options: ServerOptions) =>
  Effect.gen(function*() {
    // With its own store, the server is one replica of a group: its console's lease book watches it as `serve` does.
    const store = options.store === undefined
      ? TokenStore.layerMemory
      : StoreSpec.mapStore(options.store, Console.layerWatchLeases)
    const context = yield* Layer.build(
      NodeServer.layer({
        host: "127.0.0.1",
        port: 0,
        clientKeys: options.clientKeys ?? [{ key: Redacted.make(KEY) }],
        opsKeys: [Redacted.make(OPS_KEY)],
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
        ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
        ...(options.console === undefined ? {} : { console: options.console })
      }).pipe(
        Layer.provide(Console.layerLeaseBook),
        Layer.provide(
          options.engineView === undefined
            ? Layer.empty
            : Layer.effect(TokenEngine, Effect.map(TokenEngine, options.engineView))
        ),
        Layer.provideMerge(TokenLayer.layer({
          config: TokenConfig.layer({
            apps: (options.apps ?? [APP]).map((appId) => TokenConfig.app(appId, SECRET)),
            mode: options.mode ?? "classic",
            apiBaseUrl: options.upstream.url,
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
    const server: Server = {
      base: `http://127.0.0.1:${address.port}`,
      port: address.port,
      engine: Context.get(context, TokenEngine)
    }
    return server
  }).pipe(withLogger(options.logger))

export interface StackOptions
  extends Omit<ServerOptions, "upstream" | "logger">, Omit<UpstreamOptions, "registrations">
{
  /** What WeChat knows; default: every app of `apps` with `SECRET`. */
  readonly registrations?: ReadonlyArray<Emulator.AppRegistration>
  /** Default: none, so the reliability suites' faulty runs keep the test output quiet. */
  readonly logger?: Logger.Logger<unknown, void>
}

/** Emulator and server together, as the reliability suites start them. */
export const startStack = (options: StackOptions = {}) =>
  Effect.gen(function*() {
    const { faults, logger: _logger, registrations, tokenLifetime, ...server } = options
    const upstream = yield* serveUpstream({
      registrations: registrations ?? (options.apps ?? [APP]).map((appId) => ({ appId, secret: SECRET })),
      ...(tokenLifetime === undefined ? {} : { tokenLifetime }),
      ...(faults === undefined ? {} : { faults })
    })
    const started = yield* serveTokenServer({ ...server, upstream })
    return { ...started, emulator: upstream.emulator }
  }).pipe(withLogger(options.logger ?? Logger.none))

export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly text: string
}

/**
 * One request with exactly the method, raw path, headers and body given:
 * `fetch` would normalise the path and refuse some headers, which is what
 * some tests must not let it do.
 */
export const send = (
  port: number,
  init: {
    readonly method?: string
    readonly path: string
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string | Uint8Array
    /** The loopback address the request comes from (any of 127.0.0.0/8); default: the system's choice. */
    readonly localAddress?: string
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
        agent: false,
        ...(init.localAddress === undefined ? {} : { localAddress: init.localAddress })
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

/** A request through `fetch`, its body parsed as JSON when it is JSON. */
export const call = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, init)
    const text = await response.text()
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the body of any route, asserted field by field in the tests
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: response.status, text, json, headers: response.headers }
  })

// The engine fetches every app's token at start-up: tests that count the
// fetches their requests cause wait for that first.
export const awaitReady = (base: string): Effect.Effect<void> =>
  call(`${base}/readyz`).pipe(
    Effect.filterOrFail((answer) => answer.status === 200),
    Effect.retry({ times: 200, schedule: Schedule.spaced("25 millis") }),
    Effect.orDie,
    Effect.asVoid
  )

export const auth = (key: string = KEY) => ({ authorization: `Bearer ${key}` })

/** What a monitoring system sends for `/readyz` and `/metrics` in detail. */
export const opsAuth = () => auth(OPS_KEY)

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
