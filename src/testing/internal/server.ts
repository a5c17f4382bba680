/**
 * The emulator over real HTTP on `@effect/platform-node`.
 *
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type Context, Effect, type Scope, Stream } from "effect"
import { createServer } from "node:http"
import type { Served, ServeOptions, WeChatEmulatorShape } from "../WeChatEmulator.js"
import * as Apis from "./apis.js"

/** @internal */
export const listen = <I>(
  tag: Context.Tag<I, WeChatEmulatorShape>,
  options: ServeOptions
): Effect.Effect<Served, HttpServerError.ServeError, Scope.Scope | I> =>
  Effect.gen(function*() {
    const emulator = yield* tag
    // A served emulator pushes verify tickets like WeChat, for as long as it serves.
    yield* emulator.component.runTicketSchedule
    const server = yield* NodeHttpServer.make(() => createServer(), {
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0
    })
    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://emulator")
      // Media uploads arrive as a stream (up to tens of MB), never read whole.
      const streamed = Apis.streamsBody(url.pathname)
      const body = streamed ? "" : yield* Effect.orElseSucceed(request.text, () => "")
      const contentType = request.headers["content-type"]
      const response = yield* emulator.handle({
        method: request.method,
        path: url.pathname,
        query: url.searchParams,
        body,
        ...(contentType === undefined ? {} : { contentType }),
        ...(streamed ? { stream: Stream.orDie(request.stream) } : {})
      })
      if (response._tag === "Drop") {
        // No HTTP answer at all: the client sees the connection go away.
        NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
        return HttpServerResponse.empty({ status: 599 })
      }
      if (response.stream !== undefined) {
        const length = response.headers?.["content-length"]
        return HttpServerResponse.stream(response.stream, {
          status: response.status,
          contentType: response.contentType,
          ...(length === undefined ? {} : { contentLength: Number(length) }),
          headers: response.headers ?? {}
        })
      }
      return HttpServerResponse.text(response.body, {
        status: response.status,
        contentType: response.contentType,
        headers: response.headers ?? {}
      })
    })
    yield* server.serve(app)
    const address = server.address
    const url = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
      : `http+unix://${address.path}`
    return { url, emulator }
  })
