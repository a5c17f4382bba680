/**
 * Bearer-key authentication of business servers on every `/v1` route.
 *
 * @since 0.1.0
 */
import { HttpApiMiddleware, HttpApiSecurity, HttpServerRequest } from "@effect/platform"
import { createHash, timingSafeEqual } from "node:crypto"
import { Effect, Layer, Redacted } from "effect"
import { detail, Unauthorized } from "./ApiError.js"

/**
 * The middleware tag: `Authorization: Bearer <client key>`, one of `CLIENT_KEYS`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ClientAuth extends HttpApiMiddleware.Tag<ClientAuth>()("effect-wechat-token/ClientAuth", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest()

/**
 * True when `presented` is one of `keys`. Compares SHA-256 digests with
 * `timingSafeEqual`, so neither the content nor the length of a key leaks
 * through timing; every key is compared, so neither does which one matched.
 *
 * @since 0.1.0
 */
export const matcher = (keys: ReadonlyArray<Redacted.Redacted<string>>) => {
  const digests = keys.map((key) => digest(Redacted.value(key)))
  return (presented: string): boolean => {
    const candidate = digest(presented)
    let matched = false
    for (const known of digests) matched = timingSafeEqual(candidate, known) || matched
    return matched
  }
}

const PREFIX = /^Bearer /i

/**
 * The middleware over the given keys.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (keys: ReadonlyArray<Redacted.Redacted<string>>): Layer.Layer<ClientAuth> => {
  const matches = matcher(keys)
  const unauthorized = (message: string) => Effect.fail(new Unauthorized(detail("unauthorized", message)))
  return Layer.succeed(
    ClientAuth,
    ClientAuth.of({
      // The platform's bearer decoder cuts 7 characters whatever they are, so
      // the scheme itself is checked here against the raw header.
      bearer: (token) =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const header = request.headers.authorization
          if (header === undefined || header === "") {
            return unauthorized("send Authorization: Bearer <client key>")
          }
          if (!PREFIX.test(header) || !matches(Redacted.value(token))) {
            return unauthorized("the client key is not valid")
          }
          return Effect.void
        })
    })
  )
}
