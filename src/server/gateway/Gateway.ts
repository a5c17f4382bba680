/**
 * The WeChat-compatible gateway: the server speaks WeChat's own API at
 * WeChat's own paths, so an SDK in any language (WxJava, EasyWeChat,
 * silenceper/wechat, wechatpy, Senparc, co-wechat-api…) uses the central
 * server by changing only its API host, with a client key where it expects
 * the app secret.
 *
 * - Token endpoints (`cgi-bin/token`, `cgi-bin/stable_token`, WeCom's
 *   `cgi-bin/gettoken`) answer a gateway token: opaque, valid on every
 *   replica with the same `CLIENT_KEYS`, across any number of real-token
 *   refreshes, until its client key is removed. No WeChat token ever
 *   reaches the SDK.
 * - Every other call with `access_token=GATEWAY_TOKEN` is forwarded by the
 *   proxy with the real token (paths that mint credentials refused, limits,
 *   streaming, compare-and-refresh and one replay, the token masked in the
 *   answer). Any other `access_token`, a real WeChat token included, gets
 *   40001 and goes nowhere.
 * - Tickets (`ticket/getticket`, WeCom's `get_jsapi_ticket` and
 *   `ticket/get?type=agent_config`) are the engine's.
 * - `sns/jscode2session` and `sns/oauth2/access_token` are forwarded with the
 *   real secret in place of the client key.
 *
 * Every answer has WeChat's shape (HTTP 200, `errcode`/`errmsg`), so SDKs
 * raise their usual errors. The gateway answers every path that is not one of
 * the server's routes (nor under `/v1/`), behind the fast path and the
 * `/v1` proxy; `GATEWAY=false` leaves those paths to the server's 404.
 *
 * @since 0.3.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Context, Duration, Effect, Layer, Metric, MetricLabel, type Redacted, type Scope } from "effect"
import { type AccessTokenError, type Credential } from "../../AccessToken.js"
import * as ProxyApi from "../../api/ProxyApi.js"
import * as WeComToken from "../../families/wecom/WeComToken.js"
import * as OwnerId from "../../OwnerId.js"
import { TokenEngine } from "../../TokenEngine.js"
import type * as ClientAuth from "../ClientAuth.js"
import * as FastPath from "../FastPath.js"
import * as RequestBody from "../internal/nodeRequest.js"
import * as UpstreamCall from "../internal/upstreamCall.js"
import * as Proxy from "../Proxy.js"
import type * as ProxyTarget from "../ProxyTarget.js"
import * as RequestLimits from "../RequestLimits.js"
import * as Routes from "../Routes.js"
import type * as ServerConfig from "../ServerConfig.js"
import * as ServerMetrics from "../ServerMetrics.js"
import * as Answers from "./internal/answers.js"
import * as GatewayToken from "./internal/gatewayToken.js"
import * as Keys from "./internal/keys.js"
import * as SecretCalls from "./internal/secretCalls.js"
import * as Tokens from "./internal/tokens.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The apps' secrets, for the calls that take one (`sns/jscode2session`, `sns/oauth2/access_token`). */
  readonly secrets: ReadonlyArray<{ readonly appId: string; readonly secret: Redacted.Redacted<string> }>
  /** Where those calls go: WeChat's API host (`WECHAT_API_BASE_URL`). */
  readonly wechatBaseUrl: string
  /** WeChat must answer them within this long. Default 10 s. */
  readonly upstreamTimeout?: Duration.DurationInput
}

/**
 * The kind of call, as the gateway's metric counts it.
 *
 * @since 0.3.0
 * @category models
 */
export type Call = "token" | "stable_token" | "wecom_token" | "ticket" | "secret" | "forward" | "unsupported"

/**
 * @since 0.3.0
 * @category models
 */
