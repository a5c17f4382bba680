/**
 * What a request may cost the server: a body of at most `maxBodyBytes`,
 * read within `requestTimeout`, JSON nested at most `MAX_JSON_DEPTH` deep.
 * A hostile client (a body that never ends, one that never arrives, one that
 * hangs up halfway) gets a JSON refusal or nothing, and leaves no fiber,
 * buffer or socket behind.
 *
 * Only `@effect/platform` APIs: the limits hold on any `HttpServer` and
 * through `HttpApp.toWebHandler`. What needs the socket itself (the linger
 * after a refusal, a body read without destroying the connection the
 * refusal goes out on) is the Node edge's `BodyReader`.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Chunk, Data, Duration, Effect, Stream } from "effect"
import * as ApiError from "../api/ApiError.js"
import * as internal from "./internal/requestBody.js"

/**
 * The largest legitimate body is a page URL (4,096 characters) in JSON.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024

/**
 * Headers must arrive within this long, and then the body within as long again.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_REQUEST_TIMEOUT: Duration.Duration = Duration.seconds(30)

/**
 * Every body this server takes is a flat object; anything nested deeper than
 * this is refused before it is parsed.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_JSON_DEPTH = 32

/**
 * After refusing a body still on its way (413, 408), how long the client may
 * keep sending before the connection is cut (on Node, which owns the socket).
 *
 * @since 0.1.0
 * @category constants
 */
export const LINGER: Duration.Duration = Duration.seconds(2)

/**
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxBodyBytes: number
  readonly requestTimeout: Duration.Duration
}

/**
 * A body that cannot be used as sent: not JSON, nested too deep, or in a
 * format no route takes. Raised from the body accessors, which the platform
 * reads with `orDie`, so it reaches the error renderer as a defect.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnreadableBody extends Data.TaggedError("UnreadableBody")<{
  readonly code: "malformed_json" | "unsupported_content_type"
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * `text` as JSON, refusing any nesting deeper than `maxDepth`.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseJson = (text: string, maxDepth: number = MAX_JSON_DEPTH): Effect.Effect<unknown, UnreadableBody> => {
  if (!internal.nestsWithin(text, maxDepth)) {
    return Effect.fail(
      new UnreadableBody({ code: "malformed_json", reason: `the request body nests deeper than ${maxDepth} levels` })
    )
  }
  // The platform decodes an empty body as null; so does this.
  if (text === "") return Effect.succeed(null)
  return Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: () => new UnreadableBody({ code: "malformed_json", reason: "the request body is not valid JSON" })
  })
}

const refuseMultipart = Effect.die(
  new UnreadableBody({ code: "unsupported_content_type", reason: "send the body as application/json" })
)

const parseOrDie = (text: string) => Effect.orDie(parseJson(text))

/**
 * Whether the request's headers announce a body (HTTP/1.1's rule: a
 * `Content-Length` other than 0, or a `Transfer-Encoding`).
 *
 * @since 0.3.0
 * @category utils
 */
export const declaresBody = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const length = request.headers["content-length"]
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
}

/**
 * How the body of a request is read on the runtime under the server.
 *
 * @since 0.3.0
 * @category models
 */
export interface BodyReader {
  /** Whether the request has a body to read before any route runs. */
  readonly hasBody: (request: HttpServerRequest.HttpServerRequest) => boolean
  /** The whole body, or why it was given up as soon as that is known. */
  readonly read: (
    request: HttpServerRequest.HttpServerRequest,
    maxBytes: number
  ) => Effect.Effect<Uint8Array, "too-large" | "client-closed">
  /** Runs as a 413 or 408 is answered while the rest of the body may still be on its way. */
  readonly refused: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<void>
}

// A web `Request` carries its body as a stream whatever its headers say (an
// HTTP/2 request need not send a length): a body there is read under the
// limit too, never left to the platform's unbounded reader.
const hasWebBody = (request: HttpServerRequest.HttpServerRequest): boolean =>
  typeof Request === "function" && request.source instanceof Request && request.source.body !== null

const concat = (chunks: Chunk.Chunk<Uint8Array>, bytes: number): Uint8Array => {
  const body = new Uint8Array(bytes)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.length
  }
  return body
}

