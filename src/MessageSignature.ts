/**
 * The message-server signature: how WeChat proves a callback comes from it.
 * When an administrator saves the server URL, WeChat calls
 * `GET callback?signature&timestamp&nonce&echostr` and expects `echostr`
 * back; every later push carries the same `signature/timestamp/nonce`.
 *
 * The `token` here is the verification token typed into the WeChat admin
 * console, not the access token.
 *
 * @since 0.1.0
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"

/**
 * What WeChat sends and the token both sides know.
 *
 * @since 0.1.0
 * @category models
 */
export interface SignedParams {
  readonly token: Redacted.Redacted<string>
  readonly signature: string
  readonly timestamp: string
  readonly nonce: string
}

/**
 * The signature WeChat computes: SHA-1 (lowercase hex) of `token`,
 * `timestamp` and `nonce` sorted as strings and concatenated.
 *
 * @since 0.1.0
 * @category utils
 */
export const sign = (params: Omit<SignedParams, "signature">): string =>
  createHash("sha1")
    .update([Redacted.value(params.token), params.timestamp, params.nonce].sort().join(""), "utf8")
    .digest("hex")

/**
 * True when `signature` is the one WeChat would send. The comparison takes
 * the same time wherever the strings differ, so a caller cannot find the
 * signature byte by byte; only the (public) length is compared directly.
 *
 * @since 0.1.0
 * @category utils
 */
export const verify = (params: SignedParams): boolean => {
  const expected = Buffer.from(sign(params), "utf8")
  const given = Buffer.from(params.signature, "utf8")
  return expected.length === given.length && timingSafeEqual(expected, given)
}

const PARAMS = ["signature", "timestamp", "nonce", "echostr"] as const

const plain = (status: number, body: string) =>
  HttpServerResponse.text(body, {
    status,
    // `echostr` comes from the query string: never let a browser read it as HTML.
    headers: { "x-content-type-options": "nosniff", "cache-control": "no-store" }
  })

/**
 * The handler of the message-server URL check, for any router or as an
 * `HttpApp` of its own: `200 text/plain <echostr>` when the signature is
 * valid, `401` when it is not, `400` when a parameter is missing.
 *
 * @example
 * ```ts
 * import * as HttpRouter from "@effect/platform/HttpRouter"
 * import { Redacted } from "effect"
 * import { MessageSignature } from "effect-wechat-token"
 *
 * export const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/wechat/callback", MessageSignature.verificationHandler({ token: Redacted.make("my-token") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const verificationHandler = (
  options: { readonly token: Redacted.Redacted<string> }
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const query = Option.match(HttpServerRequest.toURL(request), {
      onNone: () => new URLSearchParams(),
      onSome: (url) => url.searchParams
    })
    const missing = PARAMS.filter((name) => !query.has(name))
    if (missing.length > 0) {
      return plain(
        400,
        `missing query parameter(s): ${missing.join(", ")}; WeChat sends signature, timestamp, nonce and echostr`
      )
    }
    const valid = verify({
      token: options.token,
      signature: query.get("signature") ?? "",
      timestamp: query.get("timestamp") ?? "",
      nonce: query.get("nonce") ?? ""
    })
    return valid
      ? plain(200, query.get("echostr") ?? "")
      : plain(
        401,
        "signature does not match: check that the verification token equals the one in the WeChat admin console"
      )
  })