export interface GatewayShape {
  /** Answers one request at a gateway path, checked against `keys` (client keys as the server holds them). */
  readonly answer: (
    request: HttpServerRequest.HttpServerRequest,
    keys: Keys.Keys,
    requestTimeout: Duration.Duration
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, Scope.Scope>
}

/**
 * The gateway, when the server has one: `NodeServer` serves WeChat's paths
 * only when this service is in its context.
 *
 * @since 0.3.0
 * @category tags
 */
export class Gateway extends Context.Tag("effect-wechat-token/Gateway")<Gateway, GatewayShape>() {}

type Outcome = "ok" | "refused" | "failed"

// Each label set tagged once: a bounded set (calls × outcomes).
const counters = new Map<string, Metric.Metric.Counter<number>>()
const count = (call: Call, outcome: Outcome): Effect.Effect<void> => {
  const key = `${call} ${outcome}`
  let counter = counters.get(key)
  if (counter === undefined) {
    counter = Metric.taggedWithLabels(ServerMetrics.gatewayRequests, [
      MetricLabel.make("call", call),
      MetricLabel.make("outcome", outcome)
    ])
    counters.set(key, counter)
  }
  return Metric.increment(counter)
}

const answered = (call: Call, outcome: Outcome, response: HttpServerResponse.HttpServerResponse) =>
  Effect.as(count(call, outcome), response)

const queryOf = (url: string): URLSearchParams => {
  const at = url.indexOf("?")
  return new URLSearchParams(at === -1 ? "" : url.slice(at + 1))
}

// What the ticket endpoints name, and the engine's kind for it.
const TICKET_KINDS: Record<string, string> = { jsapi: "jsapi_ticket", wx_card: "wx_card_ticket" }

const findTarget = (targets: ReadonlyArray<ProxyTarget.ProxyTarget>, pattern: string) => {
  const found = targets.find((target) => target.pattern === pattern)
  if (found === undefined) throw new Error(`the proxy has no target ${pattern}`)
  return found
}

/**
 * The gateway over the engine and the proxy in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<GatewayShape, never, TokenEngine | Proxy.Proxy | Scope.Scope> =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    const proxy = yield* Proxy.Proxy
    const wecom = yield* Effect.provideService(WeComToken.make, TokenEngine, engine)
    const upstream = yield* UpstreamCall.make
    const upstreamTimeout = Duration.decode(options.upstreamTimeout ?? Duration.seconds(10))
    const secrets = new Map(options.secrets.map(({ appId, secret }) => [appId, secret]))
    const secretCalls = SecretCalls.make({
      upstream,
      baseUrl: options.wechatBaseUrl,
      secretOf: (appId) => secrets.get(appId),
      timeout: upstreamTimeout
    })
    const targets: Record<GatewayToken.Kind, ProxyTarget.ProxyTarget> = {
      app: findTarget(proxy.targets, ProxyApi.APP_PATTERN),
      wecom: findTarget(proxy.targets, ProxyApi.WECOM_PATTERN)
    }
    const weComOwners = engine.apps.filter(OwnerId.isWeCom)
    const nowSeconds = Effect.map(Clock.currentTimeMillis, (now) => Math.floor(now / 1000))

    // The owner a presented gateway token stands for, when the token is one
    // of ours and its key may still use that owner; else WeChat's 40001.
    const claimsOf = (
      request: HttpServerRequest.HttpServerRequest,
      query: URLSearchParams,
      keys: Keys.Keys,
      now: number
    ) => {
      const presented = query.getAll("access_token")
      // Two tokens in one call: which one counts would be a guess.
      if (presented.length !== 1) return undefined
      const claims = keys.tokenOn(NodeHttpServerRequest.toIncomingMessage(request).socket, presented[0]!)
      if (claims === undefined || !GatewayToken.isCurrent(claims, now) || !keys.allows(claims.key, claims.owner)) {
        return undefined
      }
      return targets[claims.kind].known(claims.owner) ? claims : undefined
    }

    const ticket = (
      held: Effect.Effect<Credential, AccessTokenError>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      Effect.matchEffect(held, {
        onFailure: (error) => answered("ticket", "failed", Answers.error(-1, `system error: ${error.message}`)),
        onSuccess: (credential) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            answered(
              "ticket",
              "ok",
              Answers.json({
                errcode: 0,
                errmsg: "ok",
                ticket: credential.value,
                expires_in: FastPath.lifetime(credential, now).expires_in
              })
            ))
      })

    const stableToken = (request: HttpServerRequest.HttpServerRequest, keys: Keys.Keys, timeout: Duration.Duration) =>
      Effect.gen(function*() {
        if (request.method !== "POST") {
          return yield* answered("stable_token", "refused", Answers.error(43002, "require POST method"))
        }
        const source = NodeHttpServerRequest.toIncomingMessage(request)
        const read = yield* Effect.either(Effect.interruptible(
          RequestBody.read(source, RequestLimits.DEFAULT_MAX_BODY_BYTES, Duration.toMillis(timeout))
        ))
        if (read._tag === "Left") {
          if (read.left === "client-closed") return yield* Effect.interrupt
          RequestBody.closeAfter(
            source,
            NodeHttpServerRequest.toServerResponse(request),
            Duration.toMillis(RequestLimits.LINGER)
          )
          return yield* answered(
            "stable_token",
            "refused",
            Answers.error(47001, "data format error: the body is too large or did not arrive")
          )
        }
        const fields = parseObject(new TextDecoder().decode(read.right))
        if (fields === undefined) {
          return yield* answered("stable_token", "refused", Answers.error(47001, "data format error"))
        }
        const issued = Tokens.app(
          { grantType: fields["grant_type"], appId: fields["appid"], secret: fields["secret"] },
          { keys, known: targets.app.known, nowSeconds: yield* nowSeconds }
        )
        return yield* answered("stable_token", issued.ok ? "ok" : "refused", issued.response)
      })

    const forward = (
      request: HttpServerRequest.HttpServerRequest,
      path: string,
      query: URLSearchParams,
      keys: Keys.Keys,
      timeout: Duration.Duration
    ) =>
      Effect.gen(function*() {
        const claims = claimsOf(request, query, keys, yield* nowSeconds)
        if (claims === undefined) return yield* answered("forward", "refused", Answers.invalidToken())
        const forwarded = new URLSearchParams(query)
        forwarded.delete("access_token")
        const response = yield* proxy.forward(request, targets[claims.kind], claims.owner, path.slice(1), timeout, {
          query: forwarded,
          refusal: Answers.refusal
        })
        return yield* answered("forward", "ok", response)
      })

    const answer: GatewayShape["answer"] = (request, keys, requestTimeout) =>
      Effect.gen(function*() {
        const path = Routes.pathOf(request.url)
        const query = queryOf(request.url)
        switch (path) {
          case "/cgi-bin/token": {
            const issued = Tokens.app(
              { grantType: query.get("grant_type"), appId: query.get("appid"), secret: query.get("secret") },
              { keys, known: targets.app.known, nowSeconds: yield* nowSeconds }
            )
            return yield* answered("token", issued.ok ? "ok" : "refused", issued.response)
          }
          case "/cgi-bin/stable_token":
            return yield* stableToken(request, keys, requestTimeout)
          case "/cgi-bin/gettoken": {
            const issued = Tokens.weCom(query, { keys, owners: weComOwners, nowSeconds: yield* nowSeconds })
            return yield* answered("wecom_token", issued.ok ? "ok" : "refused", issued.response)
          }
          case "/cgi-bin/ticket/getticket":
          case "/cgi-bin/get_jsapi_ticket":
          case "/cgi-bin/ticket/get": {
            const claims = claimsOf(request, query, keys, yield* nowSeconds)
            if (claims === undefined) return yield* answered("ticket", "refused", Answers.invalidToken())
            const type = query.get("type") ?? ""
            if (claims.kind === "app" && path === "/cgi-bin/ticket/getticket" && type in TICKET_KINDS) {
              return yield* ticket(engine.get(claims.owner, TICKET_KINDS[type]!))
            }
            const [corpId, agent] = claims.owner.split("/") as [string, string]
            if (claims.kind === "wecom" && path === "/cgi-bin/get_jsapi_ticket") {
              return yield* ticket(wecom.jsapiTicket(corpId, agent))
            }
            if (claims.kind === "wecom" && path === "/cgi-bin/ticket/get" && type === "agent_config") {
              return yield* ticket(wecom.agentTicket(corpId, agent))
            }
            return yield* answered(
              "ticket",
              "refused",
              Answers.error(40097, "invalid args: no such ticket for this token")
            )
          }
        }
        if (SecretCalls.PATHS.has(path)) {
          const called = yield* secretCalls.answer(path, query, keys)
          return yield* answered("secret", called.ok ? "ok" : "refused", called.response)
        }
        if (path.toLowerCase().startsWith("/cgi-bin/component/")) {
          return yield* answered(
            "unsupported",
            "refused",
            Answers.error(
              48001,
              "api unauthorized: the gateway does not serve third-party platform endpoints; use /v1/components"
            )
          )
        }
        return yield* forward(request, path, query, keys, requestTimeout)
      })

    return { answer }
  })

const parseObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The gateway over the engine and the proxy in context.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Gateway, never, TokenEngine | Proxy.Proxy> =>
  Layer.scoped(Gateway, make(options))

/**
 * Serves WeChat's paths in front of `app`: every path that is neither one of
 * the server's routes nor under `/v1/`, with the server's one check of
 * client keys (`auth`, over `clientKeys`). Everything else goes to `app`.
 * Node only: calls stream through the request's Node socket (`NodeServer`
 * puts it behind the proxy routes).
 *
 * @since 0.3.0
 * @category utils
 */
export const serve = (options: {
  readonly gateway: GatewayShape
  readonly auth: ClientAuth.Check
  readonly clientKeys: ReadonlyArray<ServerConfig.ClientKey | Redacted.Redacted<string>>
  readonly requestTimeout: Duration.Duration
}) => {
  const keys = Keys.make(options.auth, options.clientKeys)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R | Scope.Scope> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): HttpApp.Default<E, R | Scope.Scope> => {
      const path = Routes.pathOf(request.url)
      if (Routes.isOwn(path)) return app
      // The platform runs middleware uninterruptibly; a call must stop when its caller goes or its deadline passes.
      return Effect.interruptible(options.gateway.answer(request, keys, options.requestTimeout))
    })
}
