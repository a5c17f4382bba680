/**
 * Bearer-key authentication of business servers on every `/v1` route, and
 * the per-key app scope (`CLIENT_KEYS` entries of the form `key@wxAPPID1+wxAPPID2`).
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { detail, NotFound, Unauthorized } from "../api/ApiError.js"
import { ClientAuth } from "../api/ClientAuth.js"
import type { ClientKey } from "./ServerConfig.js"

/**
 * The 404 body of an app this server does not serve (or not to this key).
 *
 * @since 0.1.0
 * @category utils
 */
export const unknownApp = (appId: string): NotFound =>
  new NotFound(detail("unknown_app", `app ${appId} is not configured on this server`))

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest()

/**
 * The entry of `keys` that `presented` is, if any. Compares SHA-256 digests
 * with `timingSafeEqual`, so neither the content nor the length of a key
 * leaks through timing; every key is compared, so neither does which one matched.
 *
 * @since 0.1.0
 * @category utils
 */
export const matcher = (keys: ReadonlyArray<ClientKey>) => {
  const digests = keys.map((entry) => ({ entry, digest: digest(Redacted.value(entry.key)) }))
  return (presented: string): ClientKey | undefined => {
    const candidate = digest(presented)
    let matched: ClientKey | undefined
    for (const known of digests) if (timingSafeEqual(candidate, known.digest)) matched = known.entry
    return matched
  }
}

const PREFIX = /^Bearer /i

/**
 * The middleware over the given keys; a bare `Redacted` key may ask for every app.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (keys: ReadonlyArray<ClientKey | Redacted.Redacted<string>>): Layer.Layer<ClientAuth> => {
  const match = matcher(keys.map((entry) => Redacted.isRedacted(entry) ? { key: entry } : entry))
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
          const key = PREFIX.test(header) ? match(Redacted.value(token)) : undefined
          if (key === undefined) return unauthorized("the client key is not valid")
          if (key.apps === undefined) return Effect.void
          // Every /v1 route names its app in the path; the scope is checked
          // before the path is decoded, on the raw segment.
          return Effect.flatMap(HttpRouter.RouteContext, ({ params }) => {
            // WeCom routes name the app as corpId and agent: scoped as `corpid/agent`.
            // A component's routes, its authorizers' included, are scoped by the component.
            const appId = params["componentAppId"] ?? params["appId"] ??
              `${params["corpId"] ?? ""}/${params["agent"] ?? ""}`
            return key.apps?.some((allowed) => allowed === appId) === true
              ? Effect.void
              : Effect.fail(unknownApp(appId))
          })
        })
    })
  )
}
