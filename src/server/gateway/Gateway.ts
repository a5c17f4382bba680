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
 * - A third-party platform's `cgi-bin/component/` calls and a WeCom service
 *   provider's `cgi-bin/service/` calls (suite, provider and corp tokens,
 *   permanent codes) are answered with gateway values.
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
import * as Component from "../../families/component/Component.js"
import { ComponentToken } from "../../families/component/ComponentToken.js"
import { WeComToken } from "../../families/wecom/WeComToken.js"
import { WeComSuiteToken } from "../../families/wecomSuite/WeComSuiteToken.js"
import * as OwnerId from "../../OwnerId.js"
import type * as ProxyTarget from "../../ProxyTarget.js"
import { TokenEngine } from "../../TokenEngine.js"
import type * as ClientAuth from "../ClientAuth.js"
import * as FastPath from "../FastPath.js"
import * as RequestBody from "../internal/nodeRequest.js"
import * as UpstreamCall from "../internal/upstreamCall.js"
import * as Proxy from "../Proxy.js"
import * as RequestLimits from "../RequestLimits.js"
import * as Routes from "../Routes.js"
import type * as ServerConfig from "../ServerConfig.js"
import * as ServerMetrics from "../ServerMetrics.js"
import * as Answers from "./internal/answers.js"
import * as Components from "./internal/components.js"
import * as GatewayToken from "./internal/gatewayToken.js"
import * as Keys from "./internal/keys.js"
import * as OwnCalls from "./internal/ownCalls.js"
import * as SecretCalls from "./internal/secretCalls.js"
import * as Suites from "./internal/suites.js"
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
export type Call =
  | "token"
  | "stable_token"
  | "wecom_token"
  | "ticket"
  | "secret"
  | "forward"
  | "component_token"
  | "authorizer_token"
  | "query_auth"
  | "component"
  | "suite_token"
  | "provider_token"
  | "corp_token"
  | "permanent_code"
  | "service"

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

// What the ticket endpoints name, and the engine's kind for it, for an app and for an authorizer.
const TICKET_KINDS: Record<string, string> = { jsapi: "jsapi_ticket", wx_card: "wx_card_ticket" }
const AUTHORIZER_TICKET_KINDS: Record<string, string> = {
  jsapi: Component.authorizerJsapiTicket,
  wx_card: Component.authorizerWxCardTicket
}

// Request bodies of the component endpoints the gateway forwards (code templates'
// ext_json included): the proxy's replayable size.
const MAX_COMPONENT_BODY_BYTES = Proxy.DEFAULT_REPLAY_BODY_BYTES

// The names a gateway token may travel under: WeChat's and WeCom's own for each kind.
const TOKEN_NAMES = ["access_token", "component_access_token", "suite_access_token", "provider_access_token"]

// The service endpoints a suite token calls that the gateway answers itself, by their lower-case path.
const SUITE_ENDPOINTS: Record<string, "corp_token" | "permanent_code"> = {
  "/cgi-bin/service/get_corp_token": "corp_token",
  "/cgi-bin/service/get_permanent_code": "permanent_code",
  "/cgi-bin/service/v2/get_permanent_code": "permanent_code"
}

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
export const make = (
  options: Options
): Effect.Effect<
  GatewayShape,
  never,
  TokenEngine | WeComToken | ComponentToken | WeComSuiteToken | Proxy.Proxy | Scope.Scope
