/**
 * The WeChat API proxy: `ANY /v1/apps/{appId}/wechat/{path}` (and the same
 * for WeCom apps) forwards the caller's method, query, body and content type
 * to WeChat with the current token added, and streams the answer back. A
 * business server in any language calls WeChat with only its client key and
 * never holds a token.
 *
 * When WeChat says the token was dead (40001/40014/42001), the proxy
 * compare-and-refreshes with the token that call used and replays the call
 * once with the new one; any number of calls failing on the same dead token
 * cause one refresh (the engine's single-flight). Bodies up to
 * `replayBodyBytes` are kept for this; a larger upload streams straight
 * through and is not replayed (the caller gets WeChat's answer).
 *
 * The proxy answers in front of the `HttpApi` router (its bodies stream, and
 * may be 20 MiB), with the server's client keys and error shape; its routes
 * are in `Routes` and the OpenAPI document like every other. It calls WeChat
 * with Node's own `http`/`https` client over a keep-alive agent per origin,
 * not the platform's `HttpClient`, which cost 2.3–3 ms a call where Node's
 * took 0.6–0.9 ms (`internal/upstreamCall.ts` has the details).
 *
 * @since 0.3.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Data, Duration, Effect, Layer, Metric, MetricLabel, Option, type Scope } from "effect"
import type { IncomingHttpHeaders, IncomingMessage } from "node:http"
import { pipeline, type Readable } from "node:stream"
import { type AccessTokenError, type Credential, failureCause } from "../AccessToken.js"
import * as ApiError from "../api/ApiError.js"
import * as ProxyTarget from "../ProxyTarget.js"
import { TokenEngine } from "../TokenEngine.js"
import * as ClientAuth from "./ClientAuth.js"
import * as Families from "./Families.js"
import * as CallLine from "./internal/callLine.js"
import * as RequestBody from "./internal/nodeRequest.js"
import * as QueryName from "./internal/queryName.js"
import * as TokenScrubber from "./internal/tokenScrubber.js"
import * as UpstreamCall from "./internal/upstreamCall.js"
import * as ProxyMetrics from "./ProxyMetrics.js"
import * as ProxyPath from "./ProxyPath.js"
import * as RequestLimits from "./RequestLimits.js"
import * as Routes from "./Routes.js"

/**
 * `PROXY_MAX_BODY_BYTES`' default: 20 MiB, above WeChat's largest media upload (video, 10 MB).
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024

/**
 * Request bodies up to this size are held, so the call can be replayed
 * after a token refresh; larger ones stream through once. 1 MiB: every JSON
 * API body, and small images.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_REPLAY_BODY_BYTES = 1024 * 1024

/**
 * Upstream calls in flight at once per owner; later ones wait their turn,
 * first come first served. WeChat limits calls per app, and one app's burst
 * must not take every connection.
 *
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_MAX_CONCURRENT_PER_OWNER = 32

/**
 * Answers of at most this size whose type may be JSON are read whole, to see
 * an errcode that calls for a replay. Larger answers (downloads, long lists)
 * stream through. Either way the tokens the call used are masked in them.
 *
 * @since 0.3.0
 * @category constants
 */
export const INSPECT_BYTES = 64 * 1024

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** `PROXY_ALLOW`: only paths under these prefixes are forwarded. Default: every path but the refused ones. */
  readonly allow?: ReadonlyArray<string> | undefined
  /** `PROXY_MAX_BODY_BYTES`: larger request bodies get 413. Default 20 MiB. */
  readonly maxBodyBytes?: number
  /** Bodies up to this size are kept for a replay. Default 1 MiB. */
  readonly replayBodyBytes?: number
  /** WeChat must answer (headers) within this long once the body is sent, else 504. Default 10 s. */
  readonly upstreamTimeout?: Duration.DurationInput
  /** Upstream calls in flight at once per owner. Default 32. */
  readonly maxConcurrentPerOwner?: number
  /** The route table holding the targets' routes. Default: the server's (`Routes.server`). */
  readonly routes?: Routes.Table
}

/**
 * @since 0.3.0
 * @category models
 */
