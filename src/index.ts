/**
 * effect-wechat-token: WeChat access tokens kept fresh and handed out safely.
 * Each module is re-exported as a namespace named after its file.
 *
 * @since 0.1.0
 */
/**
 * The `AccessToken` service: `get(appId)` and compare-and-refresh `refresh(appId, stale)`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as AccessToken from "./AccessToken.js"

/**
 * WeChat app ids (`wx` + 16 hex), validated.
 *
 * @since 0.2.0
 * @category modules
 */
export * as AppId from "./AppId.js"

/**
 * When one credential is fetched again after failures: the fetch bucket, the backoff, the cooldown.
 *
 * @since 0.3.0
 * @category modules
 */
export * as Backoff from "./Backoff.js"

/**
 * A credential family as data: kinds, how each is issued, overlap rules, error classes.
 *
 * @since 0.2.0
 * @category modules
 */
export * as CredentialFamily from "./CredentialFamily.js"

/**
 * Owners and client keys changed at run time, sealed at rest with `STORE_ENCRYPTION_KEY`, shared by replicas.
 *
 * @since 0.3.0
 * @category modules
 */
export * as CredentialRegistry from "./CredentialRegistry.js"

/**
 * Small durable documents beside the token records, compare-and-set by version and announced to every replica.
 *
 * @since 0.3.0
 * @category modules
 */
export * as StoreDocuments from "./StoreDocuments.js"

/**
 * JS-SDK signatures and `wx.config` parameters.
 *
 * @since 0.2.0
 * @category modules
 */
export * as JsSdk from "./JsSdk.js"

/**
 * WeChat's message encryption (WXBizMsgCrypt) for encrypted pushes.
 *
 * @since 0.2.0
 * @category modules
 */
export * as MessageCrypto from "./MessageCrypto.js"

/**
 * The plain-mode message-server signature check.
 *
 * @since 0.2.0
 * @category modules
 */
export * as MessageSignature from "./MessageSignature.js"

/**
 * The official-account family: access token (classic or stable), jsapi and wx_card tickets.
 *
 * @since 0.2.0
 * @category modules
 */
export * as OfficialAccount from "./families/officialAccount/OfficialAccount.js"

/**
 * When the schedule starts due refreshes: the per-second budget and the cold-start herd spread.
 *
 * @since 0.3.0
 * @category modules
 */
export * as Pacing from "./Pacing.js"

/**
 * The refresh policy on one screen: plan, overlap caps, failure reactions, force-refresh budget.
 *
 * @since 0.2.0
 * @category modules
 */
export * as RefreshPolicy from "./RefreshPolicy.js"

/**
 * `AccessToken` backed by a central token server, for business servers.
 *
 * @since 0.2.0
 * @category modules
 */
export * as RemoteTokenLayer from "./client/RemoteTokenLayer.js"

/**
 * `TOKEN_STORE` parsed, and the store it names (adapters loaded on use).
 *
 * @since 0.2.0
 * @category modules
 */
export * as StoreSpec from "./StoreSpec.js"

/**
 * Token records, modes and kinds.
 *
 * @since 0.2.0
 * @category modules
 */
export * as Token from "./Token.js"

/**
 * Apps, secrets and engine settings read with Effect `Config`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenConfig from "./TokenConfig.js"

/**
 * The credential engine: single-flight, early refresh on a `Schedule`, static stability.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenEngine from "./TokenEngine.js"

/**
 * `AccessToken` from configuration (`layer`) or from layers of your choice (`make`).
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenLayer from "./TokenLayer.js"

/**
 * The engine's metrics.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenMetrics from "./TokenMetrics.js"

/**
 * The store port and the memory store.
 *
 * @since 0.2.0
 * @category modules
 */
export * as TokenStore from "./TokenStore.js"

/**
 * The upstream token and ticket endpoints, decoded with `effect/Schema`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeChatApi from "./families/officialAccount/WeChatApi.js"

/**
 * Calls WeChat APIs with the token added, recovering once from a dead token.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeChatClient from "./WeChatClient.js"

/**
 * Typed WeChat failures, classified by errcode.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeChatError from "./WeChatError.js"

/**
 * Credential owners: an app id, or a WeCom app as `corpid/agent`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as OwnerId from "./OwnerId.js"

/**
 * The WeCom (企业微信) family: per (corpid, agent) tokens, the corp ticket, agent tickets.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeCom from "./families/wecom/WeCom.js"

/**
 * The WeCom upstream endpoints: gettoken, get_jsapi_ticket, ticket/get.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeComApi from "./families/wecom/WeComApi.js"

/**
 * The WeCom apps (`WECOM_APPS`) and `WECOM_API_BASE_URL`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeComConfig from "./families/wecom/WeComConfig.js"

/**
 * The `WeComToken` service: tokens, tickets and signed `wx.config` / `wx.agentConfig`.
 *
 * @since 0.2.0
 * @category modules
 */
export * as WeComToken from "./families/wecom/WeComToken.js"

/**
 * The third-party platform families (开放平台第三方平台): verify ticket, component token, authorizer tokens.
 *
 * @since 0.3.0
 * @category modules
 */
export * as Component from "./families/component/Component.js"

/**
 * The third-party platform endpoints (`api_component_token`, `api_query_auth`, `api_authorizer_token`, …).
 *
 * @since 0.3.0
 * @category modules
 */
export * as ComponentApi from "./families/component/ComponentApi.js"

/**
 * `WECHAT_COMPONENTS`: component app id, secret, message token, EncodingAESKey.
 *
 * @since 0.3.0
 * @category modules
 */
export * as ComponentConfig from "./families/component/ComponentConfig.js"

/**
 * The `ComponentToken` service: component token, pre-auth codes, code exchange, authorizers and their tokens.
 *
 * @since 0.3.0
 * @category modules
 */
export * as ComponentToken from "./families/component/ComponentToken.js"

/**
 * The WeCom third-party app families (企业微信第三方应用): suite ticket, suite token, provider token,
 * and per corp that installed a suite its permanent code, corp token and tickets.
 *
 * @since 0.3.0
 * @category modules
 */
export * as WeComSuite from "./families/wecomSuite/WeComSuite.js"

/**
 * The WeCom service-provider endpoints (`get_suite_token`, `get_pre_auth_code`, `set_session_info`,
 * `get_permanent_code`, `get_corp_token`, `get_provider_token`, …).
 *
 * @since 0.3.0
 * @category modules
 */
export * as WeComSuiteApi from "./families/wecomSuite/WeComSuiteApi.js"

/**
 * `WECOM_SUITES` (suite id, secret, Token, EncodingAESKey) and `WECOM_PROVIDER` (corp id, provider secret).
 *
 * @since 0.3.0
 * @category modules
 */
export * as WeComSuiteConfig from "./families/wecomSuite/WeComSuiteConfig.js"

/**
 * The `WeComSuiteToken` service: suite token, install links, the corps that installed a suite and
 * their tokens, tickets and signed `wx.config` / `wx.agentConfig`; the provider token.
 *
 * @since 0.3.0
 * @category modules
 */
export * as WeComSuiteToken from "./families/wecomSuite/WeComSuiteToken.js"

/**
 * What WeCom pushes to a suite's command URL, verified, decrypted and decoded, for a program's own intake.
 *
 * @since 0.3.0
 * @category modules
 */
export * as SuiteEvents from "./families/wecomSuite/SuiteEvents.js"
