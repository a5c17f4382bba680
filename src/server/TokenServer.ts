/**
 * The central token server: the `TokenServerApi` implemented over the
 * `TokenEngine`, with client-key auth, JSON errors everywhere, request
 * limits (body size, timeouts, JSON depth), HTTP's conventions (`405` with
 * `Allow`, `WWW-Authenticate`, `Cache-Control`, one spelling per path),
 * request metrics, `/openapi.json` and `/docs`.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiError from "@effect/platform/HttpApiError"
import type * as HttpApiScalar from "@effect/platform/HttpApiScalar"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Duration, Effect, Exit, Layer, Option, type Redacted } from "effect"
import { failureCause } from "../AccessToken.js"
import * as AdminApi from "../api/AdminApi.js"
import * as ApiError from "../api/ApiError.js"
import { NotReady, TokenServerApi } from "../api/TokenServerApi.js"
import { NO_STORE } from "../internal/credentialAnswer.js"
import { usableUntil } from "../Token.js"
import { type CredentialStatus, TokenEngine } from "../TokenEngine.js"
import { TokenStore } from "../TokenStore.js"
import * as AdminRoutes from "./admin/AdminRoutes.js"
import * as ClientAuth from "./ClientAuth.js"
import * as Console from "./console/Console.js"
import * as Families from "./Families.js"
import * as CompressedPage from "./internal/compressedPage.js"
import { Edge } from "./internal/edge.js"
import * as Prometheus from "./Prometheus.js"
import * as RequestLimits from "./RequestLimits.js"
import * as Routes from "./Routes.js"
import * as ServerConfig from "./ServerConfig.js"
import * as ServerMetrics from "./ServerMetrics.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The bearer keys business servers present (`CLIENT_KEYS`); a bare `Redacted` key may ask for every app. */
  readonly clientKeys: ReadonlyArray<ServerConfig.ClientKey | Redacted.Redacted<string>>
  /**
   * The bearer keys that may read `/readyz` and `/metrics` in detail
   * (`OPS_KEYS`): each credential, series per app. Without one of them a
   * caller gets the verdict and totals per kind only; any other key, a
   * client key included, gets 401. Default: none.
   *
   * @since 0.3.0
   */
  readonly opsKeys?: ReadonlyArray<Redacted.Redacted<string>>
  /** Larger request bodies are refused with 413. Default 16 KiB: the largest legitimate body is a page URL. */
  readonly maxBodyBytes?: number
  /**
   * Headers must arrive within this long, then the body within as long
   * again, else 408. Default: `REQUEST_TIMEOUT_SECONDS` (30 s) for
   * `NodeServer.layer`, 30 s for `layer`.
   */
  readonly requestTimeout?: Duration.DurationInput
  /**
   * The operator console at `/console`, for the keys it names; not served without.
   *
   * @since 0.3.0
   */
  readonly console?: Console.Options
}

