/**
 * Typed failures of the WeChat API, classified by errcode as WeChat's global
 * return codes describe them (see `fromErrcode`). Every message says what a
 * person can do about it and never contains a secret.
 *
 * Every error is a `Schema.TaggedError`: the central server sends it in its
 * error bodies and `RemoteTokenLayer` decodes it, so a business server fails
 * with the same value whether its tokens come from a local engine or from the
 * server.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * WeChat could not be reached or answered nonsense: network error, timeout,
 * HTTP 5xx, a body that does not match the schema, or errcode -1 (system busy).
 * Transient: retried with backoff.
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamUnavailable extends Schema.TaggedError<UpstreamUnavailable>()("UpstreamUnavailable", {
  reason: Schema.Literal("network", "timeout", "http-status", "malformed-body", "busy"),
  detail: Schema.String
}) {
  override get message() {
    return `WeChat is unavailable (${this.reason}): ${this.detail}`
  }
}

/**
 * 40001 / 40014 / 42001 on an API call: the token used is invalid, not the
 * latest, or expired. Compare-and-refresh once, then replay once.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCredential extends Schema.TaggedError<InvalidCredential>()("InvalidCredential", {
  errcode: Schema.Number,
  errmsg: Schema.String
}) {
  override get message() {
    return `WeChat rejected the access token (errcode ${this.errcode}: ${this.errmsg})`
  }
}

/**
 * 40013: WeChat does not know the app id. A configuration error: no retry storm.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAppId extends Schema.TaggedError<InvalidAppId>()("InvalidAppId", {
  appId: Schema.String,
  errmsg: Schema.String
}) {
  override get message() {
    return `WeChat does not recognise app id ${this.appId} (errcode 40013): check WECHAT_APPS / WECHAT_APP_ID`
  }
}

/**
 * 40125, or 40001 on the token endpoint itself: the app secret is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAppSecret extends Schema.TaggedError<InvalidAppSecret>()("InvalidAppSecret", {
  appId: Schema.String,
  errcode: Schema.Number
}) {
  override get message() {
    return `WeChat rejected the app secret of ${this.appId} (errcode ${this.errcode}): check the configured secret; it may have been reset in the WeChat admin console`
  }
}

/**
 * 40164: the caller's egress IP is not in the app's whitelist; WeChat names the IP.
 *
 * @since 0.1.0
 * @category errors
 */
export class IpNotWhitelisted extends Schema.TaggedError<IpNotWhitelisted>()("IpNotWhitelisted", {
  appId: Schema.String,
  ip: Schema.String,
  errmsg: Schema.String
}) {
  override get message() {
    return `WeChat refused the caller IP ${this.ip} for ${this.appId} (errcode 40164): add it to the app's IP whitelist`
  }
}

/**
 * 45009 (daily quota) or 45011 (minute quota).
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  errcode: Schema.Number,
  scope: Schema.Literal("day", "minute"),
  errmsg: Schema.String
}) {
  override get message() {
    return this.scope === "day"
      ? `WeChat daily API quota reached (errcode 45009): fetching stops for hours; an admin can reset it with the clear_quota API`
      : `WeChat minute quota reached (errcode ${this.errcode}): backing off`
  }
}

/**
 * 89503 / 89501: WeChat wants an administrator to confirm calls from this IP.
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminConfirmationRequired
  extends Schema.TaggedError<AdminConfirmationRequired>()("AdminConfirmationRequired", {
    errcode: Schema.Number,
    errmsg: Schema.String
  })
{
  override get message() {
    return `WeChat requires an administrator to confirm this caller (errcode ${this.errcode}: ${this.errmsg})`
  }
}

/**
 * Any other non-zero errcode (40002 bad grant_type, 41001/41002/41004 missing
 * parameters, API-specific codes): a programming error, not retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class WeChatApiError extends Schema.TaggedError<WeChatApiError>()("WeChatApiError", {
  errcode: Schema.Number,
  errmsg: Schema.String
}) {
  override get message() {
    return `WeChat answered errcode ${this.errcode}: ${this.errmsg}`
  }
}

/**
 * Everything a WeChat call can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type WeChatError =
  | UpstreamUnavailable
  | InvalidCredential
  | InvalidAppId
  | InvalidAppSecret
  | IpNotWhitelisted
  | QuotaExceeded
  | AdminConfirmationRequired
  | WeChatApiError

/**
 * The app id is not configured in this engine or server.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownApp extends Schema.TaggedError<UnknownApp>()("UnknownApp", {
  appId: Schema.String
}) {
  override get message() {
    return `app ${this.appId} is not configured`
  }
}

/**
 * A durable input a credential is issued from is not held and cannot be
 * fetched: WeChat has not pushed a component verify ticket yet (the issuer
 * asked it to resume pushing), or an authorizer's refresh token is lost and
 * the authorizer list does not have it either (the merchant must authorize
 * again). `detail` says which and what to do.
 *
 * @since 0.3.0
 * @category errors
 */