export interface ProxyShape {
  readonly targets: ReadonlyArray<ProxyTarget.ProxyTarget>
  /** The target, owner and raw upstream path of a request path, when it is a proxy route. */
  readonly route: (path: string) =>
    | { readonly target: ProxyTarget.ProxyTarget; readonly owner: string; readonly rest: string }
    | undefined
  /** Forwards an authenticated request for `owner` to `rest` under `target`. */
  readonly forward: (
    request: HttpServerRequest.HttpServerRequest,
    target: ProxyTarget.ProxyTarget,
    owner: string,
    rest: string,
    requestTimeout: Duration.Duration,
    dialect?: Dialect
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, Scope.Scope>
}

/**
 * How a front other than the `/v1` routes speaks through `forward`: the query
 * to forward in place of the request's own (the WeChat-compatible gateway
 * takes its own `access_token` out first), and how the proxy's own refusals
 * and failures are answered (the gateway answers them in WeChat's shape).
 * WeChat's answers pass through either way.
 *
 * @since 0.3.0
 * @category models
 */
export interface Dialect {
  readonly query: URLSearchParams
  readonly refusal: (status: number, code: string, message: string) => HttpServerResponse.HttpServerResponse
}

/**
 * The proxy, when the server has one: `TokenServer` serves the proxy routes
 * only when this service is in its context.
 *
 * @since 0.3.0
 * @category tags
 */
export class Proxy extends Context.Tag("effect-wechat-token/Proxy")<Proxy, ProxyShape>() {}

// Request headers WeChat may use; everything else (Authorization, Cookie,
// Host, Connection and the other hop-by-hop headers, X-Forwarded-*, the
// caller's own tracing) stays here.
const FORWARDED_REQUEST_HEADERS = ["content-type", "accept", "accept-language"] as const
// Answer headers the caller may use: what the body is. Not `content-encoding`:
// the proxy asks for, and passes on, only bodies it can read (see `IDENTITY`).
const FORWARDED_ANSWER_HEADERS = ["content-disposition"] as const

// Asked of WeChat on every call, and anything else refused: a gzip or br body
// is bytes the token scrubber cannot read, and decompressing it here would
// let one small upstream answer expand without bound in this process.
const IDENTITY = /^\s*(identity\s*)?$/i

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])

const NO_STORE = { "cache-control": "no-store" } as const

/** Why WeChat gave no answer. */
class UpstreamFailed extends Data.TaggedError("UpstreamFailed")<{
  readonly status: 502 | 504
  readonly code: "upstream_unreachable" | "upstream_timeout"
  readonly message: string
}> {}

const tokenError = (error: AccessTokenError): HttpServerResponse.HttpServerResponse =>
  error._tag === "UnknownApp"
    ? unknownOwner(error.appId)
    : ApiError.response(503, failureCause(error), error.message)

const unknownOwner = (owner: string) =>
  HttpServerResponse.unsafeJson(ClientAuth.unknownApp(owner), { status: 404, headers: NO_STORE })

const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const length = request.headers["content-length"]
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
}

const declaredLength = (request: HttpServerRequest.HttpServerRequest): number | undefined => {
  const length = request.headers["content-length"]
  return length === undefined || !/^\d+$/.test(length) ? undefined : Number(length)
}

const mayBeJson = (contentType: string | undefined): boolean =>
  contentType === undefined || /json|^text\//i.test(contentType)

/** The errcode of a JSON answer, if it is one. */
const errcodeOf = (text: string): number | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && "errcode" in value && typeof value.errcode === "number"
      ? value.errcode
      : undefined
  } catch {
    return undefined
  }
}

const decoder = new TextDecoder()

// `access_token` in the caller's query, however spelled (`QueryName.readAs`).
const namesAccessToken = (query: URLSearchParams): boolean => {
  for (const name of query.keys()) {
    if (QueryName.readAs(name) === "access_token") return true
  }
  return false
}

