/**
 * The `AccessToken` service backed by a central token server's HTTP API, for
 * business servers: they never hold the app secret and never call WeChat's
 * token endpoint, so they cannot kill each other's tokens.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import {
  Clock,
  Config,
  type ConfigError,
  Duration,
  Effect,
  Layer,
  Option,
  type Redacted,
  Schedule,
  Schema
} from "effect"
import { AccessToken, type AccessTokenError, type Credential } from "../AccessToken.js"
import * as SingleFlight from "../internal/singleFlight.js"
import { InvalidPageUrl } from "../JsSdk.js"
import { UnknownApp, UpstreamUnavailable } from "../WeChatError.js"
import { WeComJsSdkConfig, WeComToken } from "../WeComToken.js"

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

const TokenBody = Schema.Struct({
  access_token: Schema.String.pipe(Schema.minLength(1)),
  expires_in: Schema.Number.pipe(Schema.nonNegative())
})

const ErrorBody = Schema.Struct({
  error: Schema.Struct({ code: Schema.String, message: Schema.String })
})

const decodeToken = Schema.decodeUnknown(TokenBody)
const decodeError = Schema.decodeUnknownOption(ErrorBody)

const unavailable = (reason: UpstreamUnavailable["reason"], detail: string) =>
  new UpstreamUnavailable({ reason, detail: `token server: ${detail}` })

const transportRetry = Schedule.exponential(Duration.millis(50)).pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(2))
)

// Credentials fetched from the server, cached until the expiry margin, one
// call per key at a time. Keys name the owner and the route (`wx…
// access-token`); both services below are routes over this one cache.
const remoteCredentials = (options: Options) =>
  Effect.gen(function*() {
    const marginMillis = Duration.toMillis(options.expiryMargin ?? Duration.seconds(30))
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const client = yield* serverClient(options)
    const cache = new Map<string, Credential>()
    // The call runs in the layer's scope, so a caller that gives up does not
    // cancel it for the others.
    const flights = yield* SingleFlight.make<string, Credential, AccessTokenError>()

    // A 200 is the credential, its expiry counted from `expires_in` on this
    // machine's clock, so clock skew between the machines does not matter.
    const credential =
      (owner: string, key: string, read: (body: unknown) => Effect.Effect<Issued, unknown>) =>
      (response: HttpClientResponse.HttpClientResponse) =>
        Effect.gen(function*() {
          const body = yield* Effect.orElseSucceed(response.json, () => undefined)
          if (response.status !== 200) return yield* failure(owner, response.status, body)
          const issued = yield* Effect.mapError(
            read(body),
            () => unavailable("malformed-body", "the answer does not match the API schema")
          )
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

    /** `GET path`, answered from the cache while the held value is fresh. */
    const get = (owner: string, path: string, read: typeof readToken) => {
      const key = `${owner} ${path}`
      return Effect.flatMap(cached(key), (held) =>
        held !== undefined
          ? Effect.succeed(held)
          : flights.run(
            `get ${key}`,
            send(client, timeout, HttpClientRequest.get(path), credential(owner, key, read))
          ))
    }

    /** Compare-and-refresh of the token at `path` through `POST path/refresh`. */
    const refresh = (owner: string, path: string, staleToken: string | undefined) => {
      const key = `${owner} ${path}`
      return Effect.flatMap(cached(key), (held) => {
        // Someone here already replaced the rejected token: no call needed.
        if (held !== undefined && staleToken !== undefined && held.value !== staleToken) return Effect.succeed(held)
        // Without a stale token, report the one this process holds: the
        // server then replaces it only if it is still current.
        const stale = staleToken ?? cache.get(key)?.value
        if (stale === undefined) return get(owner, path, readToken)
        return flights.run(
          `refresh ${key} ${stale}`,
          send(
            client,
            timeout,
            HttpClientRequest.post(`${path}/refresh`).pipe(HttpClientRequest.bodyUnsafeJson({ stale_token: stale })),
            credential(owner, key, readToken)
          )
        )
      })
    }

    return { client, timeout, get, refresh }
  })

const readToken = (body: unknown) =>
  Effect.map(decodeToken(body), (token) => ({ value: token.access_token, expiresIn: token.expires_in }))

