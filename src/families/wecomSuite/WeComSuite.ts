/**
 * The WeCom third-party app families (企业微信第三方应用): per configured
 * suite its pushed ticket and suite token, the service provider's token,
 * and per corp that installed a suite (owner `suiteId:corpId`) its
 * permanent code, corp token and tickets.
 *
 * - `suite_ticket` (durable): pushed by WeCom every 10 minutes to the
 *   suite's command URL and put into the engine by the push intake; valid
 *   30 minutes, the latest wins. WeCom has no call that asks for a push, so
 *   when none is held its issuer fails with `MissingInput` naming the URL.
 * - `suite_access_token`: from the latest ticket, fetched at start-up and
 *   refreshed ahead of expiry. A ticket WeCom refuses (40085) is not sent
 *   again: the next push replaces it.
 * - `provider_access_token`: from `WECOM_PROVIDER`, when configured.
 * - `suite_permanent_code` (durable, the corp's presence): stored when an
 *   install's temporary code is exchanged; it never expires and cannot be
 *   fetched again, so lost it means the corp must install the app again.
 * - `suite_corp_access_token`: from the suite token and the permanent code,
 *   fetched when the corp appears and then ahead of expiry.
 * - `suite_corp_jsapi_ticket`, `suite_corp_agent_ticket`: on the corp token,
 *   as for a WeCom app (`wx.config`, `wx.agentConfig`).
 *
 * A corp is retired by the `cancel_auth` push, not by an errcode: WeCom
 * does not document the one it answers for a dead permanent code.
 *
 * @since 0.3.0
 */
import { Effect, Option } from "effect"
import type { AccessTokenError } from "../../AccessToken.js"
import * as CredentialFamily from "../../CredentialFamily.js"
import {
  type AgentKey,
  type CorpId,
  isSuiteCorp,
  type OwnerId,
  type SuiteCorpId,
  type SuiteOwnerId,
  weCom
} from "../../OwnerId.js"
import { MissingInput } from "../../WeChatError.js"
import { WeComApi, type WeComApiShape } from "../wecom/WeComApi.js"
import { WeComSuiteApi, type WeComSuiteApiShape } from "./WeComSuiteApi.js"
import {
  type SuiteCredentials,
  type SuiteId,
  WeComSuiteConfig,
  type WeComSuiteConfigShape
} from "./WeComSuiteConfig.js"

/**
 * @since 0.3.0
 * @category kinds
 */
export const suiteToken = "suite_access_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const suiteTicket = "suite_ticket"

/**
 * @since 0.3.0
 * @category kinds
 */
export const providerToken = "provider_access_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const permanentCode = "suite_permanent_code"

/**
 * @since 0.3.0
 * @category kinds
 */
export const corpToken = "suite_corp_access_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const corpJsapiTicket = "suite_corp_jsapi_ticket"

/**
 * @since 0.3.0
 * @category kinds
 */
export const corpAgentTicket = "suite_corp_agent_ticket"

/**
 * How long a suite ticket is valid after WeCom pushed it.
 *
 * @since 0.3.0
 * @category constants
 */
export const SUITE_TICKET_SECONDS = 30 * 60

/**
 * A permanent code has no expiry (it lives until the corp uninstalls the
 * app or the code is reset): recorded as ten years, never "refreshed".
 *
 * @since 0.3.0
 * @category constants
 */
export const PERMANENT_CODE_SECONDS = 10 * 365 * 86_400

/**
 * The owner id of a corp that installed a suite.
 *
 * @since 0.3.0
 * @category owners
 */
export const corpOwner = (suiteId: SuiteId, corpId: CorpId): SuiteCorpId => `${suiteId}:${corpId}` as SuiteCorpId

/**
 * The suite and the corp of a corp owner id, when it is one.
 *
 * @since 0.3.0
 * @category owners
 */
export const corpParts = (
  owner: string
): { readonly suiteId: SuiteId; readonly corpId: CorpId } | undefined => {
  if (!isSuiteCorp(owner)) return undefined
  const colon = owner.indexOf(":")
  return { suiteId: owner.slice(0, colon) as SuiteId, corpId: owner.slice(colon + 1) as CorpId }
}

const REFUSED_TICKET = "WeCom refused the latest suite_ticket (40085)"

/**
 * Tells whether `error` is WeCom's errcode among `codes`.
 *
 * @since 0.3.0
 * @category classification
 */
export const isErrcode = (error: AccessTokenError, ...codes: ReadonlyArray<number>): boolean =>
  (error._tag === "WeChatApiError" || error._tag === "InvalidCredential") && codes.includes(error.errcode)

// The WeCom API names the owner of a ticket in its errors as `corpid/agent`:
// a suite's corp token is the corp's token for the suite's app.
const ticketOwner = (owner: OwnerId) => {
  const parts = corpParts(owner)!
  return weCom(parts.corpId, parts.suiteId.toLowerCase() as AgentKey)
}