export class MissingInput extends Schema.TaggedError<MissingInput>()("MissingInput", {
  appId: Schema.String,
  kind: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `${this.kind} of ${this.appId} is not available: ${this.detail}`
  }
}

/**
 * Stable mode: a forced refresh was needed but the budget (20 a day, 30 s
 * apart) does not allow one now.
 *
 * @since 0.1.0
 * @category errors
 */
export class ForceRefreshBudgetExhausted
  extends Schema.TaggedError<ForceRefreshBudgetExhausted>()("ForceRefreshBudgetExhausted", {
    appId: Schema.String,
    nextAllowedAt: Schema.Number
  })
{
  override get message() {
    return `the stable-token force_refresh budget of ${this.appId} is spent until ${
      new Date(this.nextAllowedAt).toISOString()
    }`
  }
}

/**
 * Where a WeChat errcode was returned: the token endpoints read 40001 as a
 * wrong secret, an API call reads it as a dead token.
 *
 * @since 0.1.0
 * @category models
 */
export type CallSite = "token-endpoint" | "api-call"

/**
 * Classifies a non-zero errcode as WeChat's global return-code table describes it.
 *
 * @since 0.1.0
 * @category utils
 */
export const fromErrcode = (
  errcode: number,
  errmsg: string,
  context: { readonly appId: string; readonly site: CallSite }
): WeChatError => {
  switch (errcode) {
    case -1:
      return new UpstreamUnavailable({ reason: "busy", detail: `errcode -1: ${errmsg}` })
    case 40001:
      return context.site === "token-endpoint"
        ? new InvalidAppSecret({ appId: context.appId, errcode })
        : new InvalidCredential({ errcode, errmsg })
    case 40014:
    case 42001:
      return new InvalidCredential({ errcode, errmsg })
    case 40013:
      return new InvalidAppId({ appId: context.appId, errmsg })
    case 40125:
      return new InvalidAppSecret({ appId: context.appId, errcode })
    case 40164:
      return new IpNotWhitelisted({ appId: context.appId, ip: ipIn(errmsg), errmsg })
    case 45009:
      return new QuotaExceeded({ errcode, scope: "day", errmsg })
    case 45011:
      return new QuotaExceeded({ errcode, scope: "minute", errmsg })
    case 89501:
    case 89503:
      return new AdminConfirmationRequired({ errcode, errmsg })
    default:
      return new WeChatApiError({ errcode, errmsg })
  }
}

const ipIn = (errmsg: string): string =>
  /\b(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:]+)\b/i.exec(errmsg)?.[1] ?? "unknown"

/**
 * A short code naming the cause, for metrics labels, readiness and HTTP error bodies.
 *
 * @since 0.1.0
 * @category utils
 */
export const causeCode = (error: WeChatError): string =>
  error._tag === "UpstreamUnavailable"
    ? `upstream_${error.reason.replace("-", "_")}`
    : "errcode" in error
    ? String(error.errcode)
    : error._tag === "InvalidAppId"
    ? "40013"
    : "40164"