/**
 * The body through the platform's `request.stream`, collection stopped as
 * soon as the limit is crossed. A stream that fails lost its client.
 *
 * @since 0.3.0
 * @category constructors
 */
export const platformBodyReader: BodyReader = {
  hasBody: (request) => declaresBody(request) || hasWebBody(request),
  read: (request, maxBytes) =>
    request.stream.pipe(
      Stream.mapError(() => "client-closed" as const),
      Stream.runFoldEffect(
        { chunks: Chunk.empty<Uint8Array>(), bytes: 0 },
        (held, chunk): Effect.Effect<{ chunks: Chunk.Chunk<Uint8Array>; bytes: number }, "too-large"> =>
          held.bytes + chunk.length > maxBytes
            ? Effect.fail("too-large")
            : Effect.succeed({ chunks: Chunk.append(held.chunks, chunk), bytes: held.bytes + chunk.length })
      ),
      Effect.map(({ bytes, chunks }) => concat(chunks, bytes))
    ),
  refused: () => Effect.void
}

/**
 * `413` with the JSON error body.
 *
 * @since 0.1.0
 * @category utils
 */
export const tooLarge = (maxBodyBytes: number): HttpServerResponse.HttpServerResponse =>
  ApiError.response(413, "payload_too_large", `the request body is over ${maxBodyBytes} bytes`)

/**
 * `408` with the JSON error body.
 *
 * @since 0.1.0
 * @category utils
 */
export const timedOut = (timeout: Duration.Duration): HttpServerResponse.HttpServerResponse =>
  ApiError.response(408, "request_timeout", `the request did not arrive within ${Duration.format(timeout)}`)

/**
 * Reads the body of every request that has one, under the limits, before
 * `app` runs; `app` then sees a request whose body is in memory. Over the
 * limit: `413` as soon as the limit is crossed (or at once when the declared
 * length is over it). Not all there in time: `408`. Both let `reader` close
 * the connection once the answer is out, since the rest of the body is
 * still on its way. A client that hangs up mid-body gets nothing: the
 * request is interrupted, which the request counter records as `499`.
 *
 * @since 0.1.0
 * @category utils
 */
export const middleware =
  (limits: Limits, reader: BodyReader = platformBodyReader) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        reader.hasBody(request)
          ? withBodyRead(limits, reader, request, app)
          // A content type with no body still gets its (empty) body from
          // memory: the platform's multipart reader, handed an empty body,
          // waits for a first part that never comes, and without a boundary
          // dies. With neither (every GET a client sends) the decoders read
          // nothing, and the platform's request serves as it is.
          : request.headers["content-type"] === undefined
          ? app
          : withMemoryBody(request, EMPTY, app)
    )

const EMPTY = new Uint8Array(0)

// `app` over `request` with `body` in memory, the only body its routes read.
const withMemoryBody = <E, R>(
  request: HttpServerRequest.HttpServerRequest,
  body: Uint8Array,
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R> =>
  Effect.provideService(
    app,
    HttpServerRequest.HttpServerRequest,
    internal.withBody(request, body, parseOrDie, refuseMultipart)
  )

// The body read into memory under the limits, then `app` over it; or the refusal.
const withBodyRead = <E, R>(
  limits: Limits,
  reader: BodyReader,
  request: HttpServerRequest.HttpServerRequest,
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R> => {
  const refuse = (response: HttpServerResponse.HttpServerResponse) => Effect.as(reader.refused(request), response)
  if (Number(request.headers["content-length"] ?? "0") > limits.maxBodyBytes) {
    return refuse(tooLarge(limits.maxBodyBytes))
  }
  // The platform runs the whole request uninterruptibly (only route
  // handlers are not), so the read must be made interruptible for the
  // timeout to cut it.
  return Effect.interruptible(reader.read(request, limits.maxBodyBytes)).pipe(
    Effect.timeout(limits.requestTimeout),
    Effect.matchEffect({
      onFailure: (reason) =>
        reason === "too-large"
          ? refuse(tooLarge(limits.maxBodyBytes))
          : reason === "client-closed"
          ? Effect.interrupt
          : refuse(timedOut(limits.requestTimeout)),
      onSuccess: (body) => withMemoryBody(request, body, app)
    })
  )
}