/**
 * The proxy over `targets`, calling WeChat over keep-alive connections that
 * close with `scope`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  targets: ReadonlyArray<ProxyTarget.ProxyTarget>,
  options: Options = {}
): Effect.Effect<ProxyShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const upstream = yield* UpstreamCall.make
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    const replayBodyBytes = Math.min(options.replayBodyBytes ?? DEFAULT_REPLAY_BODY_BYTES, maxBodyBytes)
    const upstreamTimeout = Duration.decode(options.upstreamTimeout ?? Duration.seconds(10))
    const maxConcurrent = options.maxConcurrentPerOwner ?? DEFAULT_MAX_CONCURRENT_PER_OWNER
    const routes = targets.map((target) => ({
      target,
      match: matcher(target, options.routes),
      origin: upstream.origin(target.baseUrl)
    }))
    const originOf = new Map(routes.map((route) => [route.target, route.origin]))

    // One fair line per owner; owners are configured apps, so the map is bounded.
    const lines = new Map<string, CallLine.CallLine>()
    const lineOf = (owner: string) => {
      let line = lines.get(owner)
      if (line === undefined) {
        line = CallLine.make(maxConcurrent)
        lines.set(owner, line)
      }
      return line
    }

    const forward: ProxyShape["forward"] = (request, target, owner, rest, requestTimeout, dialect) =>
      Effect.gen(function*() {
        const source = NodeHttpServerRequest.toIncomingMessage(request)
        const own = dialect === undefined ? ApiError.response : dialect.refusal
        const app = target.metricLabel(owner)
        const refuse = (
          reason: ProxyMetrics.RefusalReason,
          response: HttpServerResponse.HttpServerResponse,
          prefix: string
        ) =>
          Effect.as(
            Effect.all([
              ProxyMetrics.refused(app, reason),
              countAnswer(app, prefix, response.status)
            ]),
            response
          )

        const resolved = ProxyPath.resolve(rest, options.allow)
        if (!("path" in resolved)) {
          const status = resolved.code === "invalid_path" ? 400 : 403
          return yield* refuse(resolved.code, own(status, resolved.code, resolved.reason), "refused")
        }
        const path = resolved.path
        const prefix = ProxyMetrics.prefixLabel(ProxyPath.prefixOf(path))
        const queryAt = request.url.indexOf("?")
        const query = dialect?.query ?? new URLSearchParams(queryAt === -1 ? "" : request.url.slice(queryAt + 1))
        if (namesAccessToken(query)) {
          return yield* refuse(
            "access_token_not_allowed",
            own(
              400,
              "access_token_not_allowed",
              "leave access_token out of the query: the proxy adds the current token itself"
            ),
            prefix
          )
        }
        if (!METHODS.has(request.method)) {
          return yield* countAnswer(app, prefix, 405).pipe(
            Effect.as(own(405, "method_not_allowed", `the proxy forwards ${[...METHODS].join(", ")}`))
          )
        }
        const length = declaredLength(request)
        const tooLarge = () => {
          RequestBody.closeAfter(
            source,
            NodeHttpServerRequest.toServerResponse(request),
            Duration.toMillis(RequestLimits.LINGER)
          )
          return refuse(
            "payload_too_large",
            dialect === undefined
              ? RequestLimits.tooLarge(maxBodyBytes)
              : own(413, "payload_too_large", `the request body is over ${maxBodyBytes} bytes`),
            prefix
          )
        }
        const timedOut = () => {
          RequestBody.closeAfter(
            source,
            NodeHttpServerRequest.toServerResponse(request),
            Duration.toMillis(RequestLimits.LINGER)
          )
          return countAnswer(app, prefix, 408).pipe(Effect.as(
            dialect === undefined
              ? RequestLimits.timedOut(requestTimeout)
              : own(408, "request_timeout", `the request did not arrive within ${Duration.format(requestTimeout)}`)
          ))
        }
        if (length !== undefined && length > maxBodyBytes) return yield* tooLarge()

        // The body: held when small enough to replay, else piped through once.
        let body: UpstreamCall.Body = { _tag: "None" }
        if (hasBody(request)) {
          if (length !== undefined && length <= replayBodyBytes) {
            const read = yield* Effect.either(
              Effect.interruptible(RequestBody.read(source, maxBodyBytes, Duration.toMillis(requestTimeout)))
            )
            if (read._tag === "Left") {
              if (read.left === "client-closed") return yield* Effect.interrupt
              return yield* read.left === "too-large" ? tooLarge() : timedOut()
            }
            body = { _tag: "Held", bytes: read.right }
          } else {
            body = { _tag: "Piped", source, maxBytes: maxBodyBytes, timeoutMillis: Duration.toMillis(requestTimeout) }
          }
        }

        const headers: Record<string, string> = {}
        for (const name of FORWARDED_REQUEST_HEADERS) {
          const value = request.headers[name]
          if (value !== undefined) headers[name] = value
        }
        headers["accept-encoding"] = "identity"
        if (body._tag === "Piped" && length !== undefined) headers["content-length"] = String(length)
        const upstreamPath = `/${path}?${query.size === 0 ? "" : `${query.toString()}&`}access_token=`
        const origin = originOf.get(target)!
        // A piped body is sent while WeChat is waited on: its deadline comes first.
        const deadline = body._tag === "Piped" ? Duration.sum(requestTimeout, upstreamTimeout) : upstreamTimeout
        const deadlineMillis = Duration.toMillis(deadline)
        const line = lineOf(owner)
        const metrics = metricsOf(app, prefix)

        // One call upstream: its answer, inspected when it may be JSON. Its
        // end is tied to the request's scope: once the caller has its answer,
        // or has gone, no upstream connection is left reading for it. Its
        // deadline covers the wait in line, the call and the inspection.
        const call = (token: string) =>
          Effect.suspend(() => {
            const deadlineAt = performance.now() + deadlineMillis
            return line.withPermit(
              Effect.gen(function*() {
                // The answer's end is bound to the request's scope the moment it
                // arrives (no interruption in between): an answer cut short is
                // destroyed with its socket, one never read (HEAD) is drained, so
                // its socket goes back to the pool.
                const answer = yield* Effect.uninterruptibleMask((restore) =>
                  Effect.tap(
                    restore(origin.send({
                      method: request.method,
                      path: upstreamPath + encodeURIComponent(token),
                      headers,
                      body
                    }, deadlineAt)),
                    (answer) =>
                      Effect.addFinalizer(() =>
                        Effect.sync(() => {
                          if (!answer.complete) answer.destroy()
                          else if (!answer.readableEnded) answer.resume()
                        })
                      )
                  )
                ).pipe(Metric.trackDuration(metrics.latency))
                if (request.method === "HEAD" || !mayBeJson(answer.headers["content-type"])) {
                  return { answer, token, inspected: Option.none<Uint8Array>() }
                }
                const head = yield* UpstreamCall.peek(answer, INSPECT_BYTES, deadlineAt)
                return { answer, token, inspected: head._tag === "Whole" ? Option.some(head.body) : Option.none() }
              }),
              deadlineAt
            )
          }).pipe(
            Effect.catchTags({
              CallFailed: (error) => upstreamFailure(error),
              LineTimedOut: () => Effect.fail(timedOutUpstream()),
              CallTimedOut: () => Effect.fail(timedOutUpstream()),
              BodyRefused: (error) =>
                // A caller gone mid-upload gets nothing: the request ends as interrupted (counted 499).
                error.reason === "client-closed" ? Effect.interrupt : Effect.fail(error)
            })
          )
        // Made only when needed: an error captures a stack, ~0.1 ms a call if made up front.
        const timedOutUpstream = () =>
          new UpstreamFailed({
            status: 504,
            code: "upstream_timeout",
            message: `WeChat did not answer within ${
              Duration.format(deadline)
            } (or ${maxConcurrent} calls of this app were ahead in line)`
          })

        // What a failed call means: the caller gone, else WeChat not reachable.
        const upstreamFailure = (error: UpstreamCall.CallFailed): Effect.Effect<never, UpstreamFailed> =>
          // The caller's socket going also breaks a call whose body it was sending.
          source.socket.destroyed ? Effect.interrupt : Effect.fail(
            new UpstreamFailed({
              status: 502,
              code: "upstream_unreachable",
              message: error.stage === "request"
                ? `WeChat could not be reached: ${error.code}`
                : `WeChat's answer broke off: ${error.code}`
            })
          )

        // The answer, and every token the call used: each is masked in it.
        const answer = Effect.gen(function*() {
          const first = yield* Effect.flatMap(target.token(owner), (credential) => call(credential.value))
          const errcode = Option.flatMap(
            first.inspected,
            (bytes) => Option.fromNullable(errcodeOf(decoder.decode(bytes)))
          )
          if (Option.isSome(errcode) && target.deadToken.has(errcode.value) && body._tag !== "Piped") {
            const fresh: Credential = yield* target.replace(owner, first.token)
            if (fresh.value !== first.token) {
              yield* Metric.increment(metrics.replays)
              return { ...(yield* call(fresh.value)), used: [first.token, fresh.value] }
            }
          }
          return { ...first, used: [first.token] }
        })

        const result = yield* Effect.either(answer)
        if (result._tag === "Left") {
          const error = result.left
          switch (error._tag) {
            case "BodyRefused":
              return yield* error.reason === "too-large" ? tooLarge() : timedOut()
            case "UpstreamFailed":
              yield* Effect.logWarning("proxied call got no answer from WeChat").pipe(
                Effect.annotateLogs({ app: owner, prefix, code: error.code, reason: error.message })
              )
              return yield* countAnswer(app, prefix, error.status).pipe(
                Effect.as(own(error.status, error.code, error.message))
              )
            default: {
              const response = dialect === undefined
                ? tokenError(error)
                : own(error._tag === "UnknownApp" ? 404 : 503, failureCause(error), error.message)
              return yield* countAnswer(app, prefix, response.status).pipe(Effect.as(response))
            }
          }
        }
        const { answer: upstreamAnswer, inspected, used } = result.right
        const declared = upstreamAnswer.headers["content-encoding"]
        if (declared !== undefined && !IDENTITY.test(declared)) {
          // Named in the log and the answer, so masked like any header of the answer.
          const encoding = TokenScrubber.text(declared, used)
          upstreamAnswer.destroy()
          yield* Effect.logWarning("proxied call got a compressed answer from WeChat").pipe(
            Effect.annotateLogs({ app: owner, prefix, encoding })
          )
          return yield* countAnswer(app, prefix, 502).pipe(Effect.as(own(
            502,
            "upstream_encoding",
            `WeChat answered with Content-Encoding ${encoding} though asked for identity; ` +
              "the proxy passes on only answers it can check for the token"
          )))
        }
        const status = upstreamAnswer.statusCode ?? 502
        yield* Metric.increment(metrics.requests(status))
        const described = answerOptions(status, upstreamAnswer.headers, used)
        if (Option.isSome(inspected)) {
          return HttpServerResponse.uint8Array(TokenScrubber.whole(inspected.value, used), described)
        }
        // HEAD has no body to scrub, and one never read goes back to the pool (see `call`).
        const streamed = request.method === "HEAD" ? upstreamAnswer : scrubbing(upstreamAnswer, used)
        return HttpServerResponse.raw(streamed, withLength(described, upstreamAnswer.headers["content-length"]))
      })

    return {
      targets,
      route: (path) => {
        for (const { match, target } of routes) {
          const found = match(path)
          if (found !== undefined) return { target, ...found }
        }
        return undefined
      },
      forward
    }
  })

// Status, type and what the body is, from WeChat's answer, with the tokens
// masked (a file name may be built from the request); never cached.
const answerOptions = (status: number, upstream: IncomingHttpHeaders, used: ReadonlyArray<string>) => {
  const headers: Record<string, string> = { ...NO_STORE }
  for (const name of FORWARDED_ANSWER_HEADERS) {
    const value = upstream[name]
    if (value !== undefined) headers[name] = TokenScrubber.text(value, used)
  }
  const contentType = upstream["content-type"]
  return {
    status,
    headers,
    ...(contentType === undefined ? {} : { contentType: TokenScrubber.text(contentType, used) })
  }
}

// The answer's body as it streams, the tokens masked. The two ends are tied:
// the caller gone (the platform destroys what it pipes) destroys the answer
// and its socket; the answer broken off breaks the caller's answer.
const scrubbing = (answer: IncomingMessage, used: ReadonlyArray<string>): Readable =>
  pipeline(answer, TokenScrubber.stream(used), () => {})

const withLength = <A extends object>(options: A, length: string | undefined) =>
  length === undefined || !/^\d+$/.test(length) ? options : { ...options, contentLength: Number(length) }

const countAnswer = (app: string, prefix: string, status: number): Effect.Effect<void> =>
  Metric.increment(metricsOf(app, prefix).requests(status))

/** The proxy's metrics of one owner and path prefix, tagged. */
interface Tagged {
  readonly latency: Metric.Metric.Histogram<Duration.Duration>
  readonly replays: Metric.Metric.Counter<number>
  readonly requests: (status: number) => Metric.Metric.Counter<number>
}

