/**
 * The WeCom service-provider endpoints (`cgi-bin/service/…`) a suite needs,
 * over `@effect/platform`'s `HttpClient`: the suite token from the newest
 * suite ticket, pre-auth codes and their session, the exchange of an
 * install's temporary code for the corp's permanent code, the corp's
 * authorization (its agent id), corp tokens from permanent codes, and the
 * provider token. A corp token is an ordinary WeCom corp token: the corp's
 * jsapi and agent tickets come from `WeComApi` with it. Every body is
 * decoded with `effect/Schema` and bounded as in the other families; the
 * suite errcodes become errors that tell an operator what happened.
 *
 * @since 0.3.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Duration, Effect, Layer, Redacted, Schema } from "effect"
import type { Issued } from "../../CredentialFamily.js"
import * as Upstream from "../../internal/upstream.js"
import type { CorpId } from "../../OwnerId.js"
import { CorpId as CorpIdSchema } from "../../OwnerId.js"
import { type CallSite, InvalidCredential, WeChatApiError, type WeChatError } from "../../WeChatError.js"
import { decodeBody } from "../officialAccount/WeChatApi.js"
import * as WeComConfig from "../wecom/WeComConfig.js"
import type { ProviderCredentials, SuiteCredentials, SuiteId } from "./WeComSuiteConfig.js"

/**
 * Where WeCom is and how long a call may take.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Default `https://qyapi.weixin.qq.com`; the emulator's URL in tests. A trailing `/` is ignored. */
  readonly baseUrl?: string
  /** Each upstream call gives up after this long; default 10 s. */
  readonly timeout?: Duration.DurationInput
}

/**
 * What `v2/get_permanent_code` answers for an install's temporary code.
 *
 * @since 0.3.0
 * @category models
 */
export interface PermanentCode {
  readonly corpId: CorpId
  readonly corpName: string
  /** Never expires; lost, the corp must install the app again. */
  readonly permanentCode: string
}

/**
 * What `get_auth_info` answers: the agents the corp runs the suite's app as.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuthInfo {
  readonly corpId: CorpId
  readonly agentIds: ReadonlyArray<number>
}

/**
 * What `set_session_info` sets on a pre-auth code: which of the suite's
 * apps the install offers (all when absent) and whether it is a test install.
 *
 * @since 0.3.0
 * @category models
 */
export interface SessionInfo {
  readonly appIds?: ReadonlyArray<number>
  /** `0` a real install (default), `1` a test install. */
  readonly authType?: 0 | 1
}

/**
 * @since 0.3.0
 * @category models
 */
export interface WeComSuiteApiShape {
  readonly fetchSuiteToken: (suite: SuiteCredentials, suiteTicket: string) => Effect.Effect<Issued, WeChatError>
  /** A fresh pre-auth code for an install link: never cached. */
  readonly createPreAuthCode: (suiteId: SuiteId, suiteToken: string) => Effect.Effect<Issued, WeChatError>
  readonly setSessionInfo: (
    suiteId: SuiteId,
    suiteToken: string,
    preAuthCode: string,
    session: SessionInfo
  ) => Effect.Effect<void, WeChatError>
  readonly fetchPermanentCode: (
    suiteId: SuiteId,
    suiteToken: string,
    authCode: string
  ) => Effect.Effect<PermanentCode, WeChatError>
  readonly fetchAuthInfo: (
    suiteId: SuiteId,
    suiteToken: string,
    corpId: CorpId,
    permanentCode: string
  ) => Effect.Effect<AuthInfo, WeChatError>
  readonly fetchCorpToken: (
    suiteId: SuiteId,
    suiteToken: string,
    corpId: CorpId,
    permanentCode: string
  ) => Effect.Effect<Issued, WeChatError>
  readonly fetchProviderToken: (provider: ProviderCredentials) => Effect.Effect<Issued, WeChatError>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class WeComSuiteApi
  extends Context.Tag("effect-wechat-token/WeComSuiteApi")<WeComSuiteApi, WeComSuiteApiShape>()
{}

const Lifetime = Upstream.Lifetime
const Value = Upstream.CredentialValue

const SuiteTokenBody = Schema.Struct({ suite_access_token: Value, expires_in: Lifetime })
const ProviderTokenBody = Schema.Struct({ provider_access_token: Value, expires_in: Lifetime })
const PreAuthCodeBody = Schema.Struct({ pre_auth_code: Value, expires_in: Lifetime })
const OkBody = Schema.Struct({ errcode: Schema.optional(Schema.Literal(0)), errmsg: Schema.optional(Schema.String) })
const CorpInfo = Schema.Struct({
  corpid: CorpIdSchema,
  corp_name: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(200)), { default: () => "" })
})
const PermanentCodeBody = Schema.Struct({ permanent_code: Value, auth_corp_info: CorpInfo })
const AuthInfoBody = Schema.Struct({
  auth_corp_info: CorpInfo,
  auth_info: Schema.Struct({
    agent: Schema.Array(Schema.Struct({ agentid: Schema.Int.pipe(Schema.positive()) })).pipe(Schema.maxItems(100))
  })
})

// The suite errcodes WeCom documents and what they mean for the operator.
// 40082 is the suite (or provider) token failing, which the token's refresh
// repairs, so it reads as `InvalidCredential` like 40014/42001.
const advice: Readonly<Record<number, string>> = {
  40078: "the install's temporary auth code is invalid, used or older than 10 minutes",
  40083: "WeCom does not know this suite id: check WECOM_SUITES",
  40085: "the suite ticket is invalid or older than 30 minutes: check that WeCom reaches the suite's command URL",
  41025: "the permanent code is missing"
}
const TOKEN_ERRCODES: ReadonlySet<number> = new Set([40082])

