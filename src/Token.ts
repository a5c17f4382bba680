/**
 * The records a token store holds: access tokens and tickets.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { OwnerId } from "./OwnerId.js"
import { OverlapRule } from "./RefreshPolicy.js"

/**
 * `classic`: `GET /cgi-bin/token`, every fetch issues a new token and kills the
 * previous one after a 5-minute overlap. `stable`: `POST /cgi-bin/stable_token`,
 * the same token comes back while it is valid.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenMode = Schema.Literal("stable", "classic")

/**
 * @since 0.1.0
 * @category models
 */
export type TokenMode = typeof TokenMode.Type

/**
 * What a record holds, named by its credential family: `access_token`,
 * `jsapi_ticket`, `wx_card_ticket` for an official account. Lowercase, so it
 * is safe in store keys and metric labels.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CredentialKind = Schema.String.pipe(
  Schema.pattern(/^[a-z][a-z0-9_]{0,63}$/),
  Schema.annotations({ identifier: "CredentialKind", description: "e.g. access_token, jsapi_ticket, wx_card_ticket" })
)

/**
 * @since 0.1.0
 * @category models
 */
export type CredentialKind = typeof CredentialKind.Type

/**
 * One credential as the engine and the stores see it. Times are epoch
 * milliseconds read from Effect's `Clock`.
 *
 * - `refreshAt`: when the engine plans to replace it (see `RefreshPolicy.plan`).
 *   It lives in the record so every replica sharing a store agrees on it, and so
 *   on the moment an old classic token dies (`refreshAt` + 5 minutes).
 * - `generation`: grows by one per fetch; with `fetchedAt` it orders the
 *   records of a key (`TokenStore.isNewer`), so an older writer never
 *   overwrites a newer token.
 * - `lineage`: drawn at random by the fetch or put that starts a line of
 *   generations (nothing was held), and inherited by every successor. A
 *   store that lost its data counts generations from 1 again: two records
 *   of different lineages are ordered by `fetchedAt` instead (see
 *   `TokenStore.isNewer`). Records written by 0.2.0 have none (one lineage).
 *
 * @since 0.1.0
 * @category models
 */
export class TokenRecord extends Schema.Class<TokenRecord>("TokenRecord")({
  /** The owner: an app id, or `corpid/agent` for WeCom (the field keeps its name for stored records). */
  appId: OwnerId,
  kind: CredentialKind,
  value: Schema.String.pipe(Schema.minLength(1)),
  /** The kind's overlap rule (`classic`, `stable`, `none`): how long the record stays usable. */
  mode: OverlapRule,
  fetchedAt: Schema.Number,
  expiresAt: Schema.Number,
  refreshAt: Schema.Number,
  generation: Schema.Int.pipe(Schema.nonNegative()),
  /** @since 0.3.0 */
  lineage: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64))),
  /**
   * Set on the record of a durable kind when its owner is gone (a merchant
   * revoked a component's authorization): every replica and every restart
   * sees the owner retired, until a new value is put.
   */
  retired: Schema.optional(Schema.Boolean)
}) {}

/**
 * @since 0.2.0
 * @category utils
 */
export {
  /** @since 0.1.0 */
  isUsable,
  /** @since 0.1.0 */
  MIN_REMAINING,
  /** @since 0.1.0 */
  OVERLAP,
  /** @since 0.1.0 */
  usableUntil
} from "./RefreshPolicy.js"

/**
 * Masks a token for logs: enough to tell two tokens apart, never enough to use one.
 *
 * @since 0.1.0
 * @category utils
 */
export const mask = (value: string): string =>
  value.length <= 12 ? "***" : `${value.slice(0, 4)}…${value.slice(-4)} (${value.length} chars)`
