/**
 * How the `/v1` routes of owners that come and go (a component's
 * authorizers, a suite's corps) answer: a held credential with its
 * lifetime, an unknown owner as `404`, any other failure as `503`.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import { BadRequest, detail, type NotFound, type TokenUnavailable, tokenUnavailable } from "../../api/ApiError.js"
import type { InvalidPageUrl } from "../../JsSdk.js"
import { unknownApp } from "../ClientAuth.js"
import { lifetime } from "../FastPath.js"

/** @internal */
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

/** @internal */
export const pageUrlError = (error: InvalidPageUrl) =>
  new BadRequest(detail(
    "invalid_page_url",
    `url: ${error.reason}; send the full address of the page that calls wx.config, e.g. location.href.split("#")[0]`
  ))

/** A page entry's `expires_in`, when its held credential is valid. */
export const expiresIn = (expiresAt: number | undefined, now: number) =>
  expiresAt === undefined ? {} : { expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000)) }

/** The page size when the caller names none. */
export const DEFAULT_PAGE = 100
