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
import { type Context, Effect, Layer, Stream } from "effect"
import type { EmulatorRequest, WeChatEmulatorShape } from "../WeChatEmulator.js"
import * as Apis from "./apis.js"

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

// The APIs that take bytes (media uploads) get the body as a stream, whatever
// form it was given in, with its type (a form's carries the boundary its encoding chose).
const bytesOf = (
  request: HttpClientRequest.HttpClientRequest
): { readonly stream: Stream.Stream<Uint8Array>; readonly contentType: string | undefined } => {
  const body = request.body
  const declared = request.headers["content-type"] ?? ("contentType" in body ? body.contentType : undefined)
  switch (body._tag) {
    case "Uint8Array":
      return { stream: Stream.make(body.body), contentType: declared }
    case "Raw":
      return {
        stream: typeof body.body === "string" ? Stream.make(new TextEncoder().encode(body.body)) : Stream.empty,
        contentType: declared
      }
    case "Stream":
      return { stream: Stream.orDie(body.stream), contentType: declared }
    case "FormData": {
      const encoded = new Response(body.formData)
      const web = encoded.body
      return {
        stream: web === null ? Stream.empty : Stream.orDie(Stream.fromReadableStream(() => web, (error) => error)),
        contentType: encoded.headers.get("content-type") ?? undefined
      }
    }
    case "Empty":
      return { stream: Stream.empty, contentType: declared }
  }
}

/** @internal */
export const layer = <I>(tag: Context.Tag<I, WeChatEmulatorShape>): Layer.Layer<HttpClient.HttpClient, never, I> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(tag, (emulator) =>
      HttpClient.make((request, url) => {
        const streamed = Apis.streamsBody(url.pathname) ? bytesOf(request) : undefined
        const contentType = streamed?.contentType ?? request.headers["content-type"] ??
          ("contentType" in request.body ? request.body.contentType : undefined)
        const incoming: EmulatorRequest = {
          method: request.method,
          path: url.pathname,
          query: url.searchParams,
          body: Apis.streamsBody(url.pathname) ? "" : bodyText(request),
          ...(contentType === undefined ? {} : { contentType }),
          ...(streamed === undefined ? {} : { stream: streamed.stream })
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
              new Response(response.stream === undefined ? response.body : Stream.toReadableStream(response.stream), {
                status: response.status,
                headers: { ...response.headers, "content-type": response.contentType }
              })
            )))
      }))
  )
