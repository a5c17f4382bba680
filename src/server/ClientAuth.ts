/**
 * Bearer-key authentication of business servers on every `/v1` route, and
 * the per-key app scope (`CLIENT_KEYS` entries of the form `key@wxAPPID1+wxAPPID2`).
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { detail, type NotFound, Unauthorized } from "../api/ApiError.js"
import { ClientAuth } from "../api/ClientAuth.js"
import type { FamilyRoutes } from "../FamilyRoutes.js"
import * as CredentialAnswer from "../internal/credentialAnswer.js"
import * as Families from "./Families.js"
import type { ClientKey } from "./ServerConfig.js"

/**
 * The 404 body of an app this server does not serve (or not to this key).
 *
 * @since 0.1.0
 * @category utils
 */
export const unknownApp: (appId: string) => NotFound = CredentialAnswer.unknownApp

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

/**
 * The client keys of the credential registry, added and revoked at run
 * time. The registry keeps only their SHA-256: a key is looked up by the
 * digest of what was presented (the digest of a 256-bit key tells an
 * attacker timing nothing to use).
 *
 * @since 0.3.0
 * @category models
 */
export interface RegistryKeysShape {
  /** The key whose SHA-256 (hex) is `hash`, if the registry holds one now. */
  readonly byHash: (hash: string) => ClientKey | undefined
  /** Changes whenever a key is revoked, so a key a connection verified earlier is looked up again. */
  readonly epoch: () => number
}

/**
 * @since 0.3.0
 * @category tags
 */
export class RegistryKeys extends Context.Tag("effect-wechat-token/RegistryKeys")<RegistryKeys, RegistryKeysShape>() {}

const PREFIX = /^Bearer /i
// The platform's bearer decoder cuts this many characters, whatever they are.
const SCHEME_LENGTH = "Bearer ".length

/**
 * The one check of a request's credentials, shared by the middleware, the
 * proxy and the server's fast path so they cannot disagree: `key` reads the
 * raw `Authorization` header (the key it presents, or why it is refused) and
 * `allows` says whether that key may ask for an app.
 *
 * @since 0.3.0
 * @category models
 */
export interface Check {
  readonly key: (header: string | undefined) => ClientKey | Unauthorized
  /** `key` for a request on `connection` (its socket), remembered there (see `perConnection`). */
  readonly keyOn: (connection: object, header: string | undefined) => ClientKey | Unauthorized
  /** The key `presented` is, bare (no scheme): where a WeChat-shaped call sends it in place of a secret. */
  readonly match: (presented: string) => ClientKey | undefined
  /** `appId` as the path spells it; WeCom routes as `corpid/agent`. */
  readonly allows: (key: ClientKey, appId: string) => boolean
}

/**
/**
 * `verify` remembered per connection (its socket): a credential verified on
 * a keep-alive connection is remembered with the exact text that presented
 * it, and the next request there with the same text skips the verification
 * while `epoch` is unchanged (a revoked key must not live on in a keep-alive
 * connection). Comparing a later text with that one is not a comparison
 * with a secret: the connection's own client sent both, so `===` tells it
 * nothing it does not know; only what `accepted` is remembered.
 *
 * @since 0.3.0
 * @category constructors
 */
export const perConnection = <A>(
  verify: (presented: string) => A,
  accepted: (verified: A) => boolean,
  epoch: () => number = () => 0
) => {
  const verified = new WeakMap<object, { readonly presented: string; readonly value: A; readonly epoch: number }>()
  return (connection: object, presented: string): A => {
    const known = verified.get(connection)
    const now = epoch()
    if (known !== undefined && known.presented === presented && known.epoch === now) return known.value
    const value = verify(presented)
    if (accepted(value)) verified.set(connection, { presented, value, epoch: now })
    return value
  }
}

/**
 * The check over the given keys, and over the registry's when given; a bare
 * `Redacted` key may ask for every app.
 *
 * @since 0.3.0
 * @category constructors
 */
