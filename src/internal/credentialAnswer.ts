/**
 * How the `/v1` routes of every family answer: a held credential with its
 * lifetime, an unknown owner as `404`, any other failure as `503`, a page
 * URL the JS-SDK would refuse as `400`. Shared by the families' routes and
 * the server (the fast path writes the same token body), so it lives below
 * both.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import type { AccessTokenError, Credential } from "../AccessToken.js"
import { BadRequest, detail, NotFound, type TokenUnavailable, tokenUnavailable } from "../api/ApiError.js"
import type { InvalidPageUrl } from "../JsSdk.js"

/** The 404 body of an owner this server does not serve (or not to this key). */
export const unknownApp = (appId: string): NotFound =>
  new NotFound(detail("unknown_app", `app ${appId} is not configured on this server`))

// Total over any number a record may hold (a store written before lifetimes
// were bounded can hold 1e16 or null): `Date` covers ±8.64e15 ms and throws
// past it, and a non-number is treated as already ended.
const MAX_DATE_MILLIS = 8.64e15
const dateMillis = (expiresAt: number, now: number): number =>
  Number.isFinite(expiresAt) ? Math.min(MAX_DATE_MILLIS, Math.max(-MAX_DATE_MILLIS, expiresAt)) : now

/** Whole seconds `credential` has left at `now`, never negative. */
export const secondsLeft = (credential: Credential, now: number): number =>
  Math.max(0, Math.floor((dateMillis(credential.expiresAt, now) - now) / 1000))

/**
 * `expires_in` (whole seconds left, never negative) and `expires_at` (ISO
 * 8601) of a credential at `now`: the lifetime part of every answer that
 * carries a token or ticket.
 */
export const lifetime = (credential: Credential, now: number) => ({
  expires_in: secondsLeft(credential, now),
  expires_at: new Date(dateMillis(credential.expiresAt, now)).toISOString()
})

/** The body of `GET /v1/apps/{appId}/access-token`, written by both the Effect handler and the fast path. */
export const accessTokenBody = (credential: Credential, now: number) => ({
  access_token: credential.value,
  ...lifetime(credential, now)
})

/** An engine failure as the routes answer it: an unknown owner is a 404, anything else a 503. */
export const toApiError = (error: AccessTokenError): NotFound | TokenUnavailable =>
  error._tag === "UnknownApp"
    ? unknownApp(error.appId)
    : tokenUnavailable(error)

/** The credential as `body(value)` plus its `expires_in` and `expires_at`. */
export const answer = <A>(credential: Effect.Effect<Credential, AccessTokenError>, body: (value: string) => A) =>
  Effect.flatMap(
    Effect.mapError(credential, toApiError),
    (held) => Effect.map(Clock.currentTimeMillis, (now) => ({ ...body(held.value), ...lifetime(held, now) }))
  )

/** Names the rule, not the URL: a 400 echoes no input. `call` is what the page calls (`wx.config`). */
export const pageUrlError = (error: InvalidPageUrl, call = "wx.config") =>
  new BadRequest(detail(
    "invalid_page_url",
    `url: ${error.reason}; send the full address of the page that calls ${call}, e.g. location.href.split("#")[0]`
  ))

/** A page entry's `expires_in`, when its held credential is valid. */
export const expiresIn = (expiresAt: number | undefined, now: number) =>
  expiresAt === undefined ? {} : { expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000)) }

/** The page size when the caller names none. */
export const DEFAULT_PAGE = 100

/** Every answer of a /v1 route carries a token, a ticket, a signature or an error about one; none may sit in a cache. */
export const NO_STORE = { "cache-control": "no-store" } as const
