/**
 * The WeChat HTTP endpoints the engine needs, over `@effect/platform`'s
 * `HttpClient`. Every body is decoded by a Schema union of success |
 * `{errcode, errmsg}` and every failure becomes a typed `WeChatError`.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  type Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  type ParseResult,
  Redacted,
  Schema
} from "effect"
import type { AppId } from "../../AppId.js"
import type { Issued } from "../../CredentialFamily.js"
import * as Upstream from "../../internal/upstream.js"
import type { TokenMode } from "../../Token.js"
import type { AppCredentials } from "../../TokenConfig.js"
import { type CallSite, fromErrcode, UpstreamUnavailable, type WeChatError } from "../../WeChatError.js"

/**
 * @since 0.2.0
 * @category utils
 */
export type {
  /**
   * A token or ticket as WeChat issued it.
   *
   * @since 0.1.0
   */
  Issued
} from "../../CredentialFamily.js"

/**
 * Where WeChat is and how long a call may take: all the service needs (no
 * app, no secret: those come with each call).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Default `https://api.weixin.qq.com`; the emulator's URL in tests. A trailing `/` is ignored. */
  readonly baseUrl?: string
  /** Each upstream call gives up after this long; default 10 s. */
  readonly timeout?: Duration.DurationInput
}

/**
 * The defaults of `Options`.
 *
 * @since 0.2.0
 * @category utils
 */
export const defaults = { baseUrl: "https://api.weixin.qq.com", timeout: Duration.seconds(10) } as const

/**
 * @since 0.1.0
 * @category models
 */
export type TicketType = "jsapi" | "wx_card"

/**
 * A call to any WeChat API; the access token is added by the caller.
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiRequest {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly query?: Readonly<Record<string, string>>
  readonly body?: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WeChatApiShape {
  readonly fetchAccessToken: (
    app: AppCredentials,
    mode: TokenMode,
    options: { readonly forceRefresh: boolean }
  ) => Effect.Effect<Issued, WeChatError>
  readonly fetchTicket: (appId: AppId, accessToken: string, type: TicketType) => Effect.Effect<Issued, WeChatError>
  /** Calls `request` with `access_token` added to the query and decodes the success body with `success`. */
  readonly call: <A, I>(
    appId: AppId,
    accessToken: string,
    request: ApiRequest,
    success: Schema.Schema<A, I>
  ) => Effect.Effect<A, WeChatError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WeChatApi extends Context.Tag("effect-wechat-token/WeChatApi")<WeChatApi, WeChatApiShape>() {}

const ErrorBody = Schema.Struct({
  errcode: Schema.Number.pipe(Schema.filter((code) => code !== 0)),
  errmsg: Schema.optionalWith(
    Schema.transform(Schema.String, Schema.String, {
      strict: true,
      decode: Upstream.truncate,
      encode: (errmsg) => errmsg
    }),
    { default: () => "" }
  )
})

// One decoder per success schema: a union made per call is a new schema,
// which `Schema.decodeUnknown` compiles anew each time (a compiled parser is
// cached by the schema's identity), and the API modules decode per call.
const decoders = new WeakMap<Schema.Schema.Any, (body: unknown) => Effect.Effect<unknown, ParseResult.ParseError>>()
const decoderOf = (success: Schema.Schema.Any) => {
  const known = decoders.get(success)
  if (known !== undefined) return known
  const made: (body: unknown) => Effect.Effect<unknown, ParseResult.ParseError> = Schema.decodeUnknown(
    Schema.Union(ErrorBody, success as Schema.Schema<unknown>)
  )
  decoders.set(success, made)
  return made
}

/**
 * Decodes a WeChat body: the error shape wins whenever `errcode` is non-zero,
 * whatever else the body holds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const decodeBody = <A, I>(success: Schema.Schema<A, I>) => {
  const decode = decoderOf(success)
  return (body: unknown, context: { readonly appId: string; readonly site: CallSite }): Effect.Effect<A, WeChatError> =>
    decode(body).pipe(
      Effect.mapError((error) =>
        new UpstreamUnavailable({
          reason: "malformed-body",
          detail: `the response does not match the schema: ${error.message.slice(0, 300)}`
        })
      ),
      Effect.flatMap((decoded) =>
        Schema.is(ErrorBody)(decoded)
          ? Effect.fail(fromErrcode(decoded.errcode, decoded.errmsg, context))
          : Effect.succeed(decoded as A)
      )
    )
}

const decodeToken = decodeBody(Upstream.TokenBody)
const decodeTicket = decodeBody(Upstream.TicketBody)

/**
 * Builds the service over the `HttpClient` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<WeChatApiShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const baseUrl = (options.baseUrl ?? defaults.baseUrl).replace(/\/+$/, "")
    const timeout = Duration.decode(options.timeout ?? defaults.timeout)
    const send = yield* Upstream.makeSend(timeout)
    const url = (path: string) => `${baseUrl}${path}`

    const fetchAccessToken: WeChatApiShape["fetchAccessToken"] = (app, mode, { forceRefresh }) => {
      const context = { appId: app.appId, site: "token-endpoint" } as const
      const request = mode === "classic"
        ? HttpClientRequest.get(url("/cgi-bin/token")).pipe(
          HttpClientRequest.setUrlParams({
            grant_type: "client_credential",
            appid: app.appId,
            secret: Redacted.value(app.secret)
          })
        )
        : HttpClientRequest.post(url("/cgi-bin/stable_token")).pipe(
          HttpClientRequest.bodyUnsafeJson({
            grant_type: "client_credential",
            appid: app.appId,
            secret: Redacted.value(app.secret),
            force_refresh: forceRefresh
          })
        )
      return send(mode === "classic" ? "token" : "stable_token", request).pipe(
        Effect.flatMap((body) => decodeToken(body, context)),
        Effect.map((body) => ({ value: body.access_token, expiresInSeconds: body.expires_in }))
      )
    }

    const fetchTicket: WeChatApiShape["fetchTicket"] = (appId, accessToken, type) =>
      send(
        "getticket",
        HttpClientRequest.get(url("/cgi-bin/ticket/getticket")).pipe(
          HttpClientRequest.setUrlParams({ access_token: accessToken, type })
        )
      ).pipe(
        Effect.flatMap((body) => decodeTicket(body, { appId, site: "api-call" })),
        Effect.map((body) => ({ value: body.ticket, expiresInSeconds: body.expires_in }))
      )

    const call: WeChatApiShape["call"] = (appId, accessToken, request, success) => {
      const decode = decodeBody(success)
      const base = request.method === "GET"
        ? HttpClientRequest.get(url(request.path))
        : HttpClientRequest.post(url(request.path))
      const withBody = request.body === undefined ? base : HttpClientRequest.bodyUnsafeJson(base, request.body)
      return send(
        request.path,
        HttpClientRequest.setUrlParams(withBody, { ...request.query, access_token: accessToken }),
        // Any API's answer, as large as that API makes it.
        Number.POSITIVE_INFINITY
      ).pipe(Effect.flatMap((body) => decode(body, { appId, site: "api-call" })))
    }

    return WeChatApi.of({ fetchAccessToken, fetchTicket, call })
  })

/**
 * The service over the `HttpClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<WeChatApi, never, HttpClient.HttpClient> =>
  Layer.effect(WeChatApi, make(options))

/**
 * The service with its options read from `Config`, e.g.
 * `Config.all({ baseUrl: Config.string("WECHAT_API_BASE_URL") })`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options>
): Layer.Layer<WeChatApi, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(WeChatApi, Effect.flatMap(config, make))
