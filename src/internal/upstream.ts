/**
 * One upstream call to a WeChat-family API (WeChat, WeCom): transport
 * failures, non-2xx answers, non-JSON bodies and timeouts become
 * `UpstreamUnavailable`; the latency is recorded per endpoint. Shared by
 * every family's API module, so they differ only in paths and errcodes.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Either, Metric, Option, ParseResult, Schema, Stream } from "effect"
import * as RefreshPolicy from "../RefreshPolicy.js"
import * as TokenMetrics from "../TokenMetrics.js"
import { UpstreamUnavailable } from "../WeChatError.js"

/**
 * A token, ticket or code as WeChat issues it: WeChat asks callers to
 * reserve 512 characters for one, and every one it issues is printable
 * ASCII without spaces (letters, digits, `_`, `-`, and `@` in refresh
 * tokens). Anything else is not a WeChat credential, and a 50 MB "token"
 * would otherwise be stored and served to every client.
 */
export const CredentialValue = Schema.String.pipe(Schema.pattern(/^[\x21-\x7e]{1,512}$/, {
  message: () => "a credential is 1 to 512 printable ASCII characters without spaces"
}))

/** `expires_in` within `RefreshPolicy`'s bounds: refused below the floor, clamped above the ceiling. */
export const Lifetime = Schema.transformOrFail(Schema.Number, Schema.Number, {
  strict: true,
  decode: (expiresIn, _, ast) =>
    Either.match(RefreshPolicy.lifetimeSeconds(expiresIn), {
      onLeft: (reason) => ParseResult.fail(new ParseResult.Type(ast, expiresIn, reason)),
      onRight: ParseResult.succeed
    }),
  encode: ParseResult.succeed
})

/** `{"access_token","expires_in"}`, the success body of every token endpoint. */
export const TokenBody = Schema.Struct({ access_token: CredentialValue, expires_in: Lifetime })

/** `{"ticket","expires_in"}`, the success body of every ticket endpoint. */
export const TicketBody = Schema.Struct({ ticket: CredentialValue, expires_in: Lifetime })

/**
 * The most an `errmsg` keeps: WeChat's are one short sentence and a request
 * id; a longer one is cut here, once, before it reaches errors, HTTP
 * answers, `/readyz` or logs.
 */
export const MAX_ERRMSG = 200

/** Cuts `text` to `MAX_ERRMSG` characters, saying so. */
export const truncate = (text: string): string =>
  text.length <= MAX_ERRMSG ? text : `${text.slice(0, MAX_ERRMSG)}… (${text.length} characters)`

/**
 * The largest body a credential endpoint may answer: theirs are under 1 KB,
 * and the authorizer list (500 entries at most) under 200 KB.
 */
export const MAX_CREDENTIAL_BODY = 1024 * 1024

// Redirects are never followed: a 3xx from WeChat's host is not WeChat's
// answer, and following it would re-send the request, secret included, to
// whatever host it names. `fetch` (FetchHttpClient) follows by default;
// Node's http and undici clients never do.
const noRedirects = (init: Option.Option<globalThis.RequestInit>) => ({
  ...Option.getOrUndefined(init),
  redirect: "manual" as const
})

// The system error under fetch's "fetch failed" (an `AggregateError` when
// every address of a host refused): what an operator acts on is its errno.
const systemError = (error: unknown, depth = 0): Record<string, unknown> | undefined => {
  if (typeof error !== "object" || error === null || depth > 4) return undefined
  const record = error as Record<string, unknown>
  if (typeof record["code"] === "string") return record
  const errors = record["errors"]
  if (Array.isArray(errors) && errors.length > 0) return systemError(errors[0], depth + 1)
  return systemError(record["cause"], depth + 1)
}

// `connect ECONNREFUSED 127.0.0.1:9`, `getaddrinfo ENOTFOUND api.weixin.qq.com`:
// built from the error's fields, never its message or the URL, which carry
// the query string (the secret).
const networkFailure = (error: HttpClientError.HttpClientError, request: HttpClientRequest.HttpClientRequest) => {
  const system = systemError(error.cause)
  const host = URL.canParse(request.url) ? new URL(request.url).host : "the upstream"
  if (system === undefined) {
    return `${error.reason}${"description" in error && error.description ? ` (${error.description})` : ""} (${host})`
  }
  const syscall = typeof system["syscall"] === "string" ? `${system["syscall"]} ` : ""
  const address = typeof system["address"] === "string"
    ? `${system["address"]}${typeof system["port"] === "number" ? `:${system["port"]}` : ""}`
    : typeof system["hostname"] === "string"
    ? system["hostname"]
    : host
  return `${syscall}${String(system["code"])} ${address}`
}

