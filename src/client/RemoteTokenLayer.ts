/**
 * The `AccessToken` service backed by a central token server's HTTP API, for
 * business servers: they never hold the app secret and never call WeChat's
 * token endpoint, so they cannot kill each other's tokens.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import type * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  Clock,
  Config,
  type ConfigError,
  Duration,
  Effect,
  Layer,
  type ParseResult,
  Redacted,
  Schedule,
  Schema
} from "effect"
import { AccessToken, AccessTokenError, type Credential } from "../AccessToken.js"
import * as ApiError from "../api/ApiError.js"
import { InvalidPageUrl } from "../api/JsSdkConfig.js"
import { TokenServerApi } from "../api/TokenServerApi.js"
import { AppId } from "../AppId.js"
import * as SingleFlight from "../internal/singleFlight.js"
import { WeComToken } from "../internal/weComToken.js"
import { AgentKey, CorpId } from "../OwnerId.js"
import { UnknownApp, UpstreamUnavailable } from "../WeChatError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The central server, e.g. `http://tokens.internal:8787`. */
  readonly baseUrl: string
  /** One of the server's `CLIENT_KEYS`. */
  readonly clientKey: Redacted.Redacted<string>
  /**
   * A cached token is used until this long before the `expires_in` the server
   * served, so it never dies in flight. Default 30 s.
   */
  readonly expiryMargin?: Duration.DurationInput
  /** Each call to the server gives up after this long. Default 10 s. */
  readonly timeout?: Duration.DurationInput
}

const unavailable = (reason: UpstreamUnavailable["reason"], detail: string) =>
  new UpstreamUnavailable({ reason, detail: `token server: ${detail}` })

const transportRetry = Schedule.exponential(Duration.millis(50)).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(2))
)

// The error bodies the API declares; each class carries its status.
const API_ERRORS = [
  ApiError.BadRequest,
  ApiError.Unauthorized,
  ApiError.NotFound,
  ApiError.MethodNotAllowed,
  ApiError.RequestTimeout,
  ApiError.PayloadTooLarge,
  ApiError.TokenUnavailable
] as const

type ClientFailure =
  | ApiError.ApiError
  | HttpApiError.HttpApiDecodeError
  | HttpClientError.HttpClientError
  | ParseResult.ParseError

const isAccessTokenError = Schema.is(AccessTokenError)

// What a failed call means to a caller: the failure the server's engine had
// (the same value a local engine fails with), an app the server does not
// serve (or not to this key), a refused key, the server's own cause, or no answer.
const toAccessTokenError = (owner: string) => (error: ClientFailure): AccessTokenError => {
  // Only the API's declared error bodies have an `error` field.
  if ("error" in error) {
    if (isAccessTokenError(error.error.failure)) {
      return error.error.failure
    }
    if (error instanceof ApiError.NotFound && error.error.code === "unknown_app") {
      return new UnknownApp({ appId: owner })
    }
    if (error instanceof ApiError.Unauthorized) {
      return unavailable("http-status", "HTTP 401, the client key was refused; check TOKEN_SERVER_KEY")
    }
    const declared = API_ERRORS.find((schema) => error instanceof schema)
    const status = declared === undefined ? "" : ` ${HttpApiSchema.getStatusError(declared)}`
    return unavailable("http-status", `HTTP${status} ${error.error.code}: ${error.error.message}`)
  }
  switch (error._tag) {
    case "ParseError":
    case "HttpApiDecodeError":
      return unavailable("malformed-body", "the answer does not match the API schema")
    case "RequestError":
      return unavailable("network", error.reason === "Transport" ? `unreachable (${error.message})` : error.message)
    case "ResponseError":
      return unavailable("http-status", `HTTP ${error.response.status}`)
  }
}

// The API's client over the `HttpClient` in context: the server's base URL,
// the key, and transport failures retried (a kept-alive connection the server
// has just closed, or a server restarting behind a load balancer: every route
// is safe to repeat).
const serverApi = (options: Options) =>
  HttpApiClient.make(TokenServerApi, {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    transformClient: (client) =>
      client.pipe(
        HttpClient.mapRequest(HttpClientRequest.bearerToken(options.clientKey)),
        HttpClient.retry({
          schedule: transportRetry,
          while: (error) => error._tag === "RequestError" && error.reason === "Transport"
        })
      )
  })

interface Issued {
  readonly value: string
  readonly expiresIn: number
}

const token = (body: { readonly access_token: string; readonly expires_in: number }): Issued => ({
  value: body.access_token,
  expiresIn: body.expires_in
})

const ticket = (body: { readonly ticket: string; readonly expires_in: number }): Issued => ({
  value: body.ticket,
  expiresIn: body.expires_in
})

