/**
 * The Node mechanics under the server's request limits and proxy: reading a
 * request body under a byte limit without destroying the socket the answer
 * must go out on, the gentle close after a refusal, and the end of an answer
 * whose client is gone. Only the Node edge (`NodeServer`) and the proxy,
 * which streams bodies through Node, use them.
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Duration, Effect } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as RequestLimits from "../RequestLimits.js"

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
export function read(source: IncomingMessage, maxBytes: number): Effect.Effect<Uint8Array, Abandoned>
export function read(
  source: IncomingMessage,
  maxBytes: number,
  timeoutMillis: number
): Effect.Effect<Uint8Array, Abandoned | "timeout">
export function read(
  source: IncomingMessage,
  maxBytes: number,
  timeoutMillis?: number
): Effect.Effect<Uint8Array, Abandoned | "timeout"> {
  return Effect.async<Uint8Array, Abandoned | "timeout">((resume) => {
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
 * Ends `response` as soon as its connection closes before it was sent, and
 * releases the platform's wait for an answer its connection never carried.
 * The platform ends each answer with `response.end(body, callback)` and
 * waits, uninterruptibly, for `callback`, which Node calls on 'finish' only:
 * a connection that closes first never brings it, and the request's fiber,
 * with the request and the answer it holds, would wait for good. Two ways
 * there: the client hangs up before the answer is written (the answer is
 * ended here, so the platform writes nothing and waits for nothing), or
 * after it was handed to Node but before Node could send it (a keep-alive
 * client sends its next request as a refusal half-closes the connection:
 * Node still reads and answers it, into a connection that can no longer
 * carry the answer, until the linger closes it); then the waiting callback
 * is called here, as Node would once the answer was out.
 */
export const endWhenAbandoned = (response: ServerResponse): void => {
  const waiting = new Set<() => void>()
  // `end`'s overloads cannot be implemented one by one: the casts see it as
  // a method taking any arguments, the last one maybe its callback.
  const end = response.end.bind(response) as (...args: Array<unknown>) => ServerResponse
  response.end = ((...args: Array<unknown>): ServerResponse => {
    const callback = args.at(-1)
    if (typeof callback !== "function") return end(...args)
    const once = () => {
      if (waiting.delete(once)) callback()
    }
    waiting.add(once)
    return end(...args.slice(0, -1), once)
  }) as ServerResponse["end"]
  const onClose = () => {
    if (!response.writableEnded) response.end()
    for (const pending of waiting) pending()
  }
  // Closed before this ran (the client left while the request was queued): at once.
  if (response.closed) onClose()
  else response.once("close", onClose)
}

/**
 * `RequestLimits`' body reader on Node: the body read off the socket (which
 * must survive a 413 to carry it), the connection half-closed after a
 * refusal, while a client still sending gets `LINGER` to stop.
 */
export const bodyReader: RequestLimits.BodyReader = {
  hasBody: RequestLimits.declaresBody,
  read: (request, maxBytes) => read(NodeHttpServerRequest.toIncomingMessage(request), maxBytes),
  refused: (request) =>
    Effect.sync(() =>
      closeAfter(
        NodeHttpServerRequest.toIncomingMessage(request),
        NodeHttpServerRequest.toServerResponse(request),
        Duration.toMillis(RequestLimits.LINGER)
      )
    )
}

/** `endWhenAbandoned` for the answer of a request served on Node. */
export const endWhenClientGoes = (request: HttpServerRequest.HttpServerRequest): void =>
  endWhenAbandoned(NodeHttpServerRequest.toServerResponse(request))
