/**
 * The records a token store holds: access tokens and tickets.
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"
import { AppId } from "./AppId.js"

/**
 * `classic`: `GET /cgi-bin/token`, every fetch issues a new token and kills the
 * previous one after a 5-minute overlap. `stable`: `POST /cgi-bin/stable_token`,
 * the same token comes back while it is valid.
 *
 * @since 0.1.0
 */
export const TokenMode = Schema.Literal("stable", "classic")

/**
 * @since 0.1.0
 */
export type TokenMode = typeof TokenMode.Type

/**
 * What a record holds: the access token itself or one of the tickets derived from it.
 *
 * @since 0.1.0
 */
export const CredentialKind = Schema.Literal("access_token", "jsapi_ticket", "wx_card_ticket")

/**
 * @since 0.1.0
 */
export type CredentialKind = typeof CredentialKind.Type

/**
 * One credential as the engine and the stores see it. Times are epoch
 * milliseconds read from Effect's `Clock`.
 *
 * - `refreshAt`: when the engine plans to replace it (expiry − margin, jittered).
 *   It lives in the record so every replica sharing a store agrees on it, and so
 *   on the moment an old classic token dies (`refreshAt` + 5 minutes).
 * - `generation`: grows by one per fetch; stores refuse a write whose
 *   generation is not newer than what they hold, so an older writer never
 *   overwrites a newer token.
 *
 * @since 0.1.0
 */
export class TokenRecord extends Schema.Class<TokenRecord>("TokenRecord")({
  appId: AppId,
  kind: CredentialKind,
  value: Schema.String.pipe(Schema.minLength(1)),
  mode: TokenMode,
  fetchedAt: Schema.Number,
  expiresAt: Schema.Number,
  refreshAt: Schema.Number,
  generation: Schema.Int.pipe(Schema.nonNegative())
}) {}

/**
 * How long WeChat keeps a replaced token alive: a new classic token (or a
 * forced stable token) leaves the previous one valid for about 5 minutes.
 *
 * @since 0.1.0
 */
export const OVERLAP = Duration.minutes(5)

/**
 * A token is handed out only while it has at least this long to live, so a
 * caller never receives one that dies in flight.
 *
 * @since 0.1.0
 */
export const MIN_REMAINING = Duration.seconds(5)

/**
 * True while the record may still be handed out at `now`.
 *
 * @since 0.1.0
 */
export const isUsable = (record: TokenRecord, now: number): boolean =>
  now + Duration.toMillis(MIN_REMAINING) < usableUntil(record)

/**
 * The last moment a caller may use the record: never past the moment WeChat
 * would kill it. In classic mode the next fetch (planned at `refreshAt`)
 * kills this token 5 minutes later, which can come before `expiresAt` when
 * the refresh margin is longer than the overlap.
 *
 * @since 0.1.0
 */
export const usableUntil = (record: TokenRecord): number =>
  record.mode === "classic"
    ? Math.min(record.expiresAt, record.refreshAt + Duration.toMillis(OVERLAP))
    : record.expiresAt

/**
 * Masks a token for logs: enough to tell two tokens apart, never enough to use one.
 *
 * @since 0.1.0
 */
export const mask = (value: string): string =>
  value.length <= 12 ? "***" : `${value.slice(0, 4)}…${value.slice(-4)} (${value.length} chars)`
