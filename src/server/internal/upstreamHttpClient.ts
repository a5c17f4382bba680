/**
 * The `HttpClient` the server gives the engine for its calls to WeChat:
 * Node's own `http`/`https` on keep-alive agents, each call one
 * `Effect.async` (the body written, the answer's head awaited) and the
 * answer's body one more when it is read.
 *
 * Why not `@effect/platform-node`'s `NodeHttpClient` as is: per call it
 * forks two fibers (the body sent and the answer awaited side by side),
 * makes an `AbortController` and wraps the answer to abort it on
 * interruption: over 200 fiber-runtime steps a call, a quarter of what a
 * cold start's herd spends on each fetch in all. The platform's `fetch`
 * client costs more still (undici, web streams). Every engine call's body
 * is in memory; a streamed or form body goes through the platform's client
 * on the same agents.
 *
 * Like every `node:http` client it never follows a redirect (a 3xx is
 * answered as the error it is, the secret in the query string never sent to
 * the host it names); timeouts and error details come from
 * `internal/upstream.ts`, whatever the client: interrupting a call destroys
 * its request, or its answer while the body is read. Library users provide
 * their own `HttpClient` as before.
 *
 * @internal
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect, Either, Inspectable, Layer, Option, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"

// An answer dropped unread (an error status the caller does not read) would
// keep its socket from the pool: it is destroyed once collected.
const unread = new FinalizationRegistry<Http.IncomingMessage>((source) => {
  if (!source.complete) source.destroy()
})

// The whole body, at most `maxBytes`; interruption destroys the answer.
const readAll = (
  source: Http.IncomingMessage,
  onError: (cause: unknown) => HttpClientError.ResponseError,
  maxBytes: number | undefined
): Effect.Effect<Buffer, HttpClientError.ResponseError> =>
  Effect.async((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const settle = (result: Effect.Effect<Buffer, HttpClientError.ResponseError>) => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onFailure)
      source.off("close", onClose)
      resume(result)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (maxBytes !== undefined && size > maxBytes) {
        source.destroy()
        settle(Effect.fail(onError(new Error(`the body is larger than ${maxBytes} bytes`))))
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => settle(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    const onFailure = (cause: unknown) => settle(Effect.fail(onError(cause)))
    const onClose = () => onFailure(new Error("the connection closed before the body ended"))
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onFailure)
    source.once("close", onClose)
    return Effect.sync(() => {
      source.off("data", onData)
      source.destroy()
    })
  })

class Answer extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId
  // Read once: every reader after the first gets the same bytes.
  private body: Buffer | undefined

  constructor(readonly request: HttpClientRequest.HttpClientRequest, private readonly source: Http.IncomingMessage) {
    super()
  }

  private readonly onError = (cause: unknown) =>
    new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })

  get status(): number {
    return this.source.statusCode ?? 0
  }

  get headers(): Headers.Headers {
    return Headers.fromInput(this.source.headers)
  }

  get cookies(): Cookies.Cookies {
    const header = this.source.headers["set-cookie"]
    return header === undefined ? Cookies.empty : Cookies.fromSetCookie(header)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.source.socket?.remoteAddress)
  }

  get bytes(): Effect.Effect<Buffer, HttpClientError.ResponseError> {
    const read = this.body
    if (read !== undefined) return Effect.succeed(read)
    return IncomingMessage.MaxBodySize.pipe(
      Effect.flatMap((limit) => readAll(this.source, this.onError, Option.getOrUndefined(Option.map(limit, Number)))),
      Effect.tap((bytes) => {
        this.body = bytes
      })
    )
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(
      this.bytes,
      (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    )
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.map(this.bytes, (bytes) => bytes.toString("utf8"))
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(
      this.text,
      (text) => Effect.try({ try: (): unknown => text === "" ? null : JSON.parse(text), catch: this.onError })
    )
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.flatMap(
      this.text,
      (text) => Effect.try({ try: () => UrlParams.fromInput(new URLSearchParams(text)), catch: this.onError })
    )
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    const read = this.body
    return read !== undefined ? Stream.succeed(read) : NodeStream.fromReadable(() => this.source, this.onError)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.flatMap(this.bytes, (bytes) =>
      Effect.tryPromise({
        try: () => new Response(bytes, { headers: this.source.headers as Record<string, string> }).formData(),
        catch: this.onError
      }))
  }

  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status
    })
  }
}

interface Agents {
  readonly http: Http.Agent
  readonly https: Https.Agent
}

const send = (
  agents: Agents,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> => {
  const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  if (Either.isLeft(url)) {
    return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
  }
  const { body } = request
  return Effect.async((resume) => {
    const options = { method: request.method, headers: request.headers }
    let nodeRequest: Http.ClientRequest
    try {
      nodeRequest = url.right.protocol === "https:"
        ? Https.request(url.right, { ...options, agent: agents.https })
        : Http.request(url.right, { ...options, agent: agents.http })
    } catch (cause) {
      // Node refuses what it cannot send (another protocol, a header with a line break) by throwing.
      return resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Encode", cause })))
    }
    let answered = false
    // Kept after the answer, so an error the request emits later has a listener.
    nodeRequest.on("error", (cause) => {
      if (answered) return
      answered = true
      resume(Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause })))
    })
    nodeRequest.once("response", (source) => {
      answered = true
      const answer = new Answer(request, source)
      unread.register(answer, source)
      resume(Effect.succeed(answer))
    })
    nodeRequest.end(body._tag === "Uint8Array" || body._tag === "Raw" ? body.body : undefined)
    return Effect.sync(() => {
      if (!answered) nodeRequest.destroy()
    })
  })
}

/** The client over `agents`; a streamed or form body goes through `streaming`. */
const make = (agents: Agents, streaming: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    Effect.flatMap((request) =>
      request.body._tag === "Stream" || request.body._tag === "FormData"
        ? streaming.execute(request)
        : send(agents, request)
    ),
    Effect.succeed
  )

/** The client, its agents closed with the layer's scope. */
export const layer: Layer.Layer<HttpClient.HttpClient> = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(
    Effect.zip(NodeHttpClient.HttpAgent, NodeHttpClient.make),
    ([agents, streaming]) => make(agents, streaming)
  )
).pipe(
  // A new `Agent`'s default is a connection per call; WeChat's calls reuse theirs.
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))
)