// The latency metric of each endpoint, tagged once: tagging builds and
// hashes a new metric key on every call.
const latencies = new Map<string, Metric.Metric.Histogram<Duration.Duration>>()
const latencyOf = (endpoint: string) => {
  const known = latencies.get(endpoint)
  if (known !== undefined) return known
  const tagged = TokenMetrics.upstreamLatency.pipe(Metric.tagged("endpoint", endpoint))
  latencies.set(endpoint, tagged)
  return tagged
}

/**
 * A sender over the `HttpClient` in context. Token requests carry the secret
 * in the query string: the platform's client span (whose `url.full` would
 * record it) is off, a span of our own names the endpoint and path only,
 * and no error detail holds the URL. A `FetchHttpClient.RequestInit` is
 * taken from the context the sender is made in, with redirects off.
 */
export const makeSend = (timeout: Duration.Duration) =>
  Effect.map(
    Effect.all([HttpClient.HttpClient, Effect.serviceOption(FetchHttpClient.RequestInit)]),
    ([base, init]) => {
      const client = base.pipe(HttpClient.withTracerDisabledWhen(() => true))
      const requestInit = noRedirects(init)
      return (
        endpoint: string,
        request: HttpClientRequest.HttpClientRequest,
        maxBodyBytes: number = MAX_CREDENTIAL_BODY
      ): Effect.Effect<unknown, UpstreamUnavailable> =>
        Effect.provideService(client.execute(request), FetchHttpClient.RequestInit, requestInit).pipe(
          Effect.mapError((error) =>
            new UpstreamUnavailable({ reason: "network", detail: `${endpoint}: ${networkFailure(error, request)}` })
          ),
          Effect.flatMap((response) =>
            response.status >= 200 && response.status < 300
              ? readJson(endpoint, response, maxBodyBytes)
              : response.status >= 300 && response.status < 400
              ? Effect.fail(
                new UpstreamUnavailable({
                  reason: "http-status",
                  detail: `${endpoint}: HTTP ${response.status} redirect, not followed`
                })
              )
              : Effect.fail(
                new UpstreamUnavailable({ reason: "http-status", detail: `${endpoint}: HTTP ${response.status}` })
              )
          ),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new UpstreamUnavailable({
                reason: "timeout",
                detail: `${endpoint}: no answer within ${Duration.format(timeout)}`
              })
          }),
          Metric.trackDuration(latencyOf(endpoint)),
          // Our own span in place of the platform's: the path, never the query.
          // No stack trace: capturing one cost each fetch of a cold start's
          // herd more than the span itself, and it would name only this module.
          Effect.withSpan(`wechat.${endpoint}`, {
            kind: "client",
            captureStackTrace: false,
            attributes: { "wechat.endpoint": endpoint, "url.path": new URL(request.url).pathname }
          })
        )
    }
  )

// Reads at most `maxBodyBytes` (by the declared length first, then as read).
// A body of a declared length within the limit (every token answer) is
// read whole, the HTTP parser stopping at that length: a stream folded
// chunk by chunk cost each fetch of a cold start's herd more than the
// answer. The errors are made only when they happen: each is a schema
// class checked and stamped with a stack when made.
const readJson = (
  endpoint: string,
  response: HttpClientResponse.HttpClientResponse,
  maxBodyBytes: number
): Effect.Effect<unknown, UpstreamUnavailable> => {
  const tooLarge = () =>
    new UpstreamUnavailable({
      reason: "malformed-body",
      detail: `${endpoint}: the body is larger than ${maxBodyBytes} bytes`
    })
  const brokeOff = () => new UpstreamUnavailable({ reason: "network", detail: `${endpoint}: the body broke off` })
  const declared = Number(response.headers["content-length"] ?? 0)
  if (declared > maxBodyBytes) return Effect.fail(tooLarge())
  const body: Effect.Effect<Uint8Array, UpstreamUnavailable> = declared > 0
    ? Effect.map(Effect.mapError(response.arrayBuffer, brokeOff), (buffer) => new Uint8Array(buffer))
    : response.stream.pipe(
      Stream.mapError(brokeOff),
      Stream.runFoldEffect({ chunks: [] as Array<Uint8Array>, size: 0 }, (read, chunk) => {
        const size = read.size + chunk.length
        if (size > maxBodyBytes) return Effect.fail(tooLarge())
        read.chunks.push(chunk)
        return Effect.succeed({ chunks: read.chunks, size })
      }),
      Effect.map((read) => Buffer.concat(read.chunks))
    )
  return Effect.flatMap(body, (bytes) =>
    Effect.try({
      try: (): unknown => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")),
      catch: () => new UpstreamUnavailable({ reason: "malformed-body", detail: `${endpoint}: the body is not JSON` })
    }))
}
