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
import { type Context, Effect, type Scope } from "effect"
import { createServer } from "node:http"
import type { Served, ServeOptions, WeChatEmulatorShape } from "../WeChatEmulator.js"

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
      const body = yield* Effect.orElseSucceed(request.text, () => "")
      const response = yield* emulator.handle({
        method: request.method,
        path: url.pathname,
        query: url.searchParams,
        body
      })
      if (response._tag === "Drop") {
        // No HTTP answer at all: the client sees the connection go away.
        NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
        return HttpServerResponse.empty({ status: 599 })
      }
      return HttpServerResponse.text(response.body, { status: response.status, contentType: response.contentType })
    })
    yield* server.serve(app)
    const address = server.address
    const url = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
      : `http+unix://${address.path}`
    return { url, emulator }
  })