/**
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_BODY_BYTES = RequestLimits.DEFAULT_MAX_BODY_BYTES

// Up to this many credentials `/readyz` lists each; beyond, it counts them
// per kind and lists some of the invalid ones.
const MAX_LISTED = 1_000
const MAX_LISTED_INVALID = 100

const opsLive = (opsKeys: ReadonlyArray<Redacted.Redacted<string>>) =>
  HttpApiBuilder.group(TokenServerApi, "ops", (handlers) =>
    Effect.gen(function*() {
      const engine = yield* TokenEngine
      const store = yield* TokenStore
      const callerOf = ClientAuth.opsCheck(opsKeys)
      // Which apps the server holds is no business of whoever reaches the
      // port (a business server's key opens its own apps, never this list).
      const operator = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const caller = callerOf(request.headers.authorization)
        return caller instanceof ApiError.Unauthorized ? Effect.fail(caller) : Effect.succeed(caller === "operator")
      })
      const readiness = (detailed: boolean) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const healthy = yield* store.healthy
          const writeFailure = yield* ServerMetrics.writeFailureOf(store)
          const storeHealth = detailed && Option.isSome(writeFailure)
            ? { healthy, error: writeFailure.value }
            : { healthy }
          const entry = (status: CredentialStatus) => ({
            app_id: status.appId,
            kind: status.kind,
            valid: status.valid,
            ...(status.valid && Option.isSome(status.record)
              ? { expires_in: Math.max(0, Math.floor((usableUntil(status.record.value) - now) / 1000)) }
              : {}),
            ...(Option.isSome(status.lastError)
              ? { last_error: { code: failureCause(status.lastError.value), message: status.lastError.value.message } }
              : {})
          })
          // Counted, not listed, beyond `MAX_LISTED`: a million credentials are
          // one pass over the engine's columns, with enough of the invalid ones
          // listed to act on. Ready: `ServerMetrics.isReady`.
          const counted = yield* engine.countStatuses(detailed ? MAX_LISTED_INVALID : 0)
          let total = counted.retired
          const summary = new Map<string, { kind: string; total: number; valid: number }>()
          for (const { invalid, kind, valid } of counted.counts) {
            total += valid + invalid
            const counts = summary.get(kind) ?? { kind, total: 0, valid: 0 }
            counts.total += valid + invalid
            counts.valid += valid
            summary.set(kind, counts)
          }
          const ready = ServerMetrics.isReady(engine, now, writeFailure)
          const summaries = Array.from(summary.values())
          if (!detailed) return { ready, store: storeHealth, summary: summaries }
          if (total <= MAX_LISTED) {
            const listed: Array<CredentialStatus> = []
            yield* engine.eachStatus((status) => listed.push({ ...status }))
            return { ready, store: storeHealth, credentials: listed.map(entry) }
          }
          return { ready, store: storeHealth, credentials: counted.invalid.map(entry), summary: summaries }
        })
      return handlers
        .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
        .handle("readyz", () =>
          operator.pipe(
            Effect.flatMap(readiness),
            Effect.flatMap((body) => body.ready ? Effect.succeed(body) : Effect.fail(new NotReady(body)))
          ))
        .handle("metrics", () =>
          Effect.flatMap(operator, (detailed) =>
            Effect.zipRight(
              Effect.all([
                ServerMetrics.observeCredentials(engine),
                ServerMetrics.observeReadiness(engine, store),
                ServerMetrics.observeRequests
              ]),
              detailed ? Prometheus.scrape : Prometheus.scrapeTotals
            )))
    }))

// Documented series are in the registry from start-up.
const MetricsLive = Layer.effectDiscard(
  Effect.flatMap(TokenEngine, (engine) => ServerMetrics.initialize(engine.servable))
)

// The status of each error class is read from its schema's annotation, the
// same one the OpenAPI document shows: one place says 401 or 503.
const STATUS = new Map<unknown, number>(
  [
    ApiError.BadRequest,
    ApiError.Unauthorized,
    ApiError.NotFound,
    ApiError.PayloadTooLarge,
    ApiError.TokenUnavailable,
    NotReady,
    AdminApi.SecretRejected,
    AdminApi.ReadOnly
  ]
    .map((schema) => [schema, HttpApiSchema.getStatusErrorAST(schema.ast)])
)

// Each issue's message comes from the schema's own `message` annotations
// (the field's rule, no value echoed); the cap is for whatever else the
// platform may say.
const MAX_ISSUE_CHARS = 160
const MAX_ISSUES = 4

const decodeIssues = (error: HttpApiError.HttpApiDecodeError) =>
  error.issues.slice(0, MAX_ISSUES)
    .map((issue) => {
      const text = issue.path.length === 0 ? issue.message : `${issue.path.map(String).join(".")}: ${issue.message}`
      return text.length > MAX_ISSUE_CHARS ? `${text.slice(0, MAX_ISSUE_CHARS)}…` : text
    })
    .join("; ")

const hasTag = (value: unknown, tag: string): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && "_tag" in value && value._tag === tag

// The path exists for other methods: 405 naming them. Otherwise 404, also
// for a path of the right shape the router still refused (a parameter over
// its 100-character limit).
const routeNotFound = (request: HttpServerRequest.HttpServerRequest): HttpServerResponse.HttpServerResponse => {
  const route = Routes.match(Routes.pathOf(request.url))
  if (route === undefined || route.methods.includes(request.method)) {
    return ApiError.response(404, "not_found", "no such route; see /docs")
  }
  const allow = route.methods.join(", ")
  return HttpServerResponse.setHeader(
    ApiError.response(405, "method_not_allowed", `${route.pattern} answers ${allow}, not ${request.method}`),
    "allow",
    allow
  )
}

/**
 * Renders every failure as `{"error":{"code","message"}}`: the declared API
 * errors with their status, and what the platform raises before a handler
 * runs (path/payload decoding, unreadable bodies, unknown routes and
 * methods). A `401` says which scheme to use (`WWW-Authenticate: Bearer`).
 *
 * @since 0.1.0
 * @category utils
 */