export const check = (
  keys: ReadonlyArray<ClientKey | Redacted.Redacted<string>>,
  registry?: RegistryKeysShape
): Check => {
  const configured = matcher(keys.map((entry) => Redacted.isRedacted(entry) ? { key: entry } : entry))
  const match = registry === undefined
    ? configured
    : (presented: string) => configured(presented) ?? registry.byHash(digest(presented).toString("hex"))
  const epoch = registry === undefined ? () => 0 : registry.epoch
  const missing = new Unauthorized(detail("unauthorized", "send Authorization: Bearer <client key>"))
  const invalid = new Unauthorized(detail("unauthorized", "the client key is not valid"))
  const key = (header: string | undefined): ClientKey | Unauthorized => {
    if (header === undefined || header === "") return missing
    // The scheme is checked here against the raw header; the key is what
    // follows it, cut as the platform's decoder cuts it.
    return (PREFIX.test(header) ? match(header.slice(SCHEME_LENGTH)) : undefined) ?? invalid
  }
  const keyOn = perConnection(key, (found) => !(found instanceof Unauthorized), epoch)
  return {
    key,
    keyOn: (connection, header) => header === undefined ? missing : keyOn(connection, header),
    match,
    allows: (key, appId) => key.apps === undefined || key.apps.some((allowed) => allowed === appId)
  }
}

/**
 * Who asks an ops route (`/readyz`, `/metrics`): anyone without a key gets
 * the verdict and totals, nothing naming an app; a holder of one of `keys`
 * gets each credential. Any other key is refused, a client key included: a
 * business server has no business learning which other apps the server
 * holds. `keys` are every key that may read ops detail (`OPS_KEYS`), so a
 * further kind of key joins by being listed.
 *
 * @since 0.3.0
 * @category constructors
 */
export const opsCheck = (
  keys: ReadonlyArray<Redacted.Redacted<string>>
): (header: string | undefined) => "anonymous" | "operator" | Unauthorized => {
  const match = matcher(keys.map((key) => ({ key })))
  const invalid = new Unauthorized(
    detail("unauthorized", "not an ops key (OPS_KEYS); send no key for the verdict and totals")
  )
  return (header) => {
    if (header === undefined || header === "") return "anonymous"
    return PREFIX.test(header) && match(header.slice(SCHEME_LENGTH)) !== undefined ? "operator" : invalid
  }
}

/**
 * The middleware over the given keys, and the `RegistryKeys` in context if
 * any; a bare `Redacted` key may ask for every app.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (keys: ReadonlyArray<ClientKey | Redacted.Redacted<string>>): Layer.Layer<ClientAuth> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.all([Effect.serviceOption(RegistryKeys), Families.Families]),
      ([registry, families]) => layerOver(check(keys, Option.getOrUndefined(registry)), families)
    )
  )

const layerOver = (
  auth: Check,
  families: ReadonlyArray<Pick<FamilyRoutes<unknown>, "scopeOf">>
): Layer.Layer<ClientAuth> => {
  // What a key's scope names for a route: the family whose route it is says.
  const scopeOf = (params: Readonly<Record<string, string | undefined>>): string => {
    for (const family of families) {
      const scope = family.scopeOf(params)
      if (scope !== undefined) return scope
    }
    return ""
  }
  const { allows, key: keyOf } = auth
  return Layer.succeed(
    ClientAuth,
    ClientAuth.of({
      // The platform's decoded token is the same cut of the same header:
      // the check reads the header itself, so the scheme is checked too.
      bearer: () =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
          const key = keyOf(request.headers.authorization)
          if (key instanceof Unauthorized) return Effect.fail(key)
          if (key.apps === undefined) return Effect.void
          // Every /v1 route names its owner in the path; the scope is checked
          // before the path is decoded, on the raw segments.
          return Effect.flatMap(HttpRouter.RouteContext, ({ params }) => {
            const appId = scopeOf(params)
            return allows(key, appId) ? Effect.void : Effect.fail(unknownApp(appId))
          })
        })
    })
  )
}
