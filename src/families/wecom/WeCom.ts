/**
 * The WeCom family (企业微信): per configured app (corpid/agent) its access
 * token, per corp its jsapi ticket (`wx.config`) and per agent its agent
 * ticket (`wx.agentConfig`).
 *
 * - `wecom_access_token`: fetched at start-up, one per (corpid, agent): each
 *   app has its own secret and its own token, and WeCom refuses one agent's
 *   token for another (301002). `gettoken` answers the same token while it
 *   is valid, so the overlap rule is `stable`: refreshed in its last
 *   5 minutes, ⌈86400 / 6900⌉ = 13 fetches a day. WeCom may still end a token
 *   early: a rejected one (40014/42001) is replaced by compare-and-refresh;
 *   WeCom has no `force_refresh`, so a plain fetch is the replacement.
 * - `wecom_jsapi_ticket`: the corp ticket, one per corp (400 fetches an hour
 *   per corp), issued with the token of the corp's first configured app that
 *   has an AgentId. Its owner is that app: `WeComToken` routes every agent
 *   of the corp to it.
 * - `wecom_agent_ticket`: one per agent with an AgentId (100 fetches an hour
 *   per agent), with that agent's token.
 *
 * Tickets are fetched on first use and then once per lifetime, however many
 * callers: the engine's single-flight covers the rate limits.
 *
 * @since 0.2.0
 */
import { Effect, Option } from "effect"
import * as CredentialFamily from "../../CredentialFamily.js"
import { RuntimeOwners } from "../../internal/runtimeOwners.js"
import { isAgentId, type OwnerId, type WeComAgentId } from "../../OwnerId.js"
import { UnknownApp, type WeChatError } from "../../WeChatError.js"
import { WeComApi, type WeComApiShape } from "./WeComApi.js"
import { type WeComAppCredentials, WeComConfig, type WeComConfigShape } from "./WeComConfig.js"

/**
 * @since 0.2.0
 * @category kinds
 */
export const accessToken = "wecom_access_token"

/**
 * The corp ticket (`get_jsapi_ticket`).
 *
 * @since 0.2.0
 * @category kinds
 */
export const jsapiTicket = "wecom_jsapi_ticket"

/**
 * The agent ticket (`ticket/get?type=agent_config`).
 *
 * @since 0.2.0
 * @category kinds
 */
export const agentTicket = "wecom_agent_ticket"

/**
 * The app whose token fetches its corp's ticket: the corp's first configured
 * app with an AgentId (a special secret such as `contacts` may lack the
 * right), else its first app.
 *
 * @since 0.2.0
 * @category routing
 */
export const corpTicketHolder = (
  apps: ReadonlyArray<WeComAppCredentials>,
  corpId: string
): WeComAgentId | undefined => {
  const ofCorp = apps.filter((app) => app.corpId === corpId)
  return (ofCorp.find((app) => isAgentId(app.agent)) ?? ofCorp[0])?.owner
}

type Fetch = (owner: WeComAgentId, token: string) => Effect.Effect<CredentialFamily.Issued, WeChatError>

// A ticket issued on the owner's token; a ticket call refused for a dead
// token replaces that token (compare-and-refresh) and asks once more.
const ticketOf = (fetch: Fetch): CredentialFamily.CredentialKindSpec["issue"] => ({ inputs: [token], owner }) =>
  fetch(owner as WeComAgentId, token!.value).pipe(
    Effect.catchTag("InvalidCredential", (error) => new CredentialFamily.InputRejected({ input: 0, error }))
  )

const family = (
  name: string,
  owners: ReadonlyArray<OwnerId>,
  kind: CredentialFamily.CredentialKindSpec,
  dynamic: CredentialFamily.DynamicOwners | undefined
): CredentialFamily.CredentialFamily => CredentialFamily.make({ name, owners, dynamic, kinds: [kind] })

/**
 * The WeCom families for the configured apps over `api`, and for the apps
 * of `runtime` when given: the tokens (every app), the corp tickets (one
 * holder per corp), the agent tickets (apps with an AgentId). Three
 * families because each kind has its own owners.
 *
 * A run-time app is a dynamic owner of all three, admitted by a put of its
 * access token (the one that checked its secret) and ended by
 * `TokenEngine.retire`; it holds its corp's ticket only when no configured
 * app of the corp (nor an earlier run-time one) does.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  config: WeComConfigShape,
  api: WeComApiShape,
  runtime?: ReadonlyMap<string, WeComAppCredentials>
): readonly [
  CredentialFamily.CredentialFamily,
  CredentialFamily.CredentialFamily,
  CredentialFamily.CredentialFamily
] => {
  const configured = new Map(config.apps.map((app) => [app.owner as string, app]))
  const corps = Array.from(new Set(config.apps.map((app) => app.corpId)))
  // The engine asks only for configured owners and those `runtime` accepts;
  // a run-time app removed since is no longer in `runtime`.
  const appOf = (owner: string): WeComAppCredentials | undefined => configured.get(owner) ?? runtime?.get(owner)
  const dynamic = (admits: (app: WeComAppCredentials) => boolean): CredentialFamily.DynamicOwners | undefined =>
    runtime === undefined ? undefined : {
      accepts: (owner) => {
        const app = configured.has(owner) ? undefined : runtime.get(owner)
        return app !== undefined && admits(app)
      },
      // Every replica (and every restart) admits the app the registry added by its stored token.
      presence: accessToken
    }
  return [
    family("wecom", config.apps.map((app) => app.owner), {
      kind: accessToken,
      overlap: "stable",
      storage: "cache",
      start: "eager",
      issue: ({ owner }) => {
        const app = appOf(owner)
        return app === undefined ? Effect.fail(new UnknownApp({ appId: owner })) : api.fetchToken(app)
      }
    }, dynamic(() => true)),
    family("wecom-corp-ticket", corps.flatMap((corpId) => corpTicketHolder(config.apps, corpId) ?? []), {
      kind: jsapiTicket,
      overlap: "stable",
      storage: "cache",
      start: "on-demand",
      inputs: [{ kind: accessToken }],
      issue: ticketOf(api.fetchCorpTicket)
    }, dynamic((app) => corpTicketHolder([...config.apps, ...runtime!.values()], app.corpId) === app.owner)),
    family("wecom-agent-ticket", config.apps.filter((app) => isAgentId(app.agent)).map((app) => app.owner), {
      kind: agentTicket,
      overlap: "stable",
      storage: "cache",
      start: "on-demand",
      inputs: [{ kind: accessToken }],
      issue: ticketOf(api.fetchAgentTicket)
    }, dynamic((app) => isAgentId(app.agent)))
  ]
}

/**
 * The families from the `WeComConfig` and `WeComApi` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const families: Effect.Effect<
  readonly [CredentialFamily.CredentialFamily, CredentialFamily.CredentialFamily, CredentialFamily.CredentialFamily],
  never,
  WeComConfig | WeComApi
> = Effect.map(
  Effect.all([WeComConfig, WeComApi, Effect.serviceOption(RuntimeOwners)]),
  ([config, api, runtime]) => make(config, api, Option.getOrUndefined(runtime)?.agents)
)
