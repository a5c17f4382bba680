/**
 * An `HttpClient` answered in-process by an emulator: no sockets, so
 * `TestClock` alone drives every expiry and every `Slow` fault.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { type Context, Effect, Layer } from "effect"
import type { EmulatorRequest, WeChatEmulatorShape } from "../WeChatEmulator.js"

const decoder = new TextDecoder()

const bodyText = (request: HttpClientRequest.HttpClientRequest): string => {
  const body = request.body
  switch (body._tag) {
    case "Uint8Array":
      return decoder.decode(body.body)
    case "Raw":
      return typeof body.body === "string" ? body.body : ""
    default:
      // WeChat's endpoints take JSON or nothing; form and stream bodies read as empty.
      return ""
  }
}

/** @internal */
export const layer = <I>(tag: Context.Tag<I, WeChatEmulatorShape>): Layer.Layer<HttpClient.HttpClient, never, I> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(tag, (emulator) =>
      HttpClient.make((request, url) => {
        const incoming: EmulatorRequest = {
          method: request.method,
          path: url.pathname,
          query: url.searchParams,
          body: bodyText(request)
        }
        return Effect.flatMap(emulator.handle(incoming), (response) =>
          response._tag === "Drop"
            ? Effect.fail(
              new HttpClientError.RequestError({
                request,
                reason: "Transport",
                description: `emulated ${response.reason}`
              })
            )
            : Effect.succeed(HttpClientResponse.fromWeb(
              request,
              new Response(response.body, {
                status: response.status,
                headers: { "content-type": response.contentType }
              })
            )))
      }))
  )