/**
 * The suite reading of an errcode: a suite or provider token failure becomes
 * `InvalidCredential`, the others a message naming the suite (or corp) and
 * what it means. Never holds a secret.
 *
 * @since 0.3.0
 * @category errors
 */
export const suiteError = (subject: string) => (error: WeChatError): WeChatError =>
  error._tag !== "WeChatApiError"
    ? error
    : TOKEN_ERRCODES.has(error.errcode)
    ? new InvalidCredential({ errcode: error.errcode, errmsg: error.errmsg })
    : advice[error.errcode] !== undefined
    ? new WeChatApiError({ errcode: error.errcode, errmsg: `${subject}: ${advice[error.errcode]} (${error.errmsg})` })
    : error

/**
 * Builds the service over the `HttpClient` in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<WeComSuiteApiShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const baseUrl = (options.baseUrl ?? WeComConfig.defaults.apiBaseUrl).replace(/\/+$/, "")
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const execute = yield* Upstream.makeSend(timeout)
    const call = <A, I>(
      endpoint: string,
      request: HttpClientRequest.HttpClientRequest,
      success: Schema.Schema<A, I>,
      context: { readonly appId: string; readonly site: CallSite }
    ) =>
      execute(endpoint, request).pipe(
        Effect.flatMap((answer) => decodeBody(success)(answer, context)),
        Effect.mapError(suiteError(context.appId))
      )
    // Every service endpoint but one is a JSON POST; the suite token rides in the query.
    const post = <A, I>(
      endpoint: string,
      body: Record<string, unknown>,
      success: Schema.Schema<A, I>,
      context: { readonly appId: string; readonly site: CallSite },
      suiteToken?: string
    ) =>
      call(
        endpoint,
        HttpClientRequest.post(`${baseUrl}/cgi-bin/service/${endpoint}`).pipe(
          HttpClientRequest.setUrlParams(suiteToken === undefined ? {} : { suite_access_token: suiteToken }),
          HttpClientRequest.bodyUnsafeJson(body)
        ),
        success,
        context
      )

    return WeComSuiteApi.of({
      fetchSuiteToken: (suite, suiteTicket) =>
        post(
          "get_suite_token",
          { suite_id: suite.suiteId, suite_secret: Redacted.value(suite.secret), suite_ticket: suiteTicket },
          SuiteTokenBody,
          { appId: suite.suiteId, site: "token-endpoint" }
        ).pipe(Effect.map((body) => ({ value: body.suite_access_token, expiresInSeconds: body.expires_in }))),
      createPreAuthCode: (suiteId, suiteToken) =>
        call(
          "get_pre_auth_code",
          HttpClientRequest.get(`${baseUrl}/cgi-bin/service/get_pre_auth_code`).pipe(
            HttpClientRequest.setUrlParams({ suite_access_token: suiteToken })
          ),
          PreAuthCodeBody,
          { appId: suiteId, site: "api-call" }
        ).pipe(Effect.map((body) => ({ value: body.pre_auth_code, expiresInSeconds: body.expires_in }))),
      setSessionInfo: (suiteId, suiteToken, preAuthCode, session) =>
        post(
          "set_session_info",
          {
            pre_auth_code: preAuthCode,
            session_info: {
              ...(session.appIds === undefined ? {} : { appid: session.appIds }),
              auth_type: session.authType ?? 0
            }
          },
          OkBody,
          { appId: suiteId, site: "api-call" },
          suiteToken
        ).pipe(Effect.asVoid),
      // v2: WeCom's current exchange (the first one is slow and WeCom advises v2
      // for installs answered synchronously); it answers no corp token, which the
      // engine fetches with `get_corp_token` like every later one.
      fetchPermanentCode: (suiteId, suiteToken, authCode) =>
        post(
          "v2/get_permanent_code",
          { auth_code: authCode },
          PermanentCodeBody,
          { appId: suiteId, site: "api-call" },
          suiteToken
        ).pipe(Effect.map((body) => ({
          corpId: body.auth_corp_info.corpid,
          corpName: body.auth_corp_info.corp_name,
          permanentCode: body.permanent_code
        }))),
      fetchAuthInfo: (suiteId, suiteToken, corpId, permanentCode) =>
        post(
          "get_auth_info",
          { auth_corpid: corpId, permanent_code: permanentCode },
          AuthInfoBody,
          { appId: `${suiteId}:${corpId}`, site: "api-call" },
          suiteToken
        ).pipe(Effect.map((body) => ({
          corpId: body.auth_corp_info.corpid,
          agentIds: body.auth_info.agent.map((agent) => agent.agentid)
        }))),
      fetchCorpToken: (suiteId, suiteToken, corpId, permanentCode) =>
        post(
          "get_corp_token",
          { auth_corpid: corpId, permanent_code: permanentCode },
          Upstream.TokenBody,
          { appId: `${suiteId}:${corpId}`, site: "api-call" },
          suiteToken
        ).pipe(Effect.map((body) => ({ value: body.access_token, expiresInSeconds: body.expires_in }))),
      fetchProviderToken: (provider) =>
        post(
          "get_provider_token",
          { corpid: provider.corpId, provider_secret: Redacted.value(provider.secret) },
          ProviderTokenBody,
          { appId: provider.corpId, site: "token-endpoint" }
        ).pipe(Effect.map((body) => ({ value: body.provider_access_token, expiresInSeconds: body.expires_in })))
    })
  })

/**
 * The service over the `HttpClient` in context.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<WeComSuiteApi, never, HttpClient.HttpClient> =>
  Layer.effect(WeComSuiteApi, make(options))
