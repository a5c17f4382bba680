/**
 * The token server on Node: the one module that owns the listener. A request
 * meets, in this order, the fast path (the hot token read answered in Node
 * itself, see `FastPath`), the proxy routes (when a `Proxy` is provided:
 * they stream through Node), and the runtime-agnostic app of
 * `TokenServer.layer`; with a `Gateway` provided, WeChat's own paths (every
 * path that is not a route) go to the gateway, between the proxy and the
 * app. Node's own mechanics live here too: refusals of Node's HTTP parser as
 * JSON, the header deadline, bodies read off the socket without losing the
 * connection a 413 must go out on, the linger after a refusal, answers of
 * clients that left, and the bounded drain at shutdown.
 *
 * @since 0.3.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Duration, Effect, Layer, Option, Runtime, type Scope } from "effect"
import { createServer, type Server } from "node:http"
import * as ApiError from "../api/ApiError.js"
import { TokenEngine } from "../TokenEngine.js"
import * as ClientAuth from "./ClientAuth.js"
import * as FastPath from "./FastPath.js"
import * as Gateway from "./gateway/Gateway.js"
import * as Drain from "./internal/drain.js"
import { Edge, type EdgeShape } from "./internal/edge.js"
import * as NodeRequest from "./internal/nodeRequest.js"
import * as Proxy from "./Proxy.js"
import * as ServerConfig from "./ServerConfig.js"
import * as ServerMetrics from "./ServerMetrics.js"
import * as TokenServer from "./TokenServer.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options extends TokenServer.Options {
  readonly host: string
  /** 0 picks a free port; read it from `HttpServer.HttpServer`'s `address`, which the layer also provides. */
  readonly port: number
  /** Default: `SHUTDOWN_DRAIN_SECONDS`. */
  readonly shutdownDrain?: Duration.DurationInput
  /**
   * Answer `GET /v1/apps/{appId}/access-token` in Node directly when the
   * engine holds the token (see `FastPath`). Default `true`; the answers are
   * the same either way, only cheaper.
   */
  readonly fastPath?: boolean
}

// What Node's HTTP parser refuses never reaches the app: bytes that are not
// HTTP, oversized headers, headers that do not arrive within the request
// timeout. Node would answer with a bare text body; the contract is a JSON
// error body for every refusal, so it is answered (and counted) here.
const REFUSALS: Record<string, readonly [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    "the request headers are too large"
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "Request Timeout", "request_timeout", "the request headers did not arrive in time"]
}
const MALFORMED = [400, "Bad Request", "malformed_http", "the request is not well-formed HTTP/1.1"] as const