export const errorBodies = (app: HttpApp.Default): HttpApp.Default =>
  Effect.catchAllCause(app, (cause) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error: unknown = failure.value
        const status = typeof error === "object" && error !== null ? STATUS.get(error.constructor) : undefined
        if (status === 401) {
          return Effect.succeed(
            HttpServerResponse.unsafeJson(error, { status, headers: { "www-authenticate": "Bearer" } })
          )
        }
        if (status !== undefined) return Effect.succeed(HttpServerResponse.unsafeJson(error, { status }))
        if (error instanceof HttpApiError.HttpApiDecodeError) {
          return Effect.succeed(ApiError.response(400, "invalid_request", decodeIssues(error)))
        }
        if (hasTag(error, "RouteNotFound")) return Effect.succeed(routeNotFound(request))
      }
      const defect = Cause.dieOption(cause)
      // The platform reads bodies with `orDie`: what `RequestLimits` refuses arrives as a defect.
      if (Option.isSome(defect) && defect.value instanceof RequestLimits.UnreadableBody) {
        return Effect.succeed(ApiError.response(400, defect.value.code, defect.value.reason))
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.logError("request failed unexpectedly", cause).pipe(
        Effect.as(ApiError.response(500, "internal_error", "the server failed to answer; see its log"))
      )
    }))

const PAGES = new Set(["/docs", "/openapi.json"])

/**
 * HTTP's conventions around the app: one spelling per path (`//` and a
 * trailing `/` get `404`, never a second name for a route), the pages
 * compressed and revalidated with an `ETag`, and `Cache-Control: no-store`
 * on everything else.
 *
 * @since 0.1.0
 * @category utils
 */
export const conventions = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const path = Routes.pathOf(request.url)
    if (!Routes.isCanonical(path)) {
      return Effect.succeed(
        ApiError.response(
          404,
          "not_found",
          "no such route: paths have no empty segment and no trailing slash; see /docs"
        )
      )
    }
    if (PAGES.has(path) && request.method === "GET") {
      return Effect.flatMap(app, (page) => CompressedPage.serve(request, page))
    }
    return Effect.map(
      app,
      (response) =>
        response.headers["cache-control"] === undefined ? HttpServerResponse.setHeaders(response, NO_STORE) : response
    )
  })

// Counts after the response is decided, so every status is seen, 401s and
// 404s included. A request interrupted before it had an answer lost its
// client (or the server is stopping): `499`, never a 5xx. The platform runs
// this part of a request uninterruptibly, so every start meets its end.
const countRequests = <R>(app: HttpApp.Default<never, R>): HttpApp.Default<never, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.zipRight(
      ServerMetrics.requestStarted,
      Effect.onExit(app, (exit) =>
        ServerMetrics.requestEnded(
          request.method,
          request.url,
          Exit.isSuccess(exit)
            ? exit.value.status
            : Cause.isInterruptedOnly(exit.cause)
            ? ServerMetrics.CLIENT_CLOSED
            : 500
        ))
    ))