/**
 * The families for the configured suites over `api` (and `wecom` for the
 * corps' tickets): the suite kinds (configured owners), the provider's
 * token (when configured) and the corp kinds (owners that come and go).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  config: WeComSuiteConfigShape,
  api: WeComSuiteApiShape,
  wecom: WeComApiShape
): ReadonlyArray<CredentialFamily.CredentialFamily> => {
  const suites = new Map(config.suites.map((suite) => [suite.suiteId as string, suite]))
  // The engine asks only for its owners, which are exactly these suites.
  const suiteOf = (owner: string): SuiteCredentials => suites.get(owner)!
  // The ticket WeCom last refused per suite: not sent again, so a dead
  // ticket costs one upstream call, not one per caller, until a new one is pushed.
  const refusedTickets = new Map<string, string>()

  const suiteFamily = CredentialFamily.make({
    name: "wecom-suite",
    owners: config.suites.map((suite) => suite.suiteId as string as SuiteOwnerId),
    kinds: [
      {
        kind: suiteToken,
        // `get_suite_token` answers the held token while it is valid.
        overlap: "stable",
        storage: "cache",
        start: "eager",
        inputs: [{ kind: suiteTicket, awaitsPush: true }],
        issue: ({ inputs: [ticket], owner }) => {
          const refused = (error: AccessTokenError) => new CredentialFamily.InputRejected({ input: 0, error })
          if (refusedTickets.get(owner) === ticket!.value) {
            return refused(new MissingInput({ appId: owner, kind: suiteTicket, detail: REFUSED_TICKET }))
          }
          return api.fetchSuiteToken(suiteOf(owner), ticket!.value).pipe(
            Effect.catchIf((error) => isErrcode(error, 40085), (error) => {
              refusedTickets.set(owner, ticket!.value)
              return refused(error)
            })
          )
        }
      },
      {
        kind: suiteTicket,
        // Usable until its 30 minutes end; WeCom pushes the next one every 10.
        overlap: "stable",
        storage: "durable",
        start: "eager",
        issue: ({ owner }) =>
          Effect.fail(
            new MissingInput({
              appId: owner,
              kind: suiteTicket,
              detail:
                `${
                  refusedTickets.has(owner) ? REFUSED_TICKET : "no suite_ticket has been pushed yet, or pushes stopped"
                }. The suite's command URL (指令回调URL) must point at /wecom/suites/${owner}/events; ` +
                "WeCom pushes a ticket every 10 minutes (the admin console can push one at once)"
            })
          )
      }
    ]
  })

  const corpFamily = CredentialFamily.make({
    name: "wecom-suite-corp",
    owners: [],
    dynamic: {
      accepts: (owner) => {
        const parts = corpParts(owner)
        return parts !== undefined && suites.has(parts.suiteId)
      },
      presence: permanentCode
    },
    kinds: [
      {
        kind: corpToken,
        overlap: "stable",
        storage: "cache",
        start: "eager",
        inputs: [{ kind: suiteToken, ownerOf: (owner) => corpParts(owner)!.suiteId as string as SuiteOwnerId }, {
          kind: permanentCode
        }],
        issue: ({ inputs: [token, code], owner }) => {
          const { corpId, suiteId } = corpParts(owner)!
          return api.fetchCorpToken(suiteId, token!.value, corpId, code!.value).pipe(
            Effect.mapError((error) =>
              error._tag === "InvalidCredential" ? new CredentialFamily.InputRejected({ input: 0, error }) : error
            )
          )
        }
      },
      {
        kind: permanentCode,
        overlap: "stable",
        storage: "durable",
        start: "on-demand",
        issue: ({ owner }) =>
          Effect.fail(
            new MissingInput({
              appId: owner,
              kind: permanentCode,
              detail: "the permanent code is lost (WeCom hands it out once): the corp must install the app again"
            })
          )
      },
      {
        kind: corpJsapiTicket,
        overlap: "stable",
        storage: "cache",
        start: "on-demand",
        inputs: [{ kind: corpToken }],
        issue: ({ inputs: [token], owner }) =>
          wecom.fetchCorpTicket(ticketOwner(owner), token!.value).pipe(
            Effect.catchTag("InvalidCredential", (error) => new CredentialFamily.InputRejected({ input: 0, error }))
          )
      },
      {
        kind: corpAgentTicket,
        overlap: "stable",
        storage: "cache",
        start: "on-demand",
        inputs: [{ kind: corpToken }],
        issue: ({ inputs: [token], owner }) =>
          wecom.fetchAgentTicket(ticketOwner(owner), token!.value).pipe(
            Effect.catchTag("InvalidCredential", (error) => new CredentialFamily.InputRejected({ input: 0, error }))
          )
      }
    ]
  })

  const provider = Option.getOrUndefined(config.provider)
  const providerFamily = provider === undefined ? [] : [CredentialFamily.make({
    name: "wecom-provider",
    owners: [provider.corpId as string as SuiteOwnerId],
    kinds: [{
      kind: providerToken,
      overlap: "stable",
      storage: "cache",
      start: "on-demand",
      issue: () => api.fetchProviderToken(provider)
    }]
  })]
  return config.suites.length === 0 ? providerFamily : [suiteFamily, corpFamily, ...providerFamily]
}

/**
 * The families from the `WeComSuiteConfig`, `WeComSuiteApi` and `WeComApi` in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const families: Effect.Effect<
  ReadonlyArray<CredentialFamily.CredentialFamily>,
  never,
  WeComSuiteConfig | WeComSuiteApi | WeComApi
> = Effect.map(
  Effect.all([WeComSuiteConfig, WeComSuiteApi, WeComApi]),
  ([config, api, wecom]) => make(config, api, wecom)
)