// Each metric tagged once per label set: tagging builds and hashes a new key
// each time, which every proxied call would pay three times. The label sets
// are bounded (configured owners × at most `MAX_PREFIXES` prefixes × statuses).
const tagged = new Map<string, Tagged>()
const metricsOf = (app: string, prefix: string): Tagged => {
  const key = `${app} ${prefix}`
  let known = tagged.get(key)
  if (known === undefined) {
    const labels = [MetricLabel.make("app", app), MetricLabel.make("prefix", prefix)]
    const byStatus = new Map<number, Metric.Metric.Counter<number>>()
    known = {
      latency: Metric.taggedWithLabels(ProxyMetrics.upstreamLatency, labels),
      replays: Metric.taggedWithLabels(ProxyMetrics.replays, labels),
      requests: (status) => {
        let counter = byStatus.get(status)
        if (counter === undefined) {
          counter = Metric.taggedWithLabels(ProxyMetrics.requests, [
            ...labels,
            MetricLabel.make("status", String(status))
          ])
          byStatus.set(status, counter)
        }
        return counter
      }
    }
    tagged.set(key, known)
  }
  return known
}

/**
 * The proxy over the targets of the families in context (`Families`):
 * official accounts and authorizers call WeChat at `wechatBaseUrl`, WeCom
 * apps and suites' corps WeCom at `wecomBaseUrl`.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options & { readonly wechatBaseUrl: string; readonly wecomBaseUrl: string }
): Layer.Layer<Proxy, never, TokenEngine | Families.Services> =>
  Layer.scoped(
    Proxy,
    Effect.gen(function*() {
      const engine = yield* TokenEngine
      // Apps and WeCom apps; owners that come and go (authorizers) are counted under their component, once called.
      yield* ProxyMetrics.initialize(
        engine.servable.filter((key) => key.kind === "access_token" || key.kind === "wecom_access_token")
          .map((key) => key.appId)
      )
      const targets = yield* Families.proxyTargets({ wechat: options.wechatBaseUrl, wecom: options.wecomBaseUrl })
      return yield* make(targets, options)
    })
  )

/**
 * Serves the proxy routes of `proxy` in front of `app`: the client key and
 * its scope are checked as on every `/v1` route, by the same `auth` (`401`,
 * or `404` for an app the key may not use), then the call is forwarded.
 * Every other request goes to `app`. Node only: the call streams through
 * the request's Node socket (`NodeServer` puts it in front of the app).
 *
 * @since 0.3.0
 * @category utils
 */
