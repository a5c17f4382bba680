/**
 * The official-account family (公众号): per configured app, the access token
 * (classic or stable) and the jsapi and wx_card tickets issued on it.
 *
 * - `access_token`: fetched at start-up. Classic: every fetch issues a new
 *   token and the previous one dies 5 minutes later. Stable: the same token
 *   comes back while valid (WeChat renews it in its last 5 minutes), so
 *   replacing a rejected one needs `force_refresh`, budgeted 20 a day, 30 s apart.
 * - `jsapi_ticket`, `wx_card_ticket`: fetched on first use with the current
 *   token. Planned like a classic token (a new ticket may cut the old one to
 *   5 minutes), which is also safe when WeChat answers the same ticket while
 *   it is valid. A getticket refused for a dead token replaces that token
 *   (compare-and-refresh) and asks once more.
 *
 * @since 0.2.0
 */
import { Effect, Option } from "effect"
import type { AppId } from "../../AppId.js"
import * as CredentialFamily from "../../CredentialFamily.js"
import { RuntimeOwners } from "../../internal/runtimeOwners.js"
import type { OwnerId } from "../../OwnerId.js"
import { STABLE_FORCE_REFRESH } from "../../RefreshPolicy.js"
import type { CredentialKind } from "../../Token.js"
import { type AppCredentials, TokenConfig, type TokenConfigShape } from "../../TokenConfig.js"
import { UnknownApp } from "../../WeChatError.js"
import { type TicketType, WeChatApi, type WeChatApiShape } from "./WeChatApi.js"

/**
 * The kind `get(appId)` answers when no kind is named.
 *
 * @since 0.2.0
 * @category kinds
 */
export const accessToken = "access_token"

/**
 * @since 0.2.0
 * @category kinds
 */
export const jsapiTicket = "jsapi_ticket"

/**
 * @since 0.2.0
 * @category kinds
 */
export const wxCardTicket = "wx_card_ticket"

/**
 * A `getticket` kind issued on the owner's `tokenKind` (any official-account
 * token: an app's, or an account's a third-party platform manages): a ticket
 * call refused for a dead token replaces that token (compare-and-refresh)
 * and asks once more.
 *
 * @since 0.3.0
 * @category constructors
 */
export const ticketKind = (
  api: WeChatApiShape,
  kind: CredentialKind,
  type: TicketType,
  tokenKind: CredentialKind,
  appIdOf: (owner: OwnerId) => AppId
): CredentialFamily.CredentialKindSpec => ({
  kind,
  overlap: "classic",
  storage: "cache",
  start: "on-demand",
  inputs: [{ kind: tokenKind }],
  issue: ({ inputs: [token], owner }) =>
    api.fetchTicket(appIdOf(owner), token!.value, type).pipe(
      Effect.catchTag("InvalidCredential", (error) => new CredentialFamily.InputRejected({ input: 0, error }))
    )
})

/**
 * The family for the configured apps over `api`, and for the apps of
 * `runtime` when given: those are dynamic owners, admitted by a put of
 * their access token (the one that checked their secret) and ended by
 * `TokenEngine.retire`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  config: TokenConfigShape,
  api: WeChatApiShape,
  runtime?: ReadonlyMap<string, AppCredentials>
): CredentialFamily.CredentialFamily => {
  const configured = new Map(config.apps.map((app) => [app.appId as string, app]))
  // The engine asks only for configured owners and those `runtime` accepts;
  // a run-time app removed since is no longer in `runtime`.
  const appOf = (owner: string): AppCredentials | undefined => configured.get(owner) ?? runtime?.get(owner)
  // An official account's owner id is its app id.
  const ticket = (kind: CredentialKind, type: TicketType) =>
    ticketKind(api, kind, type, accessToken, (owner) => owner as string as AppId)
  return CredentialFamily.make({
    name: "official-account",
    owners: config.apps.map((app) => app.appId),
    // The access token is what makes a run-time app exist in the store, so
    // every replica (and every restart) admits the app the registry added.
    dynamic: runtime === undefined ? undefined : {
      accepts: (owner) => !configured.has(owner) && runtime.has(owner),
      presence: accessToken
    },
    kinds: [
      {
        kind: accessToken,
        overlap: config.mode,
        storage: "cache",
        start: "eager",
        forceRefresh: config.mode === "stable" ? STABLE_FORCE_REFRESH : undefined,
        issue: ({ force, owner }) => {
          const app = appOf(owner)
          return app === undefined
            ? Effect.fail(new UnknownApp({ appId: owner }))
            : api.fetchAccessToken(app, config.mode, { forceRefresh: force })
        }
      },
      ticket(jsapiTicket, "jsapi"),
      ticket(wxCardTicket, "wx_card")
    ]
  })
}

/**
 * The family from the `TokenConfig` and `WeChatApi` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const family: Effect.Effect<CredentialFamily.CredentialFamily, never, TokenConfig | WeChatApi> = Effect.map(
  Effect.all([TokenConfig, WeChatApi, Effect.serviceOption(RuntimeOwners)]),
  ([config, api, runtime]) => make(config, api, Option.getOrUndefined(runtime)?.apps)
)
