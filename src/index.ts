/**
 * effect-wechat-token: WeChat access tokens kept fresh and handed out safely.
 *
 * @since 0.1.0
 */
export * as AppId from "./AppId.js"
export { AccessToken, type AccessTokenError, type AccessTokenShape, type Credential, failureCause } from "./AccessToken.js"
export * as CredentialFamily from "./CredentialFamily.js"
export * as OfficialAccount from "./families/OfficialAccount.js"
export * as RefreshPolicy from "./RefreshPolicy.js"
export * as Token from "./Token.js"
export * as TokenConfig from "./TokenConfig.js"
export * as TokenEngine from "./TokenEngine.js"
export { make as makeTokenLayer, TokenLayer } from "./TokenLayer.js"
export * as TokenMetrics from "./TokenMetrics.js"
export * as TokenStore from "./TokenStore.js"
export * as WeChatApi from "./WeChatApi.js"
export * as WeChatError from "./WeChatError.js"
export * as RemoteToken from "./client/RemoteTokenLayer.js"
export { RemoteTokenLayer } from "./client/RemoteTokenLayer.js"
export * as JsSdk from "./JsSdk.js"
export * as MessageCrypto from "./MessageCrypto.js"
export * as MessageSignature from "./MessageSignature.js"
export * as WeChatClient from "./WeChatClient.js"