export const serve = (options: {
  readonly proxy: ProxyShape
  readonly auth: ClientAuth.Check
  readonly requestTimeout: Duration.Duration
}) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | Scope.Scope> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): HttpApp.Default<E, R | Scope.Scope> => {
    // The token route is answered thousands of times a second: one substring test keeps it out of here.
    if (!request.url.includes("/wechat/")) return app
    const routed = options.proxy.route(Routes.pathOf(request.url))
    if (routed === undefined) return app
    const key = options.auth.keyOn(
      NodeHttpServerRequest.toIncomingMessage(request).socket,
      request.headers.authorization
    )
    if (key instanceof ApiError.Unauthorized) {
      return Effect.succeed(
        HttpServerResponse.setHeader(
          ApiError.response(401, key.error.code, key.error.message),
          "www-authenticate",
          "Bearer"
        )
      )
    }
    if (!options.auth.allows(key, routed.target.scopeOf(routed.owner)) || !routed.target.known(routed.owner)) {
      return Effect.succeed(unknownOwner(routed.owner))
    }
    // The platform runs middleware uninterruptibly; a call must stop when its caller goes or its deadline passes.
    return Effect.interruptible(
      options.proxy.forward(request, routed.target, routed.owner, routed.rest, options.requestTimeout)
    )
  })

/**
 * The owner and the raw `{path}` of a request path, when it is `target`'s
 * route. The route is the one the route table holds for `target.pattern`
 * (`Routes.server`, or `table` where the API has more routes): a target
 * whose pattern is not a declared route is a programming error.
 *
 * @since 0.3.0
 * @category utils
 */
export const matcher = (
  target: ProxyTarget.ProxyTarget,
  table: Routes.Table = Routes.server
): (path: string) => { readonly owner: string; readonly rest: string } | undefined => {
  const { params: names, regex } = table.get(target.pattern)
  const rest = names.indexOf("path") + 1
  return (path) => {
    const found = regex.exec(path)
    if (found === null) return undefined
    const params: Record<string, string> = {}
    names.forEach((name, index) => {
      params[name] = decodeSegment(found[index + 1]!)
    })
    return { owner: target.ownerOf(params), rest: found[rest]! }
  }
}

const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
