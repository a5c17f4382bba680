/**
 * What a request may cost the server: a body of at most `maxBodyBytes`,
 * read within `requestTimeout`, JSON nested at most `MAX_JSON_DEPTH` deep.
 * A hostile client (a body that never ends, one that never arrives, one that
 * hangs up halfway) gets a JSON refusal or nothing, and leaves no fiber,
 * buffer or socket behind.
 *
 * @since 0.1.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Data, Duration, Effect } from "effect"
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
 * keep sending before the connection is cut.
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

const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const length = request.headers["content-length"]
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
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
 * length is over it). Not all there in time: `408`. Both close the
 * connection once the answer is out, since the rest of the body is still on
 * its way. A client that hangs up mid-body gets nothing: the request is
 * interrupted, which the request counter records as `499`. A client that
 * hangs up before its answer is written gets nothing either, and its
 * request ends instead of waiting on the closed connection.
 *
 * @since 0.1.0
 * @category utils
 */
export const middleware = (limits: Limits) => <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.zipRight(
      Effect.sync(() => internal.endWhenAbandoned(NodeHttpServerRequest.toServerResponse(request))),
      hasBody(request) ? withBodyRead(limits, request, app) : app
    ))

// The body read into memory under the limits, then `app` over it; or the refusal.
const withBodyRead = <E, R>(
  limits: Limits,
  request: HttpServerRequest.HttpServerRequest,
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R> => {
  const source = NodeHttpServerRequest.toIncomingMessage(request)
  const refuse = (response: HttpServerResponse.HttpServerResponse) =>
    Effect.sync(() => {
      internal.closeAfter(source, NodeHttpServerRequest.toServerResponse(request), Duration.toMillis(LINGER))
      return response
    })
  if (Number(request.headers["content-length"] ?? "0") > limits.maxBodyBytes) {
    return refuse(tooLarge(limits.maxBodyBytes))
  }
  // The platform runs the whole request uninterruptibly (only route
  // handlers are not), so the read must be made interruptible for the
  // timeout to cut it.
  return Effect.interruptible(internal.read(source, limits.maxBodyBytes)).pipe(
    Effect.timeout(limits.requestTimeout),
    Effect.matchEffect({
      onFailure: (reason) =>
        reason === "too-large"
          ? refuse(tooLarge(limits.maxBodyBytes))
          : reason === "client-closed"
          ? Effect.interrupt
          : refuse(timedOut(limits.requestTimeout)),
      onSuccess: (body) =>
        Effect.provideService(
          app,
          HttpServerRequest.HttpServerRequest,
          internal.withBody(request, body, parseOrDie, refuseMultipart)
        )
    })
  )
}
