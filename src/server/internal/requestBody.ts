/**
 * The mechanics under `RequestLimits`: reading a Node request body under a
 * byte limit without destroying the socket the answer must go out on, a
 * request that serves that body from memory, a JSON parse that cannot
 * overflow the stack, and the gentle close after a refusal.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect, Stream } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"

/** Why a body was given up. */
export type Abandoned = "too-large" | "client-closed"

/**
 * The whole body of `source`, or why it was given up. Crossing the limit (or
 * being interrupted by the deadline) stops collecting at once, dropping the
 * chunks held so far, but keeps the stream flowing, so Node reads and
 * discards the rest instead of leaving it in the socket: destroying the
 * stream, as the platform's reader does, destroys the socket and the 413
 * with it.
 *
 * With `timeoutMillis`, a body not all there by then is given up as
 * `timeout`. The proxy reads a body on every call: a timer here costs a
 * microsecond, where `Effect.timeout` forks a fiber and races it (~80 µs of
 * CPU a call, measured). The deadline is on a Node socket, like `closeAfter`'s.
 */
export const read = (
  source: IncomingMessage,
  maxBytes: number,
  timeoutMillis?: number
): Effect.Effect<Uint8Array, Abandoned | "timeout"> =>
  Effect.async<Uint8Array, Abandoned | "timeout">((resume) => {
    let chunks: Array<Buffer> = []
    let bytes = 0
    const timer = timeoutMillis === undefined ? undefined : setTimeout(() => {
      stop()
      resume(Effect.fail("timeout"))
    }, timeoutMillis)
    const stop = () => {
      clearTimeout(timer)
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("close", onClose)
      chunks = []
      // Without a 'data' listener a stream stops flowing; this one must go on, into the void.
      source.resume()
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBytes) {
        stop()
        resume(Effect.fail("too-large"))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      const body = Buffer.concat(chunks, bytes)
      stop()
      resume(Effect.succeed(body))
    }
    // 'close' without 'end' first: the client went away mid-body.
    const onClose = () => {
      stop()
      resume(Effect.fail("client-closed"))
    }
    // The client may have gone before this fiber got to read.
    if (source.destroyed) {
      clearTimeout(timer)
      resume(Effect.fail("client-closed"))
      return
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("close", onClose)
    return Effect.sync(stop)
  })

/**
 * `request` with its body already in memory. `Object.create` keeps every
 * member of the platform's request (url, headers, the Node source the answer
 * is written through) and shadows only the body accessors, so the router and
 * the payload decoder read `body` and never the socket again. Multipart is
 * refused: no route takes it, and the platform would spool it to disk.
 */
export const withBody = (
  request: HttpServerRequest.HttpServerRequest,
  body: Uint8Array,
  parseJson: (text: string) => Effect.Effect<unknown>,
  refuseMultipart: Effect.Effect<never>
): HttpServerRequest.HttpServerRequest => {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")
  const accessors: PropertyDescriptorMap = {
    text: { value: Effect.succeed(text) },
    json: { value: Effect.suspend(() => parseJson(text)) },
    arrayBuffer: { value: Effect.sync(() => body.slice().buffer) },
    urlParamsBody: { value: Effect.sync(() => UrlParams.fromInput(new URLSearchParams(text))) },
    stream: { value: Stream.succeed(body) },
    multipart: { value: refuseMultipart },
    multipartStream: { value: Stream.fromEffect(refuseMultipart) },
    modify: {
      value: (options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]) =>
        withBody(request.modify(options), body, parseJson, refuseMultipart)
    }
  }
  // `Object.create` is typed `any`; the descriptors above cover exactly the
  // members that read the body, everything else is the request itself.
  const buffered: HttpServerRequest.HttpServerRequest = Object.create(request, accessors)
  return buffered
}

const OPEN_BRACE = 123
const OPEN_BRACKET = 91
const CLOSE_BRACE = 125
const CLOSE_BRACKET = 93
const QUOTE = 34
const BACKSLASH = 92

/**
 * Whether no array or object in `text` nests deeper than `maxDepth`. One
 * pass outside strings: cheap next to `JSON.parse`, and what keeps a deeply
 * nested body from overflowing the stack of whatever walks the parsed value
 * (the schema decoder and its error messages do, recursively).
 */
export const nestsWithin = (text: string, maxDepth: number): boolean => {
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (inString) {
      if (char === BACKSLASH) index++
      else if (char === QUOTE) inString = false
    } else if (char === QUOTE) {
      inString = true
    } else if (char === OPEN_BRACE || char === OPEN_BRACKET) {
      if (++depth > maxDepth) return false
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      depth--
    }
  }
  return true
}

/**
 * Once `response` is sent, half-closes the connection and waits at most
 * `lingerMillis` for the client to stop sending before destroying the
 * socket. Closing at once with unread bytes in the socket makes the kernel
 * send a reset, and a client still writing its body (fetch, curl) reports
 * that instead of the answer it was sent. Node owns the socket, so this is a
 * Node timer, not an Effect one.
 */
export const closeAfter = (source: IncomingMessage, response: ServerResponse, lingerMillis: number): void => {
  // Node detaches the socket from the response as it finishes: take it from the request now.
  const socket = source.socket
  response.once("finish", () => {
    if (socket.destroyed) return
    socket.end()
    const timer = setTimeout(() => socket.destroy(), lingerMillis)
    timer.unref()
    socket.once("close", () => clearTimeout(timer))
  })
}

/**
 * Ends `response` as soon as its connection closes before it was sent. The
 * platform writes an answer and then waits for Node to confirm it was sent;
 * into a closed connection Node never does, and the request's fiber (which
 * the platform runs uninterruptibly at that point) would wait forever. An
 * ended response is one the platform does not write at all.
 */
export const endWhenAbandoned = (response: ServerResponse): void => {
  response.once("close", () => {
    if (!response.writableEnded) response.end()
  })
}