// Credentials fetched from the server, cached until the expiry margin, one
// call per key at a time. Keys name the owner and the route; both services
// below are routes over this one cache.
const remoteCredentials = (options: Options) =>
  Effect.gen(function*() {
    const marginMillis = Duration.toMillis(options.expiryMargin ?? Duration.seconds(30))
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const api = yield* serverApi(options)
    const cache = new Map<string, Credential>()
    // The call runs in the layer's scope, so a caller that gives up does not
    // cancel it for the others.
    const flights = yield* SingleFlight.make<string, Credential, AccessTokenError>()

    /** One call to the server, its failures in the caller's terms, bounded by the timeout. */
    const call = <A, E>(
      request: Effect.Effect<A, ClientFailure>,
      translate: (error: ClientFailure) => E
    ): Effect.Effect<A, E | UpstreamUnavailable> =>
      request.pipe(
        Effect.mapError(translate),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => unavailable("timeout", `no answer within ${Duration.format(timeout)}`)
        })
      )

    // The credential's expiry is counted from `expires_in` on this machine's
    // clock, so clock skew between the machines does not matter.
    const fetch = (owner: string, key: string, request: Effect.Effect<Issued, ClientFailure>) =>
      Effect.gen(function*() {
        const issued = yield* call(request, toAccessTokenError(owner))
        const held: Credential = {
          value: issued.value,
          expiresAt: (yield* Clock.currentTimeMillis) + issued.expiresIn * 1000
        }
        cache.set(key, held)
        return held
      })

    const cached = (key: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const held = cache.get(key)
        return held !== undefined && now < held.expiresAt - marginMillis ? held : undefined
      })

    /** A credential, answered from the cache while the held value is fresh. */
    const get = (owner: string, key: string, request: Effect.Effect<Issued, ClientFailure>) =>
      Effect.flatMap(cached(key), (held) =>
        held !== undefined ? Effect.succeed(held) : flights.run(`get ${key}`, fetch(owner, key, request)))

    /** Compare-and-refresh of the token under `key` through the server's refresh route. */
    const refresh = (
      owner: string,
      key: string,
      staleToken: string | undefined,
      requests: {
        readonly get: Effect.Effect<Issued, ClientFailure>
        readonly refresh: (stale: string) => Effect.Effect<Issued, ClientFailure>
      }
    ) =>
      Effect.flatMap(cached(key), (held) => {
        // Someone here already replaced the rejected token: no call needed.
        if (held !== undefined && staleToken !== undefined && held.value !== staleToken) {
          return Effect.succeed(held)
        }
        // Without a stale token, report the one this process holds: the
        // server then replaces it only if it is still current.
        const stale = staleToken ?? cache.get(key)?.value
        if (stale === undefined) {
          return get(owner, key, requests.get)
        }
        return flights.run(`refresh ${key} ${stale}`, fetch(owner, key, requests.refresh(stale)))
      })

    return { api, call, get, refresh }
  })

// An id that is not of the shape the API takes cannot be configured on the
// server: answered as unknown without a call.
const isAppId = Schema.is(AppId)
const isCorpId = Schema.is(CorpId)
const isAgentKey = Schema.is(AgentKey)

/**
 * Builds the service in a scope: calls still running when it closes are interrupted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.map(remoteCredentials(options), ({ api, get, refresh }) => {
    const requests = (appId: AppId) => ({
      get: Effect.map(api.tokens.accessToken({ path: { appId } }), token),
      refresh: (stale: string) =>
        Effect.map(api.tokens.refreshAccessToken({ path: { appId }, payload: { stale_token: stale } }), token)
    })
    return AccessToken.of({
      get: (appId) =>
        isAppId(appId)
          ? get(appId, `${appId} access-token`, requests(appId).get)
          : Effect.fail(new UnknownApp({ appId })),
      refresh: (appId, staleToken) =>
        isAppId(appId)
          ? refresh(appId, `${appId} access-token`, staleToken, requests(appId))
          : Effect.fail(new UnknownApp({ appId }))
    })
  })

/**
 * The `WeComToken` service over a central server's WeCom routes
 * (`/v1/wecom/{corpId}/agents/{agent}/…`): tokens and tickets cached until
 * the expiry margin, one call per key at a time; signatures asked for each time.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWeCom = (options: Options) =>
  Effect.map(remoteCredentials(options), ({ api, call, get, refresh }) => {
    const owned = <A, E>(
      corpId: string,
      agent: string,
      run: (path: { readonly corpId: CorpId; readonly agent: AgentKey }, owner: string) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | UnknownApp> => {
      const owner = `${corpId}/${agent}`
      return isCorpId(corpId) && isAgentKey(agent)
        ? run({ corpId, agent }, owner)
        : Effect.fail(new UnknownApp({ appId: owner }))
    }
    const requests = (path: { readonly corpId: CorpId; readonly agent: AgentKey }) => ({
      get: Effect.map(api.wecom.accessToken({ path }), token),
      refresh: (stale: string) =>
        Effect.map(api.wecom.refreshAccessToken({ path, payload: { stale_token: stale } }), token)
    })
    return WeComToken.of({
      get: (corpId, agent) =>
        owned(corpId, agent, (path, owner) => get(owner, `${owner} access-token`, requests(path).get)),
      refresh: (corpId, agent, staleToken) =>
        owned(corpId, agent, (path, owner) => refresh(owner, `${owner} access-token`, staleToken, requests(path))),
      jsapiTicket: (corpId, agent) =>
        owned(corpId, agent, (path, owner) =>
          get(owner, `${owner} jsapi-ticket`, Effect.map(api.wecom.jsapiTicket({ path }), ticket))),
      agentTicket: (corpId, agent) =>
        owned(corpId, agent, (path, owner) =>
          get(owner, `${owner} agent-ticket`, Effect.map(api.wecom.agentTicket({ path }), ticket))),
      jsSdkConfig: (corpId, agent, url) =>
        owned(corpId, agent, (path, owner) =>
          call(
            api.wecom.jsSdkConfig({ path, payload: { url } }),
            (error) =>
              error instanceof ApiError.BadRequest && error.error.code === "invalid_page_url"
                ? new InvalidPageUrl({ url, reason: error.error.message.replace(/^url: /, "") })
                : toAccessTokenError(owner)(error)
          ))
    })
  })

/**
 * `WeComToken` from a central server, over the `HttpClient` in context.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWeCom = (options: Options): Layer.Layer<WeComToken, never, HttpClient.HttpClient> =>
  Layer.scoped(WeComToken, makeWeCom(options))

/**
 * `AccessToken` from a central server, over the `HttpClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AccessToken, never, HttpClient.HttpClient> =>
  Layer.scoped(AccessToken, make(options))

/**
 * The server's address and key from `TOKEN_SERVER_URL` and `TOKEN_SERVER_KEY`.
 *
 * @since 0.1.0
 * @category config
 */
