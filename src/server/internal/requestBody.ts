/**
 * The mechanics under `RequestLimits` that hold on any runtime: a request
 * that serves its body from memory, and a JSON parse that cannot overflow
 * the stack. Node's own (reading a socket without destroying it, the gentle
 * close after a refusal) are in `nodeRequest`.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect, Stream } from "effect"

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
  const text = new TextDecoder().decode(body)
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