> =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    const proxy = yield* Proxy.Proxy
    const wecom = yield* WeComToken
    const upstream = yield* UpstreamCall.make
    const upstreamTimeout = Duration.decode(options.upstreamTimeout ?? Duration.seconds(10))
    const secrets = new Map(options.secrets.map(({ appId, secret }) => [appId, secret]))
    const secretCalls = SecretCalls.make({
      upstream,
      baseUrl: options.wechatBaseUrl,
      secretOf: (appId) => secrets.get(appId),
      timeout: upstreamTimeout
    })
    const components = yield* ComponentToken
    const componentCalls = Components.make({
      tokens: components,
      upstream,
      baseUrl: options.wechatBaseUrl,
      timeout: upstreamTimeout
    })
    // The proxy's targets the gateway's tokens forward through; a component
    // token's calls are the gateway's own (`componentCalls`), as are a
    // suite's and the provider's (`suiteCalls`). Authorizers and suites'
    // corps are a target when the server runs those families.
    const targets: Record<"app" | "wecom", ProxyTarget.ProxyTarget> & {
      readonly authorizer: ProxyTarget.ProxyTarget | undefined
      readonly suite_corp: ProxyTarget.ProxyTarget | undefined
    } = {
      app: findTarget(proxy.targets, ProxyApi.APP_PATTERN),
      wecom: findTarget(proxy.targets, ProxyApi.WECOM_PATTERN),
      authorizer: proxy.targets.find((target) => target.pattern === ProxyApi.AUTHORIZER_PATTERN),
      suite_corp: proxy.targets.find((target) => target.pattern === ProxyApi.SUITE_CORP_PATTERN)
    }
    const suites = yield* WeComSuiteToken
    const suiteCalls = Suites.make({
      tokens: suites,
      provider: suites.provider,
      // Suites are WeCom's: their calls go where their corps' calls go.
      send: OwnCalls.sender({
        upstream,
        baseUrl: targets.suite_corp?.baseUrl ?? options.wechatBaseUrl,
        timeout: upstreamTimeout
      })
    })
    // Whether the server serves `owner` of `kind`, and what a key's scope names for it.
    const served = (kind: GatewayToken.Kind, owner: string): boolean =>
      kind === "component"
        ? componentCalls.known(owner)
        : kind === "suite"
        ? suiteCalls.known(owner)
        : kind === "provider"
        ? suiteCalls.knownProvider(owner)
        : targets[kind]?.known(owner) === true
    const scopeOf = (kind: GatewayToken.Kind, owner: string): string =>
      kind === "authorizer" || kind === "suite_corp" ? owner.slice(0, owner.indexOf(":")) : owner
    const weComOwners = engine.apps.filter(OwnerId.isWeCom)
    const nowSeconds = Effect.map(Clock.currentTimeMillis, (now) => Math.floor(now / 1000))

    // The owner a presented gateway token stands for, when the token is one
    // of ours and its key may still use that owner; else WeChat's 40001. A
    // component token travels as `component_access_token` on the component's
    // own endpoints, a suite's as `suite_access_token` and the provider's as
    // `provider_access_token` (as WeCom names them), any token as
    // `access_token` elsewhere.
    const claimsOf = (
      request: HttpServerRequest.HttpServerRequest,
      query: URLSearchParams,
      keys: Keys.Keys,
      now: number
    ) => {
      const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
      const claimsNamed = (name: string, token: string) => {
        const claims = keys.tokenOn(socket, token)
        if (
          claims === undefined || !GatewayToken.isCurrent(claims, now) ||
          !keys.allows(claims.key, scopeOf(claims.kind, claims.owner))
        ) {
          return undefined
        }
        // A suite's or the provider's token under another name, or another token under theirs: not one WeCom reads.
        const named = claims.kind === "suite" || claims.kind === "provider"
          ? name === `${claims.kind}_access_token`
          : name === "access_token" || name === "component_access_token"
        return named && served(claims.kind, claims.owner) ? { ...claims, tokenName: name } : undefined
      }
      const presented = TOKEN_NAMES.flatMap((name) => query.getAll(name).map((token) => ({ name, token })))
      const [first, second] = presented
      if (presented.length === 1) return claimsNamed(first!.name, first!.token)
      // A WeCom SDK's default client adds its provider token to every call, its suite calls included: the
      // suite token is the one those read, and the provider token, when it is ours too, is dropped.
      const suite = presented.find((entry) => entry.name === "suite_access_token")
      const provider = presented.find((entry) => entry.name === "provider_access_token")
      if (presented.length === 2 && first !== second && suite !== undefined && provider !== undefined) {
        return claimsNamed(provider.name, provider.token) === undefined
          ? undefined
          : claimsNamed(suite.name, suite.token)
      }
      // Two tokens in one call otherwise: which one counts would be a guess.
      return undefined
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

    // The request's body, whole; a body too large or too slow is refused in WeChat's shape.
    const bodyOf = (
      request: HttpServerRequest.HttpServerRequest,
      call: Call,
      maxBytes: number,
      timeout: Duration.Duration
    ) =>
      Effect.gen(function*() {
        const source = NodeHttpServerRequest.toIncomingMessage(request)
        const read = yield* Effect.either(Effect.interruptible(
          RequestBody.read(source, maxBytes, Duration.toMillis(timeout))
        ))
        if (read._tag === "Right") return read.right
        if (read.left === "client-closed") return yield* Effect.interrupt
        RequestBody.closeAfter(
          source,
          NodeHttpServerRequest.toServerResponse(request),
          Duration.toMillis(RequestLimits.LINGER)
        )
        return yield* Effect.fail(
          yield* answered(
            call,
            "refused",
            Answers.error(47001, "data format error: the body is too large or did not arrive")
          )
        )
      })

    // A POSTed JSON object's fields, as the token endpoints take them.
    const fieldsOf = (request: HttpServerRequest.HttpServerRequest, call: Call, timeout: Duration.Duration) =>
      Effect.gen(function*() {
        if (request.method !== "POST") {
          return yield* Effect.fail(yield* answered(call, "refused", Answers.error(43002, "require POST method")))
        }
        const body = yield* bodyOf(request, call, RequestLimits.DEFAULT_MAX_BODY_BYTES, timeout)
        const fields = parseObject(new TextDecoder().decode(body))
        if (fields === undefined) {
          return yield* Effect.fail(yield* answered(call, "refused", Answers.error(47001, "data format error")))
        }
        return fields
      })

    const stableToken = (request: HttpServerRequest.HttpServerRequest, keys: Keys.Keys, timeout: Duration.Duration) =>
      Effect.gen(function*() {
        const fields = yield* fieldsOf(request, "stable_token", timeout)
        const issued = Tokens.app(
          { grantType: fields["grant_type"], appId: fields["appid"], secret: fields["secret"] },
          { keys, known: targets.app.known, nowSeconds: yield* nowSeconds }
        )
        return yield* answered("stable_token", issued.ok ? "ok" : "refused", issued.response)
      }).pipe(Effect.merge)

    // A call carrying a gateway component token: the component's token
    // endpoints answered here, any other call forwarded with the real token.
    const componentCall = (
      request: HttpServerRequest.HttpServerRequest,
      path: string,
      query: URLSearchParams,
      keys: Keys.Keys,
      claims: GatewayToken.Claims,
      timeout: Duration.Duration
    ) =>
      Effect.gen(function*() {
        const endpoint = path.toLowerCase()
        if (
          endpoint === "/cgi-bin/component/api_authorizer_token" || endpoint === "/cgi-bin/component/api_query_auth"
        ) {
          const call: Call = endpoint.endsWith("api_query_auth") ? "query_auth" : "authorizer_token"
          const fields = yield* fieldsOf(request, call, timeout)
          const now = yield* nowSeconds
          const done = call === "query_auth"
            ? yield* componentCalls.queryAuth(claims, fields, keys, now)
            : yield* componentCalls.authorizerToken(claims, fields, keys, now)
          return yield* answered(call, done.ok ? "ok" : "refused", done.response)
        }
        const tokenName = query.has("component_access_token") ? "component_access_token" : "access_token"
        const forwarded = new URLSearchParams(query)
        forwarded.delete(tokenName)
        const contentType = request.headers["content-type"]
        const hasBody = request.headers["transfer-encoding"] !== undefined ||
          (request.headers["content-length"] ?? "0") !== "0"
        const body = hasBody ? yield* bodyOf(request, "component", MAX_COMPONENT_BODY_BYTES, timeout) : undefined
        const done = yield* componentCalls.forward({
          componentAppId: claims.owner,
          method: request.method,
          path,
          query: forwarded,
          tokenName,
          contentType,
          body
        })
        return yield* answered("component", done.ok ? "ok" : "refused", done.response)
      }).pipe(Effect.merge)

    // A call carrying a gateway suite or provider token: the suite's token
    // endpoints answered here, any other call forwarded with the real token.
    const suiteCall = (
      request: HttpServerRequest.HttpServerRequest,
      path: string,
      query: URLSearchParams,
      keys: Keys.Keys,
      claims: GatewayToken.Claims & { readonly tokenName: string },
      timeout: Duration.Duration
    ) =>
      Effect.gen(function*() {
        const endpoint = SUITE_ENDPOINTS[path.toLowerCase()]
        if (endpoint !== undefined && claims.kind === "suite") {
          const fields = yield* fieldsOf(request, endpoint, timeout)
          const done = endpoint === "corp_token"
            ? yield* suiteCalls.corpToken(claims, fields, keys, yield* nowSeconds)
            : yield* suiteCalls.permanentCode(claims, fields)
          return yield* answered(endpoint, done.ok ? "ok" : "refused", done.response)
        }
        const forwarded = new URLSearchParams(query)
        forwarded.delete(claims.tokenName)
        // Its provider token beside its suite token (`claimsOf`): the SDK's, checked, and not WeCom's to see.
        if (claims.kind === "suite") forwarded.delete("provider_access_token")
        const hasBody = request.headers["transfer-encoding"] !== undefined ||
          (request.headers["content-length"] ?? "0") !== "0"
        const body = hasBody ? yield* bodyOf(request, "service", MAX_COMPONENT_BODY_BYTES, timeout) : undefined
        const done = yield* suiteCalls.forward(claims, {
          method: request.method,
          path,
          query: forwarded,
          tokenName: claims.tokenName,
          contentType: request.headers["content-type"],
          body
        })
        return yield* answered("service", done.ok ? "ok" : "refused", done.response)
      }).pipe(Effect.merge)

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
        if (claims.kind === "component") return yield* componentCall(request, path, query, keys, claims, timeout)
        if (claims.kind === "suite" || claims.kind === "provider") {
          return yield* suiteCall(request, path, query, keys, claims, timeout)
        }
        // A component token's name on another owner's call: not a token WeChat would read there.
        if (claims.tokenName !== "access_token") {
          return yield* answered("forward", "refused", Answers.invalidToken())
        }
        const forwarded = new URLSearchParams(query)
        forwarded.delete("access_token")
        const target = targets[claims.kind]
        // `claimsOf` admits an authorizer's or a suite corp's token only when the proxy has their target.
        const response = yield* proxy.forward(request, target!, claims.owner, path.slice(1), timeout, {
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
          case "/cgi-bin/component/api_component_token":
            return yield* Effect.merge(Effect.gen(function*() {
              const fields = yield* fieldsOf(request, "component_token", requestTimeout)
              const issued = componentCalls.componentToken(fields, keys, yield* nowSeconds)
              return yield* answered("component_token", issued.ok ? "ok" : "refused", issued.response)
            }))
          case "/cgi-bin/service/get_suite_token":
          case "/cgi-bin/service/get_provider_token":
            return yield* Effect.merge(Effect.gen(function*() {
              const call: Call = path.endsWith("get_suite_token") ? "suite_token" : "provider_token"
              const fields = yield* fieldsOf(request, call, requestTimeout)
              const now = yield* nowSeconds
              const issued = call === "suite_token"
                ? suiteCalls.suiteToken(fields, keys, now)
                : suiteCalls.providerToken(fields, keys, now)
              return yield* answered(call, issued.ok ? "ok" : "refused", issued.response)
            }))
          case "/cgi-bin/component/api_start_push_ticket":
            return yield* Effect.merge(Effect.gen(function*() {
              const fields = yield* fieldsOf(request, "secret", requestTimeout)
              const called = yield* componentCalls.startPushTicket(fields, keys)
              return yield* answered("secret", called.ok ? "ok" : "refused", called.response)
            }))
          case "/cgi-bin/ticket/getticket":
          case "/cgi-bin/get_jsapi_ticket":
          case "/cgi-bin/ticket/get": {
            const claims = claimsOf(request, query, keys, yield* nowSeconds)
            if (claims === undefined) return yield* answered("ticket", "refused", Answers.invalidToken())
            const type = query.get("type") ?? ""
            if (claims.kind === "app" && path === "/cgi-bin/ticket/getticket" && type in TICKET_KINDS) {
              return yield* ticket(engine.get(claims.owner, TICKET_KINDS[type]!))
            }
            if (
              claims.kind === "authorizer" && path === "/cgi-bin/ticket/getticket" && type in AUTHORIZER_TICKET_KINDS
            ) {
              return yield* ticket(engine.get(claims.owner, AUTHORIZER_TICKET_KINDS[type]!))
            }
            if (claims.kind === "suite_corp") {
              const [suiteId, corpId] = claims.owner.split(":") as [string, string]
              if (path === "/cgi-bin/get_jsapi_ticket") return yield* ticket(suites.jsapiTicket(suiteId, corpId))
              if (path === "/cgi-bin/ticket/get" && type === "agent_config") {
                return yield* ticket(suites.agentTicket(suiteId, corpId))
              }
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
export const layer = (
  options: Options
): Layer.Layer<Gateway, never, TokenEngine | WeComToken | ComponentToken | WeComSuiteToken | Proxy.Proxy> =>
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
