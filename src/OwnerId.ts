/**
 * Who holds a credential: an official-account app or a third-party platform
 * (component) (`wx…`), a WeCom app, named `corpid/agent`, or an account
 * authorized to a component, named `componentAppId:authorizerAppId`. Engine, store keys and records carry an `OwnerId`.
 *
 * Every form is validated by shape, which is also what keeps an owner id safe
 * as a file-store key, a Redis key segment and a metric label: it never holds
 * a secret.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
import { AppId } from "./AppId.js"

/**
 * A WeCom corp id: `ww` (or, for older corps, `wx`) followed by 16 lowercase hex characters.
 *
 * @since 0.2.0
 * @category schemas
 */
export const CorpId = Schema.String.pipe(
  Schema.pattern(/^w[wx][0-9a-f]{16}$/, {
    message: () => "a WeCom corp id is \"ww\" or \"wx\" followed by 16 lowercase hex characters"
  }),
  Schema.brand("CorpId")
)

/**
 * @since 0.2.0
 * @category schemas
 */
export type CorpId = typeof CorpId.Type

/**
 * A WeCom app within a corp: its AgentId (digits), or a label naming a
 * special secret such as `contacts` or `externalcontact`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AgentKey = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9_-]{1,32}$/, {
    message: () => "a WeCom agent is its AgentId (digits) or a label of 1-32 characters from [a-z0-9_-]"
  }),
  Schema.brand("AgentKey")
)

/**
 * @since 0.2.0
 * @category schemas
 */
export type AgentKey = typeof AgentKey.Type

/**
 * One WeCom app as an owner: `corpid/agent`. Each has its own secret and its own token.
 *
 * @since 0.2.0
 * @category schemas
 */
export const WeComAgentId = Schema.String.pipe(
  Schema.pattern(/^w[wx][0-9a-f]{16}\/[a-z0-9_-]{1,32}$/, {
    message: () => "a WeCom app is \"corpid/agent\""
  }),
  Schema.brand("WeComAgentId")
)

/**
 * @since 0.2.0
 * @category schemas
 */
export type WeComAgentId = typeof WeComAgentId.Type

/**
 * An account a third-party platform (component) manages for a merchant, as
 * an owner: `componentAppId:authorizerAppId`. The component is part of the
 * id because one account may authorize several platforms, each with its own
 * refresh token and tokens.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AuthorizerId = Schema.String.pipe(
  Schema.pattern(/^wx[0-9a-f]{16}:wx[0-9a-f]{16}$/, {
    message: () =>
      "an authorizer is \"componentAppId:authorizerAppId\", both \"wx\" followed by 16 lowercase hex characters"
  }),
  Schema.brand("AuthorizerId")
)

/**
 * @since 0.3.0
 * @category schemas
 */
export type AuthorizerId = typeof AuthorizerId.Type

/**
 * A WeCom suite (企业微信第三方应用) or service provider as an owner: the
 * suite id (`ww`, `wx`, `dk` or `tj`, then letters and digits, 32 at most)
 * or the provider's corp id.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuiteOwnerId = Schema.String.pipe(
  Schema.pattern(/^(ww|wx|dk|tj)[A-Za-z0-9]{1,30}$/, {
    message: () => "a suite id is \"ww\", \"wx\", \"dk\" or \"tj\" followed by letters and digits, 32 at most"
  }),
  Schema.brand("SuiteOwnerId")
)

/**
 * @since 0.3.0
 * @category schemas
 */
export type SuiteOwnerId = typeof SuiteOwnerId.Type

/**
 * A corp that installed a WeCom suite, as an owner: `suiteId:corpId`. The
 * suite is part of the id because one corp may install several suites,
 * each with its own permanent code and tokens.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuiteCorpId = Schema.String.pipe(
  Schema.pattern(/^(ww|wx|dk|tj)[A-Za-z0-9]{1,30}:w[wx][0-9a-f]{16}$/, {
    message: () => "a suite's corp is \"suiteId:corpId\""
  }),
  Schema.brand("SuiteCorpId")
)

/**
 * @since 0.3.0
 * @category schemas
 */
export type SuiteCorpId = typeof SuiteCorpId.Type

/**
 * Any credential owner.
 *
 * @since 0.2.0
 * @category schemas
 */
export const OwnerId = Schema.Union(AppId, WeComAgentId, AuthorizerId, SuiteOwnerId, SuiteCorpId)

/**
 * @since 0.2.0
 * @category schemas
 */
export type OwnerId = typeof OwnerId.Type

/**
 * The owner id of a WeCom app.
 *
 * @since 0.2.0
 * @category constructors
 */
export const weCom = (corpId: CorpId, agent: AgentKey): WeComAgentId => `${corpId}/${agent}` as WeComAgentId

/**
 * The corp and agent of a WeCom owner id.
 *
 * @since 0.2.0
 * @category destructors
 */
export const weComParts = (id: WeComAgentId): { readonly corpId: CorpId; readonly agent: AgentKey } => {
  const slash = id.indexOf("/")
  return { corpId: id.slice(0, slash) as CorpId, agent: id.slice(slash + 1) as AgentKey }
}

/**
 * The owner id of an account authorized to a component.
 *
 * @since 0.3.0
 * @category constructors
 */
export const authorizer = (componentAppId: AppId, authorizerAppId: AppId): AuthorizerId =>
  `${componentAppId}:${authorizerAppId}` as AuthorizerId

/**
 * The component and the authorizer app id of an authorizer owner id.
 *
 * @since 0.3.0
 * @category destructors
 */
export const authorizerParts = (
  id: AuthorizerId
): { readonly componentAppId: AppId; readonly authorizerAppId: AppId } => {
  const colon = id.indexOf(":")
  return { componentAppId: id.slice(0, colon) as AppId, authorizerAppId: id.slice(colon + 1) as AppId }
}

/**
 * True for an AgentId (digits), false for a special-secret label.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isAgentId = (agent: string): boolean => /^[0-9]{1,20}$/.test(agent)

/**
 * @since 0.2.0
 * @category predicates
 */
export const is = Schema.is(OwnerId)

/**
 * True for a WeCom owner (`corpid/agent`).
 *
 * @since 0.2.0
 * @category predicates
 */
export const isWeCom = Schema.is(WeComAgentId)

/**
 * True for an authorizer of a component (`componentAppId:authorizerAppId`).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isAuthorizer = Schema.is(AuthorizerId)

/**
 * True for a corp that installed a WeCom suite (`suiteId:corpId`).
 *
 * @since 0.3.0
 * @category predicates
 */
export const isSuiteCorp = Schema.is(SuiteCorpId)

/**
 * The kind that makes an owner servable: its access token (`access_token`
 * for an app, `wecom_access_token` for a WeCom app).
 *
 * @since 0.2.0
 * @category predicates
 */
export const accessTokenKind = (owner: string): string => isWeCom(owner) ? "wecom_access_token" : "access_token"