export const options: Config.Config<Options> = Config.all({
  baseUrl: Config.url("TOKEN_SERVER_URL").pipe(
    Config.validate({
      message: "TOKEN_SERVER_URL: must be an http(s) URL",
      validation: (url) => url.protocol === "http:" || url.protocol === "https:"
    }),
    Config.map((url) => url.href)
  ),
  clientKey: Config.redacted("TOKEN_SERVER_KEY")
})

/**
 * `AccessToken` from the server named by `TOKEN_SERVER_URL` / `TOKEN_SERVER_KEY`, over `fetch`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<AccessToken, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(options, layer)
).pipe(Layer.provide(FetchHttpClient.layer))

/**
 * `WeComToken` from the server named by `TOKEN_SERVER_URL` / `TOKEN_SERVER_KEY`, over `fetch`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWeComConfig: Layer.Layer<WeComToken, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(options, layerWeCom)
).pipe(Layer.provide(FetchHttpClient.layer))

/**
 * Where the proxy mode sends calls: the server, the client key, and whose
 * token they use (an app id, or a WeCom app as `corpid/agent`).
 *
 * @since 0.3.0
 * @category models
 */
export interface ProxyOptions extends Pick<Options, "baseUrl" | "clientKey"> {
  readonly owner: string
}

const proxyRoute = (owner: string): string => {
  const slash = owner.indexOf("/")
  return slash < 0
    ? `/v1/apps/${encodeURIComponent(owner)}/wechat`
    : `/v1/wecom/${encodeURIComponent(owner.slice(0, slash))}/agents/${
      encodeURIComponent(owner.slice(slash + 1))
    }/wechat`
}

/**
 * Proxy mode: `client` with every request sent through the central server's
 * proxy for `owner`, with the client key. Write WeChat calls as usual (e.g.
 * `POST https://api.weixin.qq.com/cgi-bin/message/custom/send`; the host is
 * replaced, path, query and body are kept) and without `access_token`: the
 * server adds the current token and, when WeChat says it is dead, refreshes
 * it and replays the call once. The process holds no token at all.
 *
 * @since 0.3.0
 * @category constructors
 */
export const proxyClient = (options: ProxyOptions) => (client: HttpClient.HttpClient): HttpClient.HttpClient => {
  const base = `${options.baseUrl.replace(/\/+$/, "")}${proxyRoute(options.owner)}`
  const authorization = `Bearer ${Redacted.value(options.clientKey)}`
  return HttpClient.mapRequest(client, (request) => {
    // Any host, or none: only the path and the query are WeChat's.
    const target = new URL(request.url, "https://api.weixin.qq.com")
    return request.pipe(
      HttpClientRequest.setUrl(`${base}/${target.pathname.replace(/^\/+/, "")}${target.search}`),
      HttpClientRequest.setHeader("authorization", authorization)
    )
  })
}

/**
 * The `HttpClient` in context, in proxy mode (`proxyClient`) for `owner`.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerProxyClient = (
  options: ProxyOptions
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient> =>
  Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, proxyClient(options)))