// Node enforces the header deadline itself (a socket-level timer it owns);
// the body deadline is `RequestLimits`', on Effect's clock. Node's whole-request
// deadline only backs that up, so it comes later than headers plus body.
const createJsonServer = (requestTimeout: Duration.Duration, fastPath: FastPath.Answer | undefined) => () => {
  const millis = Math.max(1, Math.round(Duration.toMillis(requestTimeout)))
  const server = createServer({
    headersTimeout: millis,
    requestTimeout: 2 * millis + 5_000,
    // How often Node looks for expired headers: often enough that the bound holds within a quarter of it.
    connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.round(millis / 4)))
  })
  // An idle keep-alive connection is closed after 5 s (Node's default, stated).
  server.keepAliveTimeout = 5_000
  if (fastPath !== undefined) FastPath.install(server, fastPath)
  return server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || error.code === "ECONNRESET") return socket.destroy()
    const [status, reason, code, message] = REFUSALS[error.code ?? ""] ?? MALFORMED
    // Outside any fiber: the counter is updated synchronously, as Node calls.
    ServerMetrics.unsafeCountRequest("OTHER", "", status)
    const body = JSON.stringify(ApiError.detail(code, message))
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${
        Buffer.byteLength(body)
      }\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`
    )
  })
}

// The platform's Node server, with its connections tracked from the start so
// that closing it (the first of its finalizers) drains them within the bound.
const listen = (
  create: () => Server,
  address: { readonly host: string; readonly port: number },
  drain: Duration.Duration
) =>
  Effect.gen(function*() {
    const server = yield* Effect.sync(create)
    const connections = Drain.track(server)
    const listening = yield* NodeHttpServer.make(() => server, address)
    yield* Effect.addFinalizer(() => Drain.drain(connections, drain))
    return listening
  })

// What the app gets from Node: every answer ended once its client has gone
// (the platform would otherwise wait forever to hear it was sent), bodies
// read off the socket, and the proxy routes ahead of the body read.
const edge = (
  auth: ClientAuth.Check,
  requestTimeout: Duration.Duration,
  proxy: Option.Option<Proxy.ProxyShape>,
  gatewayed: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R | Scope.Scope>
) => {
  const proxied = Option.match(proxy, {
    onNone: () => <E, R>(app: HttpApp.Default<E, R>) => app,
    onSome: (proxy) => Proxy.serve({ proxy, auth, requestTimeout })
  })
  const shape: EdgeShape = {
    body: NodeRequest.bodyReader,
    front: (app) => {
      const routed = proxied(gatewayed(app))
      return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        NodeRequest.endWhenClientGoes(request)
        return routed
      })
    }
  }
  return Layer.succeed(Edge, shape)
}

/**
 * The server on Node's `http` at `host:port`. Without `requestTimeout` it
 * reads `REQUEST_TIMEOUT_SECONDS`, without `shutdownDrain`
 * `SHUTDOWN_DRAIN_SECONDS`. The proxy routes are served when a `Proxy` is
 * provided. Closing the layer stops accepting, closes at once every
 * connection that carries no request (idle, silent, or with a request head
 * not all there), lets requests in flight finish for up to `shutdownDrain`
 * (a body that stops arriving is cut; each answer closes its connection),
 * then cuts what is left and releases the port.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const requestTimeout = options.requestTimeout === undefined
      ? yield* ServerConfig.requestTimeout
      : Duration.decode(options.requestTimeout)
    const shutdownDrain = options.shutdownDrain === undefined
      ? yield* ServerConfig.shutdownDrain
      : Duration.decode(options.shutdownDrain)
    // One check, one cache of verified keys per connection, for the fast path and the proxy.
    const auth = ClientAuth.check(
      options.clientKeys,
      Option.getOrUndefined(yield* Effect.serviceOption(ClientAuth.RegistryKeys))
    )
    const runtime = yield* Effect.runtime<never>()
    const fastPath = options.fastPath === false ? undefined : FastPath.make({
      engine: yield* TokenEngine,
      clock: yield* Effect.clock,
      auth,
      // Through the server's logger (its format and level), from outside any fiber.
      log: (message) => Runtime.runSync(runtime, Effect.logError(message))
    })
    const proxy = yield* Effect.serviceOption(Proxy.Proxy)
    // WeChat's own paths, when a `Gateway` is provided: every path that is not
    // one of the server's routes, behind the proxy routes.
    const gatewayed = Option.match(yield* Effect.serviceOption(Gateway.Gateway), {
      onNone: () => <E, R>(app: HttpApp.Default<E, R>) => app,
      onSome: (gateway) => Gateway.serve({ gateway, auth, clientKeys: options.clientKeys, requestTimeout })
    })
    return TokenServer.layer({ ...options, requestTimeout }).pipe(
      Layer.provide(edge(auth, requestTimeout, proxy, gatewayed)),
      HttpServer.withLogAddress,
      Layer.provideMerge(Layer.merge(
        Layer.scoped(
          HttpServer.HttpServer,
          listen(createJsonServer(requestTimeout, fastPath), { host: options.host, port: options.port }, shutdownDrain)
        ),
        NodeHttpServer.layerContext
      ))
    )
  }))
