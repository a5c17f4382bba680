/**
 * The service business code asks for a token: backed by the local engine
 * (`TokenLayer`) or by a central server (`RemoteTokenLayer`).
 *
 * @since 0.1.0
 */
import { Context, type Effect, Schema } from "effect"
import { StoreError } from "./TokenStore.js"
import {
  AdminConfirmationRequired,
  causeCode,
  ForceRefreshBudgetExhausted,
  InvalidAppId,
  InvalidAppSecret,
  InvalidCredential,
  IpNotWhitelisted,
  MissingInput,
  QuotaExceeded,
  UnknownApp,
  UpstreamUnavailable,
  WeChatApiError
} from "./WeChatError.js"

/**
 * A token (or ticket) as handed out: the value and the last moment it may be
 * used, in epoch milliseconds. `expiresAt` never reaches past the moment
 * WeChat would kill the token (classic 5-minute overlap rule).
 *
 * @since 0.1.0
 * @category models
 */
export interface Credential {
  readonly value: string
  readonly expiresAt: number
}

/**
 * Everything `get` and `refresh` can fail with, as one schema: the central
 * server encodes it into its error bodies and `RemoteTokenLayer` decodes it,
 * so a remote caller fails with the same value a local engine gives.
 *
 * @since 0.3.0
 * @category schemas
 */
export const AccessTokenError = Schema.Union(
  UnknownApp,
  UpstreamUnavailable,
  InvalidCredential,
  InvalidAppId,
  InvalidAppSecret,
  IpNotWhitelisted,
  QuotaExceeded,
  AdminConfirmationRequired,
  WeChatApiError,
  ForceRefreshBudgetExhausted,
  StoreError,
  MissingInput
)

/**
 * Everything `get` and `refresh` can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type AccessTokenError = typeof AccessTokenError.Type

/**
 * A short code naming the cause of a failure: an errcode, a transport reason
 * or a tag. Used as a metric label, in `/readyz` and in HTTP error bodies.
 *
 * @since 0.1.0
 * @category utils
 */
export const failureCause = (error: AccessTokenError): string =>
  error._tag === "UnknownApp" || error._tag === "ForceRefreshBudgetExhausted" || error._tag === "StoreError"
    ? error._tag
    : error._tag === "MissingInput"
    ? `missing_${error.kind}`
    : causeCode(error)

/**
 * @since 0.1.0
 * @category models
 */
export interface AccessTokenShape {
  /**
   * The current token of `appId`. Answers from memory while a token is valid;
   * waits (on one shared upstream fetch) only when none is.
   */
  readonly get: (appId: string) => Effect.Effect<Credential, AccessTokenError>
  /**
   * Compare-and-refresh: fetches a new token only if `staleToken` is still the
   * current one (or, without `staleToken`, always); otherwise answers the
   * current token. Any number of callers reporting the same stale token cause
   * at most one upstream fetch.
   */
  readonly refresh: (appId: string, staleToken?: string) => Effect.Effect<Credential, AccessTokenError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AccessToken extends Context.Tag("effect-wechat-token/AccessToken")<AccessToken, AccessTokenShape>() {}
