/**
 * The WeCom (企业微信) HTTP endpoints the engine needs, over `@effect/platform`'s
 * `HttpClient`: `gettoken` per (corpid, agent), the corp ticket
 * (`get_jsapi_ticket`) and the agent ticket (`ticket/get?type=agent_config`).
 * Bodies are decoded as in `WeChatApi`; WeCom's own configuration errcodes
 * become errors that tell an operator what to fix.
 *
 * @since 0.2.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import type { Issued } from "../../CredentialFamily.js"
import * as Upstream from "../../internal/upstream.js"
import type { WeComAgentId } from "../../OwnerId.js"
import { InvalidAppSecret, WeChatApiError, type WeChatError } from "../../WeChatError.js"
import { decodeBody } from "../officialAccount/WeChatApi.js"
import type { WeComAppCredentials } from "./WeComConfig.js"

/**
 * Where WeCom is and how long a call may take.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default `https://qyapi.weixin.qq.com`; the emulator's URL in tests. A trailing `/` is ignored. */
  readonly baseUrl?: string
  /** Each upstream call gives up after this long; default 10 s. */
  readonly timeout?: Duration.DurationInput
}

/**
 * @since 0.2.0
 * @category models
 */
export interface WeComApiShape {
  readonly fetchToken: (app: WeComAppCredentials) => Effect.Effect<Issued, WeChatError>
  /** The corp's jsapi ticket (`wx.config`), with any token of the corp. */
  readonly fetchCorpTicket: (owner: WeComAgentId, accessToken: string) => Effect.Effect<Issued, WeChatError>
  /** The agent's ticket (`wx.agentConfig`), with that agent's token. */
  readonly fetchAgentTicket: (owner: WeComAgentId, accessToken: string) => Effect.Effect<Issued, WeChatError>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class WeComApi extends Context.Tag("effect-wechat-token/WeComApi")<WeComApi, WeComApiShape>() {}

const decodeToken = decodeBody(Upstream.TokenBody)
const decodeTicket = decodeBody(Upstream.TicketBody)

const advice: Readonly<Record<number, string>> = {
  40013: "WeCom does not know this corp id: check WECOM_APPS",
  40056: "WeCom does not know this agent: check the AgentId in WECOM_APPS",
  60020: "the caller IP is not among the WeCom app's trusted IPs (企业可信IP): add it in the WeCom admin console",
  301002: "the token belongs to another agent of the corp"
}

/**
 * WeCom's reading of an errcode where it differs from WeChat's: a wrong
 * secret on `gettoken` is 40001; a wrong corp id, an unknown agent, an
 * untrusted IP are configuration errors named for the operator. The error
 * names the owner (`corpid/agent`), never the secret.
 *
 * @since 0.2.0
 * @category errors
 */
export const weComError = (owner: WeComAgentId, site: "gettoken" | "ticket") => (error: WeChatError): WeChatError => {
  if (error._tag === "InvalidAppSecret" || error._tag === "InvalidAppId") {
    return error._tag === "InvalidAppId"
      ? new WeChatApiError({ errcode: 40013, errmsg: `${owner}: ${advice[40013]} (${error.errmsg})` })
      : error
  }
  if (error._tag === "InvalidCredential" && error.errcode === 40001 && site === "gettoken") {
    return new InvalidAppSecret({ appId: owner, errcode: 40001 })
  }
  if (error._tag === "WeChatApiError" && advice[error.errcode] !== undefined) {
    return new WeChatApiError({
      errcode: error.errcode,
      errmsg: `${owner}: ${advice[error.errcode]} (${error.errmsg})`
    })
  }
  return error
}

/**
 * Builds the service over the `HttpClient` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<WeComApiShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const baseUrl = (options.baseUrl ?? "https://qyapi.weixin.qq.com").replace(/\/+$/, "")
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const execute = yield* Upstream.makeSend(timeout)
    const send = (endpoint: string, path: string, query: Record<string, string>) =>
      execute(endpoint, HttpClientRequest.get(`${baseUrl}${path}`).pipe(HttpClientRequest.setUrlParams(query)))

    const fetchToken: WeComApiShape["fetchToken"] = (app) =>
      send("wecom_gettoken", "/cgi-bin/gettoken", { corpid: app.corpId, corpsecret: Redacted.value(app.secret) }).pipe(
        Effect.flatMap((body) => decodeToken(body, { appId: app.owner, site: "api-call" })),
        Effect.mapError(weComError(app.owner, "gettoken")),
        Effect.map((body) => ({ value: body.access_token, expiresInSeconds: body.expires_in }))
      )

    const ticket =
      (endpoint: string, path: string, extra: Record<string, string>) => (owner: WeComAgentId, accessToken: string) =>
        send(endpoint, path, { access_token: accessToken, ...extra }).pipe(
          Effect.flatMap((body) => decodeTicket(body, { appId: owner, site: "api-call" })),
          Effect.mapError(weComError(owner, "ticket")),
          Effect.map((body) => ({ value: body.ticket, expiresInSeconds: body.expires_in }))
        )

    return WeComApi.of({
      fetchToken,
      fetchCorpTicket: ticket("wecom_get_jsapi_ticket", "/cgi-bin/get_jsapi_ticket", {}),
      fetchAgentTicket: ticket("wecom_agent_ticket", "/cgi-bin/ticket/get", { type: "agent_config" })
    })
  })

/**
 * The service over the `HttpClient` in context.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<WeComApi, never, HttpClient.HttpClient> =>
  Layer.effect(WeComApi, make(options))
