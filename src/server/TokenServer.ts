/**
 * The central token server: the `TokenServerApi` implemented over the
 * `TokenEngine`, with client-key auth, JSON errors everywhere, a body-size
 * limit, request metrics, `/openapi.json` and `/docs`.
 *
 * @since 0.1.0
 */
import {
  HttpApiBuilder,
  HttpApiError,
  HttpApiScalar,
  type HttpApp,
  HttpIncomingMessage,
  HttpMiddleware,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { createServer } from "node:http"
import { Cause, Clock, Effect, Layer, Option, type Redacted } from "effect"
import { type AccessTokenError, type Credential, failureCause } from "../AccessToken.js"
import * as JsSdk from "../JsSdk.js"
import { usableUntil } from "../Token.js"
import { TokenEngine } from "../TokenEngine.js"
import { TokenStore } from "../TokenStore.js"
import * as ApiError from "./ApiError.js"
import * as ClientAuth from "./ClientAuth.js"
import * as Prometheus from "./Prometheus.js"
import type * as ServerConfig from "./ServerConfig.js"
import * as ServerMetrics from "./ServerMetrics.js"
import { NotReady, TokenServerApi } from "./TokenServerApi.js"

/**
 * @since 0.1.0
 */
export interface Options {
  /** The bearer keys business servers present (`CLIENT_KEYS`); a bare `Redacted` key may ask for every app. */
  readonly clientKeys: ReadonlyArray<ServerConfig.ClientKey | Redacted.Redacted<string>>
  /** Larger request bodies are refused with 413. Default 16 KiB: the largest legitimate body is a page URL. */
  readonly maxBodyBytes?: number
}

/**
 * @since 0.1.0
 */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024

const lifetime = (credential: Credential, now: number) => ({
  expires_in: Math.max(0, Math.floor((credential.expiresAt - now) / 1000)),
  expires_at: new Date(credential.expiresAt).toISOString()
})

const toApiError = (error: AccessTokenError): ApiError.NotFound | ApiError.TokenUnavailable =>
  error._tag === "UnknownApp"
    ? ClientAuth.unknownApp(error.appId)
    : new ApiError.TokenUnavailable(ApiError.detail(failureCause(error), error.message))

const TokensLive = HttpApiBuilder.group(TokenServerApi, "tokens", (handlers) =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    const accessToken = (credential: Effect.Effect<Credential, AccessTokenError>) =>
      Effect.flatMap(Effect.mapError(credential, toApiError), (token) =>
        Effect.map(Clock.currentTimeMillis, (now) => ({ access_token: token.value, ...lifetime(token, now) })))
    return handlers
      // The hot path: the engine answers from memory; nothing here reads the
      // store, logs, or runs the success schema (the body is already its
      // encoded form: two strings and a number), which `handleRaw` skips.
      .handleRaw("accessToken", ({ path }) =>
        Effect.map(accessToken(engine.get(path.appId)), (body) => HttpServerResponse.unsafeJson(body)))
      .handle("refreshAccessToken", ({ path, payload }) => accessToken(engine.refresh(path.appId, payload.stale_token)))
      .handle("jsapiTicket", ({ path }) =>
        Effect.flatMap(Effect.mapError(engine.get(path.appId, "jsapi_ticket"), toApiError), (ticket) =>
          Effect.map(Clock.currentTimeMillis, (now) => ({ ticket: ticket.value, ...lifetime(ticket, now) }))))
      .handle("jsSdkConfig", ({ path, payload }) =>
        JsSdk.config(path.appId, payload.url).pipe(
          Effect.provideService(TokenEngine, engine),
          Effect.mapError((error) =>
            error._tag === "InvalidPageUrl"
              ? new ApiError.BadRequest(ApiError.detail("invalid_page_url", error.message))
              : toApiError(error)
          )
        ))
  }))

const OpsLive = HttpApiBuilder.group(TokenServerApi, "ops", (handlers) =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    const store = yield* TokenStore
    const readiness = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const statuses = yield* engine.status
      const healthy = yield* store.healthy
      const credentials = statuses.map((status) => ({
        app_id: status.appId,
        kind: status.kind,
        valid: status.valid,
        ...(status.valid && Option.isSome(status.record)
          ? { expires_in: Math.max(0, Math.floor((usableUntil(status.record.value) - now) / 1000)) }
          : {}),
        ...(Option.isSome(status.lastError)
          ? { last_error: { code: failureCause(status.lastError.value), message: status.lastError.value.message } }
          : {})
      }))
      // Ready means every app can be served now. A store that is down does
      // not make the server unready: the engine serves from memory meanwhile.
      const ready = engine.apps.every((appId) =>
        statuses.some((status) => status.appId === appId && status.kind === "access_token" && status.valid)
      )
      return { ready, store: { healthy }, credentials }
    })
    return handlers
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle("readyz", () =>
        Effect.flatMap(readiness, (body) => body.ready ? Effect.succeed(body) : Effect.fail(new NotReady(body))))
      .handle("metrics", () => Effect.zipRight(ServerMetrics.observeCredentials(engine), Prometheus.scrape))
  }))