/**
 * Builds the service in a scope: calls still running when it closes are interrupted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options) =>
  Effect.map(remoteCredentials(options), (credentials) => {
    const path = (appId: string) => `/v1/apps/${encodeURIComponent(appId)}/access-token`
    return AccessToken.of({
      get: (appId) => credentials.get(appId, path(appId), readToken),
      refresh: (appId, staleToken) => credentials.refresh(appId, path(appId), staleToken)
    })
  })

// The client every call goes through: the server's base URL, the key, JSON.
const serverClient = (options: Options) =>
  Effect.map(HttpClient.HttpClient, (client) =>
    client.pipe(
      HttpClient.mapRequest((request) =>
        request.pipe(
          HttpClientRequest.prependUrl(options.baseUrl.replace(/\/+$/, "")),
          HttpClientRequest.bearerToken(options.clientKey),
          HttpClientRequest.acceptJson
        )
      )
    ))

// What a non-200 answer means to a caller: an app the server does not serve
// (or not to this key), a refused key, or the server's own cause.
const failure = (appId: string, status: number, body: unknown): Effect.Effect<never, AccessTokenError> => {
  const error = Option.map(decodeError(body), (decoded) => decoded.error)
  const said = Option.match(error, { onNone: () => "", onSome: (e) => ` ${e.code}: ${e.message}` })
  if (status === 404 && Option.exists(error, (e) => e.code === "unknown_app")) {
    return Effect.fail(new UnknownApp({ appId }))
  }
  if (status === 401) {
    return Effect.fail(unavailable("http-status", `HTTP 401, the client key was refused; check TOKEN_SERVER_KEY`))
  }
  return Effect.fail(unavailable("http-status", `HTTP ${status}${said}`))
}

// One call to the server: transport failures retried, then `answer` reads the response.
const send = <A, E>(
  client: HttpClient.HttpClient,
  timeout: Duration.Duration,
  request: HttpClientRequest.HttpClientRequest,
  answer: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, E>
): Effect.Effect<A, E | UpstreamUnavailable> =>
  client.execute(request).pipe(
    // A kept-alive connection the server has just closed, or a server
    // restarting behind a load balancer: every route is safe to repeat.
    Effect.retry({
      schedule: transportRetry,
      while: (error) => error._tag === "RequestError" && error.reason === "Transport"
    }),
    Effect.mapError((error) =>
      unavailable("network", error.reason === "Transport" ? `unreachable (${error.message})` : error.message)
    ),
    Effect.flatMap(answer),
    Effect.scoped,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => unavailable("timeout", `no answer within ${Duration.format(timeout)}`)
    })
  )

const TicketBody = Schema.Struct({
  ticket: Schema.String.pipe(Schema.minLength(1)),
  expires_in: Schema.Number.pipe(Schema.nonNegative())
})

const decodeTicket = Schema.decodeUnknown(TicketBody)
const decodeWeComJsSdkConfig = Schema.decodeUnknown(WeComJsSdkConfig)

/**
 * The `WeComToken` service over a central server's WeCom routes
 * (`/v1/wecom/{corpId}/agents/{agent}/…`): tokens and tickets cached until
 * the expiry margin, one call per key at a time; signatures asked for each time.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWeCom = (options: Options) =>
  Effect.gen(function*() {
    const credentials = yield* remoteCredentials(options)
    const base = (corpId: string, agent: string) =>
      `/v1/wecom/${encodeURIComponent(corpId)}/agents/${encodeURIComponent(agent)}`
    const readTicket = (body: unknown) =>
      Effect.map(decodeTicket(body), (ticket) => ({ value: ticket.ticket, expiresIn: ticket.expires_in }))
    const get = (corpId: string, agent: string) =>
      credentials.get(`${corpId}/${agent}`, `${base(corpId, agent)}/access-token`, readToken)
    const refresh = (corpId: string, agent: string, staleToken?: string) =>
      credentials.refresh(`${corpId}/${agent}`, `${base(corpId, agent)}/access-token`, staleToken)
    const ticket = (route: string) => (corpId: string, agent: string) =>
      credentials.get(`${corpId}/${agent}`, `${base(corpId, agent)}/${route}`, readTicket)

    const jsSdkConfig = (corpId: string, agent: string, url: string) =>
      send(
        credentials.client,
        credentials.timeout,
        HttpClientRequest.post(`${base(corpId, agent)}/jssdk-config`).pipe(HttpClientRequest.bodyUnsafeJson({ url })),
        (response) =>
          Effect.gen(function*() {
            const body = yield* Effect.orElseSucceed(response.json, () => undefined)
            if (response.status === 200) {
              return yield* Effect.mapError(
                decodeWeComJsSdkConfig(body),
                () => unavailable("malformed-body", "the answer does not match the API schema")
              )
            }
            const error = Option.map(decodeError(body), (decoded) => decoded.error)
            if (response.status === 400 && Option.exists(error, (e) => e.code === "invalid_page_url")) {
              return yield* Effect.fail(
                new InvalidPageUrl({ url, reason: Option.getOrThrow(error).message.replace(/^url: /, "") })
              )
            }
            return yield* failure(`${corpId}/${agent}`, response.status, body)
          })
      )

    return WeComToken.of({
      get,
      refresh,
      jsapiTicket: ticket("jsapi-ticket"),
      agentTicket: ticket("agent-ticket"),
      jsSdkConfig
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

interface Issued {
  readonly value: string
  readonly expiresIn: number
}

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