/**
 * The API with its handlers and auth: what `HttpApiBuilder.serve` needs.
 * The families' handlers are those of `Families` (the registered families),
 * over their library services in context (`TokenLayer.layerFamilies`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerApi = (options: Options) =>
  HttpApiBuilder.api(TokenServerApi).pipe(
    Layer.provide([Families.handlers, opsLive(options.opsKeys ?? []), AdminRoutes.layer]),
    Layer.provide([ClientAuth.layer(options.clientKeys), AdminRoutes.layerAuth])
  )

// `authentication` and `hideClientButton` are Scalar settings the platform's
// `ScalarConfig` type does not list; the platform passes the whole object to
// the page. The page must work on an isolated intranet and leak nothing:
// Scalar's fonts come from its CDN (the system's fonts instead), and its
// "Open API Client" button and "Powered by Scalar" links lead to scalar.com.
const SCALAR: HttpApiScalar.ScalarConfig & {
  readonly authentication: { readonly preferredSecurityScheme: string }
  readonly hideClientButton: boolean
} = {
  authentication: { preferredSecurityScheme: "bearer" },
  withDefaultFonts: false,
  hideClientButton: true,
  customCss: `a[href^="https://www.scalar.com"], a[href^="https://client.scalar.com"] { display: none !important; }`
}

// The docs page inlines Scalar's script: the module holding it costs about
// 20 MB of heap (its source and the string) in every server, most of which
// never serve /docs. It is loaded on the first request for the page, which
// the platform's own Scalar layer then answers in a router of its own; the
// page is built once, as before.
const docsRouter = (api: HttpApi.Api["Type"]) =>
  Effect.promise(() => import("@effect/platform/HttpApiScalar")).pipe(
    Effect.flatMap((scalar) =>
      HttpApiBuilder.Router.router.pipe(
        Effect.provide(
          scalar.layer({ path: "/docs", scalar: SCALAR }).pipe(
            Layer.provideMerge(HttpApiBuilder.Router.Live),
            Layer.provide(Layer.succeed(HttpApi.Api, api))
          )
        )
      )
    )
  )

const DocsLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const page = yield* Effect.cached(docsRouter(yield* HttpApi.Api))
    yield* router.get("/docs", Effect.flatten(page))
  })
)

const limitsOf = (options: Options): RequestLimits.Limits => ({
  maxBodyBytes: options.maxBodyBytes ?? RequestLimits.DEFAULT_MAX_BODY_BYTES,
  requestTimeout: options.requestTimeout === undefined
    ? RequestLimits.DEFAULT_REQUEST_TIMEOUT
    : Duration.decode(options.requestTimeout)
})

/**
 * The server on whatever `HttpServer` is provided: only `@effect/platform`
 * APIs, so it also runs through `HttpApp.toWebHandler`. On Node,
 * `NodeServer.layer` serves it with the fast path and the proxy in front.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) =>
  // Two places for middleware: around the router (before the answer is
  // written, so it may still change it) and around the whole request (it
  // sees the answer written; what it answers itself is written after it).
  // What the runtime adds (the Node edge: the proxy routes, which answer
  // before the body is read, and its own body reader) is read once here.
  Layer.unwrapEffect(Effect.map(Edge, (edge) =>
    HttpApiBuilder.serve((app) =>
      countRequests(edge.front(RequestLimits.middleware(limitsOf(options), edge.body)(app)))
    ))).pipe(
      Layer.provide(DocsLive),
      // The operator console: its own routes on the same router, when configured.
      Layer.provide(options.console === undefined ? Layer.empty : Console.layer(options.console)),
      Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
      Layer.provide(HttpApiBuilder.middleware((app) =>
        conventions(errorBodies(app))
      )),
      Layer.provide(layerApi(options)),
      Layer.provide(MetricsLive),
      // The server span of every request parses its URL and copies each header
      // into attributes: on the token route, answered thousands of times a
      // second, that costs more than the answer, and on the proxy routes and
      // WeChat's paths (the gateway's) a sixth of a forwarded call's own cost.
      // The server's other routes keep it.
      HttpMiddleware.withTracerDisabledWhen((request) =>
        isTokenRead(request) || isProxied(request) || isWeChatPath(request)
      )
    )

const isTokenRead = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.method === "GET" && ServerMetrics.routeOf(request.url) === Routes.ACCESS_TOKEN

const isProxied = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.url.includes("/wechat/") && ServerMetrics.routeOf(request.url).endsWith("/wechat/{path}")

// A path of WeChat's (answered by the gateway when it is on, else 404), not one of the server's own.
const isWeChatPath = (request: HttpServerRequest.HttpServerRequest): boolean =>
  !Routes.isOwn(Routes.pathOf(request.url))