const STATUS = new Map<Function, number>([
  [ApiError.BadRequest, 400],
  [ApiError.Unauthorized, 401],
  [ApiError.NotFound, 404],
  [ApiError.PayloadTooLarge, 413],
  [ApiError.TokenUnavailable, 503],
  [NotReady, 503]
])

const decodeIssues = (error: HttpApiError.HttpApiDecodeError) =>
  error.issues
    .map((issue) => issue.path.length === 0 ? issue.message : `${issue.path.map(String).join(".")}: ${issue.message}`)
    .join("; ")

const hasTag = (value: unknown, tag: string): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === tag

/**
 * Renders every failure as `{"error":{"code","message"}}`: the declared API
 * errors with their status, and what the platform raises before a handler
 * runs (path/payload decoding, unreadable or oversized bodies, unknown
 * routes). Also sets the body-size limit the platform reads bodies under.
 *
 * @since 0.1.0
 */
export const errorBodies = (maxBodyBytes: number) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    // Refused before reading: a declared length over the limit.
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > maxBodyBytes) return Effect.succeed(tooLarge(maxBodyBytes))
    return app
  }).pipe(
    HttpIncomingMessage.withMaxBodySize(Option.some(maxBodyBytes)),
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error: unknown = failure.value
        const status = typeof error === "object" && error !== null ? STATUS.get(error.constructor) : undefined
        if (status !== undefined) return Effect.succeed(HttpServerResponse.unsafeJson(error, { status }))
        if (error instanceof HttpApiError.HttpApiDecodeError) {
          return Effect.succeed(ApiError.response(400, "invalid_request", decodeIssues(error)))
        }
        if (hasTag(error, "RouteNotFound")) {
          return Effect.succeed(ApiError.response(404, "not_found", "no such route; see /docs"))
        }
      }
      const defect = Cause.dieOption(cause)
      if (Option.isSome(defect) && hasTag(defect.value, "RequestError") && defect.value.reason === "Decode") {
        // The platform reads JSON bodies with `orDie`: an oversized or
        // malformed body arrives here as a defect.
        const inner = defect.value.cause
        return Effect.succeed(
          inner instanceof Error && inner.message === "maxBytes exceeded"
            ? tooLarge(maxBodyBytes)
            : ApiError.response(400, "malformed_json", "the request body is not valid JSON")
        )
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.logError("request failed unexpectedly", cause).pipe(
        Effect.as(ApiError.response(500, "internal_error", "the server failed to answer; see its log"))
      )
    })
  )

const tooLarge = (maxBodyBytes: number) =>
  ApiError.response(413, "payload_too_large", `the request body is over ${maxBodyBytes} bytes`)

// Counts after the response is decided, so every status is seen, 401s and 404s included.
const countRequests = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    app.pipe(
      Effect.tap((response) => ServerMetrics.countRequest(request.method, request.url, response.status)),
      Effect.tapErrorCause(() => ServerMetrics.countRequest(request.method, request.url, 500))
    ))

/**
 * The API with its handlers and auth: what `HttpApiBuilder.serve` needs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi = (options: Options) =>
  HttpApiBuilder.api(TokenServerApi).pipe(
    Layer.provide([TokensLive, OpsLive]),
    Layer.provide(ClientAuth.layer(options.clientKeys))
  )

/**
 * The server on whatever `HttpServer` is provided.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) =>
  HttpApiBuilder.serve(countRequests).pipe(
    Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(HttpApiBuilder.middleware(errorBodies(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES))),
    Layer.provide(layerApi(options)),
    // The server span of every request parses its URL and copies each header
    // into attributes: on the token route, answered thousands of times a
    // second, that costs more than the answer. Every other route keeps it.
    HttpMiddleware.withTracerDisabledWhen(isTokenRead)
  )

const isTokenRead = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.method === "GET" && ServerMetrics.routeOf(request.url) === "/v1/apps/{appId}/access-token"

// Bytes Node's HTTP parser rejects (a body without framing, oversized
// headers) never reach the app; Node would answer them with a bare text 400.
// The contract is a JSON error body for every refusal, so answer it here.
const createJsonServer = () =>
  createServer().on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || error.code === "ECONNRESET") return socket.destroy()
    const [status, reason, code] = error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "headers_too_large"]
      : [400, "Bad Request", "malformed_http"]
    const body = JSON.stringify(ApiError.detail(code, "the request is not well-formed HTTP/1.1"))
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
    )
  })

/**
 * The server on Node's `http` at `host:port` (`port` 0 picks a free port; read
 * it from `HttpServer.HttpServer`'s `address`, which this layer also provides).
 * Closing the layer stops accepting, lets in-flight requests finish, and
 * releases the port.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNode = (options: Options & { readonly host: string; readonly port: number }) =>
  layer(options).pipe(
    HttpServer.withLogAddress,
    Layer.provideMerge(NodeHttpServer.layer(createJsonServer, { host: options.host, port: options.port }))
  )
