/**
 * The service a third-party platform (开放平台第三方平台) uses: its component
 * token, pre-auth codes, the exchange of authorization codes, the list of
 * the accounts merchants authorized to it (authorizers) and, per
 * authorizer, the access token, the jsapi ticket and a signed `wx.config`.
 * It also takes what WeChat pushes to the authorization-event URL (the
 * server's push intake decrypts it): verify tickets, authorizations and
 * revocations.
 *
 * - A pushed ticket is stored durably before the push is answered.
 * - An authorization's code is stored durably before the push is answered
 *   (the store's `authorization-codes` document), then exchanged in the
 *   background (`api_query_auth`, retried while the code lives): WeChat
 *   retries a push that is not answered within 5 s, so answering must not
 *   wait on an upstream call. A code stored but not yet exchanged when the
 *   process stops is exchanged at the next start-up. Codes 0.2.0 journaled
 *   in the credential store move into the document at start-up.
 * - A revocation retires the authorizer in the engine: no more refreshes.
 *
 * @since 0.3.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import {
  Clock,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  FiberMap,
  Layer,
  Option,
  Schedule,
  type Scope
} from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import * as AppId from "../../AppId.js"
import { ownerPage } from "../../internal/ownerPage.js"
import * as PushMessage from "../../internal/pushMessage.js"
import { RuntimeOwners } from "../../internal/runtimeOwners.js"
import { type InvalidPageUrl, type JsSdkConfig, nonce, pageUrl, signature } from "../../JsSdk.js"
import { authorizer, type AuthorizerId, authorizerParts } from "../../OwnerId.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { StoreDocuments } from "../../StoreDocuments.js"
import * as StoreSpec from "../../StoreSpec.js"
import { TokenRecord } from "../../Token.js"
import * as TokenConfig from "../../TokenConfig.js"
import { type EngineOptions, layerFamilies, TokenEngine } from "../../TokenEngine.js"
import { type StoreError, TokenStore } from "../../TokenStore.js"
import { UnknownApp, UpstreamUnavailable } from "../../WeChatError.js"
import * as WeChatApi from "../officialAccount/WeChatApi.js"
import * as Component from "./Component.js"
import { ComponentApi, type ComponentApiShape, MAX_PAGE } from "./ComponentApi.js"
import * as ComponentApiModule from "./ComponentApi.js"
import {
  ComponentConfig,
  type ComponentConfigShape,
  type ComponentCredentials,
  config as componentConfig,
  layer as componentConfigLayer
} from "./ComponentConfig.js"
import * as AuthorizationCodes from "./internal/authorizationCodes.js"

/**
 * A fresh pre-auth code and, when a `redirect_uri` was given, the
 * authorization page to send the merchant to.
 *
 * @since 0.3.0
 * @category models
 */
export interface PreAuthCode {
  readonly preAuthCode: string
  readonly expiresInSeconds: number
  readonly authorizationUrl?: string
}

/**
 * What an exchanged authorization code granted.
 *
 * @since 0.3.0
 * @category models
 */
export interface Authorization {
  readonly authorizerAppId: string
  readonly funcInfo: ReadonlyArray<number>
}

/**
 * One authorizer as the list shows it.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuthorizerEntry {
  readonly appId: string
  readonly valid: boolean
  /** The last moment its held access token may be used, when one is valid. */
  readonly expiresAt?: number
}

/**
 * One page of authorizers, ordered by app id; `nextCursor` continues it.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuthorizerPage {
  readonly authorizers: ReadonlyArray<AuthorizerEntry>
  readonly nextCursor?: string
}

/**
 * @since 0.3.0
 * @category models
 */
export interface ComponentTokenShape {
  /** The configured components. */
  readonly components: ReadonlyArray<AppId.AppId>
  /** A configured or added component's credentials (what its pushes are checked with). */
  readonly credentials: (componentAppId: string) => Option.Option<ComponentCredentials>
  /** The component token; waits on one shared fetch only when none is valid. */
  readonly get: (componentAppId: string) => Effect.Effect<Credential, AccessTokenError>
  /** Compare-and-refresh of the component token. */
  readonly refresh: (componentAppId: string, staleToken?: string) => Effect.Effect<Credential, AccessTokenError>
  /** A fresh, single-use pre-auth code (never cached). */
  readonly preAuthCode: (componentAppId: string, redirectUri?: string) => Effect.Effect<PreAuthCode, AccessTokenError>
  /** Exchanges an authorization code (the redirect flow) and stores the authorizer's refresh token. */
  readonly exchange: (
    componentAppId: string,
    authorizationCode: string
  ) => Effect.Effect<Authorization, AccessTokenError>
  /** A page of the component's authorizers, at most `limit` (1-500) after `cursor`. */
  readonly authorizers: (
    componentAppId: string,
    page: { readonly cursor?: string | undefined; readonly limit: number }
  ) => Effect.Effect<AuthorizerPage, UnknownApp>
  readonly authorizerToken: (componentAppId: string, authorizerAppId: string) => Effect.Effect<
    Credential,
    AccessTokenError
  >
  /** Compare-and-refresh of an authorizer's access token. */
  readonly refreshAuthorizerToken: (
    componentAppId: string,
    authorizerAppId: string,
    staleToken?: string
  ) => Effect.Effect<Credential, AccessTokenError>
  readonly authorizerJsapiTicket: (
    componentAppId: string,
    authorizerAppId: string
  ) => Effect.Effect<Credential, AccessTokenError>
  /** Signs `url` for `wx.config` on the authorizer's page (`appId` = the authorizer). */
  readonly jsSdkConfig: (
    componentAppId: string,
    authorizerAppId: string,
    url: string
  ) => Effect.Effect<JsSdkConfig, AccessTokenError | InvalidPageUrl>
  /** A pushed verify ticket: stored durably (latest wins) before this returns. `createdAt` in epoch ms. */
  readonly acceptTicket: (componentAppId: string, ticket: string, createdAt?: number) => Effect.Effect<
    void,
    AccessTokenError
  >
  /**
   * A pushed authorization (`authorized`, `updateauthorized`): the code is
   * stored durably before this returns, then exchanged in the background.
   */
  readonly acceptAuthorization: (
    componentAppId: string,
    authorizerAppId: string,
    authorizationCode: string,
    codeExpiresAt: number
  ) => Effect.Effect<void, AccessTokenError>
  /**
   * A pushed revocation (`unauthorized`, created at `createdAt` epoch ms):
   * the authorizer is retired, unless it was authorized again after that.
   */
  readonly acceptRevocation: (componentAppId: string, authorizerAppId: string, createdAt?: number) => Effect.Effect<
    void,
    AccessTokenError
  >
  /**
   * Runs `accept` for the push `pushId` (its `msg_signature`) unless a push
   * with that id was accepted already on any replica sharing the store:
   * `true` when it ran. The id is remembered for `windowMillis` once
   * `accept` succeeds, so WeChat's retry of a push that failed is let in.
   */
  /**
   * The authorizer whose authorization push brought `code` for
   * `componentAppId`, while the code lives (exchanged or not): what an SDK's
   * own exchange of a code the push has exchanged already stands for.
   */
  readonly authorizerOfCode: (componentAppId: string, code: string) => Effect.Effect<Option.Option<string>>
  readonly acceptOnce: <E>(
    componentAppId: string,
    pushId: string,
    windowMillis: number,
    accept: Effect.Effect<void, E>
  ) => Effect.Effect<boolean, E | AccessTokenError>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class ComponentToken extends Context.Tag("effect-wechat-token/ComponentToken")<
  ComponentToken,
  ComponentTokenShape
>() {}

/**
 * Where WeChat's authorization page is.
 *
 * @since 0.3.0
 * @category constants
 */
export const AUTHORIZATION_PAGE = "https://mp.weixin.qq.com/cgi-bin/componentloginpage"

// A code lives about an hour. The first retries come fast (a ticket being
// pushed, a component token being fetched), then at most every 30 s.
const exchangeRetry = Schedule.exponential(Duration.millis(250), 2).pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced(Duration.seconds(30)))
)

// Worth another try while the code lives: WeChat busy or unreachable, no
// ticket yet, the store down. An invalid or used code (61009/61010) is not.
const retryable = (error: AccessTokenError): boolean => {
  const failure = RefreshPolicy.failureClass(error)
  return failure === "transient" || failure === "store"
}

/**
 * The `ComponentToken` view of an engine that runs the component families,
 * with the background exchanges of pushed authorizations in the scope.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: Effect.Effect<
  ComponentTokenShape,
  never,
  TokenEngine | TokenStore | StoreDocuments | ComponentApi | ComponentConfig | Scope.Scope
> = Effect.gen(function*() {
  const engine = yield* TokenEngine
  const store = yield* TokenStore
  const documents = yield* StoreDocuments
  const api: ComponentApiShape = yield* ComponentApi
  const config: ComponentConfigShape = yield* ComponentConfig
  const exchanges = yield* FiberMap.make<string>()
  const configured = new Map(config.components.map((component) => [component.componentAppId as string, component]))
  // Components added at run time (the admin API's), when the registry is followed here.
  const runtime = Option.getOrUndefined(yield* Effect.serviceOption(RuntimeOwners))?.components
  const lookUp = (componentAppId: string) => configured.get(componentAppId) ?? runtime?.get(componentAppId)

  // Ids reach here unvalidated (HTTP paths, pushes): only configured or added ones are looked up.
  const componentOf = (componentAppId: string): Effect.Effect<ComponentCredentials, UnknownApp> => {
    const component = lookUp(componentAppId)
    return component === undefined ? Effect.fail(new UnknownApp({ appId: componentAppId })) : Effect.succeed(component)
  }
  const ownerOf = (componentAppId: string, authorizerAppId: string): Effect.Effect<AuthorizerId, UnknownApp> =>
    Effect.flatMap(componentOf(componentAppId), (component) =>
      AppId.is(authorizerAppId)
        ? Effect.succeed(authorizer(component.componentAppId, authorizerAppId))
        : Effect.fail(new UnknownApp({ appId: `${componentAppId}:${authorizerAppId}` })))

  const get = (componentAppId: string) =>
    Effect.flatMap(
      componentOf(componentAppId),
      (component) => engine.get(component.componentAppId, Component.componentToken)
    )

  // A component-token call refused for a dead token replaces it once.
  const withComponentToken = <A>(
    component: ComponentCredentials,
    call: (token: string) => Effect.Effect<A, AccessTokenError>
  ) =>
    Effect.flatMap(engine.get(component.componentAppId, Component.componentToken), (token) =>
      call(token.value).pipe(
        Effect.catchTag("InvalidCredential", () =>
          Effect.flatMap(
            engine.refresh(component.componentAppId, token.value, Component.componentToken),
            (fresh) => call(fresh.value)
          ))
      ))

  const exchangeWith = (component: ComponentCredentials, code: string) =>
    Effect.gen(function*() {
      const answer = yield* withComponentToken(
        component,
        (token) => api.queryAuth(component.componentAppId, token, code)
      )
      if (!AppId.is(answer.authorizerAppId)) {
        return yield* new UpstreamUnavailable({
          reason: "malformed-body",
          detail: "api_query_auth: authorizer_appid is not an app id"
        })
      }
      const owner = authorizer(component.componentAppId, answer.authorizerAppId)
      // The token first: admitting the authorizer (the refresh token) then finds it instead of fetching one.
      yield* engine.put(owner, Component.authorizerToken, answer.accessToken)
      yield* engine.put(owner, Component.refreshToken, {
        value: answer.refreshToken,
        expiresInSeconds: Component.REFRESH_TOKEN_SECONDS
      })
      yield* Effect.logInfo("authorization exchanged; refresh token stored").pipe(Effect.annotateLogs({ app: owner }))
      return { authorizerAppId: answer.authorizerAppId, funcInfo: answer.funcInfo }
    })

  // Marks a code exchanged; a failure only leaves it for the next start,
  // which finds the refresh token newer and marks it then.
  const forget = (owner: AuthorizerId, code: AuthorizationCodes.PendingCode) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => AuthorizationCodes.markExchanged(documents, owner, code.code, now))
      .pipe(
        Effect.catchAll((error) =>
          Effect.logWarning("cannot mark an authorization code exchanged", error.message).pipe(
            Effect.annotateLogs({ app: owner })
          )
        )
      )

  // Exchanges a journaled code unless the authorizer's refresh token is newer
  // than it (exchanged already), retried while the code lives.
  const resume = (component: ComponentCredentials, owner: AuthorizerId, code: AuthorizationCodes.PendingCode) =>
    Effect.gen(function*() {
      if (code.exchangedAt !== undefined) return
      const refresh = yield* store.get({ appId: owner, kind: Component.refreshToken }).pipe(
        Effect.orElseSucceed(() => Option.none<TokenRecord>())
      )
      if (Option.isSome(refresh) && refresh.value.fetchedAt >= code.receivedAt) return yield* forget(owner, code)
      const remaining = code.expiresAt - (yield* Clock.currentTimeMillis)
      if (remaining <= 0) return
      yield* FiberMap.run(
        exchanges,
        code.code,
        exchangeWith(component, code.code).pipe(
          Effect.retry({
            schedule: exchangeRetry.pipe(Schedule.upTo(Duration.millis(remaining))),
            while: retryable
          }),
          Effect.zipRight(forget(owner, code)),
          Effect.catchAll((error) =>
            Effect.logWarning("authorization code could not be exchanged", error.message).pipe(
              Effect.annotateLogs({ app: owner })
            )
          )
        ),
        { onlyIfMissing: true }
      )
    })

  const acceptAuthorization: ComponentTokenShape["acceptAuthorization"] = (
    componentAppId,
    authorizerAppId,
    code,
    codeExpiresAt
  ) =>
    Effect.gen(function*() {
      const component = yield* componentOf(componentAppId)
      const owner = yield* ownerOf(componentAppId, authorizerAppId)
      const now = yield* Clock.currentTimeMillis
      // A duplicate push finds its code journaled already.
      const journaled = yield* AuthorizationCodes.put(documents, owner, {
        code,
        receivedAt: now,
        expiresAt: Math.max(codeExpiresAt, now + 1)
      })
      yield* resume(component, owner, journaled)
    })

  // When the authorizer was last known authorized (epoch ms, 0 if never):
  // its pushed code journaled, or a refresh token WeChat issued (by an
  // exchange, or rotated), which it would not have after a revocation.
  const lastAuthorized = (owner: AuthorizerId): Effect.Effect<number, StoreError> =>
    Effect.map(
      Effect.all([
        AuthorizationCodes.list(documents),
        store.get({ appId: owner, kind: Component.refreshToken })
      ]),
      ([codes, refresh]) =>
        Math.max(
          codes.get(owner)?.receivedAt ?? 0,
          Option.match(refresh, { onNone: () => 0, onSome: (held) => held.fetchedAt })
        )
    )

  // Codes journaled by an earlier run (by 0.2.0 in the credential store) and
  // not exchanged: exchanged now.
  const pending = yield* AuthorizationCodes.migrate(store, documents).pipe(
    Effect.zipRight(AuthorizationCodes.list(documents)),
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logWarning("cannot list pending authorization codes at start-up", error.message),
        new Map() as AuthorizationCodes.Codes
      )
    )
  )
  for (const [owner, code] of pending) {
    const component = lookUp(authorizerParts(owner).componentAppId)
    if (component !== undefined) yield* resume(component, owner, code)
  }

  const authorizerToken = (componentAppId: string, authorizerAppId: string) =>
    Effect.flatMap(ownerOf(componentAppId, authorizerAppId), (owner) => engine.get(owner, Component.authorizerToken))
  const authorizerJsapiTicket = (componentAppId: string, authorizerAppId: string) =>
    Effect.flatMap(
      ownerOf(componentAppId, authorizerAppId),
      (owner) => engine.get(owner, Component.authorizerJsapiTicket)
    )

  return ComponentToken.of({
    components: config.components.map((component) => component.componentAppId),
    authorizerOfCode: (componentAppId, code) =>
      AuthorizationCodes.list(documents).pipe(
        Effect.map((codes) => {
          const found = Array.from(codes).find(([owner, held]) =>
            held.code === code && authorizerParts(owner).componentAppId === componentAppId
          )
          return Option.map(Option.fromNullable(found), ([owner]) => authorizerParts(owner).authorizerAppId)
        }),
        Effect.orElseSucceed(() => Option.none())
      ),
    credentials: (componentAppId) => Option.fromNullable(lookUp(componentAppId)),
    get,
    refresh: (componentAppId, staleToken) =>
      Effect.flatMap(
        componentOf(componentAppId),
        (component) => engine.refresh(component.componentAppId, staleToken, Component.componentToken)
      ),
    preAuthCode: (componentAppId, redirectUri) =>
      Effect.gen(function*() {
        const component = yield* componentOf(componentAppId)
        const code = yield* withComponentToken(
          component,
          (token) => api.createPreAuthCode(component.componentAppId, token)
        )
        const page = redirectUri === undefined ? undefined : `${AUTHORIZATION_PAGE}?${new URLSearchParams({
          component_appid: component.componentAppId,
          pre_auth_code: code.value,
          redirect_uri: redirectUri,
          auth_type: "3"
        })}`
        return {
          preAuthCode: code.value,
          expiresInSeconds: code.expiresInSeconds,
          ...(page === undefined ? {} : { authorizationUrl: page })
        }
      }),
    exchange: (componentAppId, authorizationCode) =>
      Effect.flatMap(componentOf(componentAppId), (component) => exchangeWith(component, authorizationCode)),
    authorizers: (componentAppId, { cursor, limit }) =>
      Effect.gen(function*() {
        const component = yield* componentOf(componentAppId)
        const page = yield* ownerPage(engine, {
          prefix: `${component.componentAppId}:`,
          kind: Component.authorizerToken,
          cursor,
          size: Math.max(1, Math.min(limit, MAX_PAGE))
        })
        const authorizers = page.entries.map(({ id, ...entry }): AuthorizerEntry => ({ appId: id, ...entry }))
        return page.nextCursor === undefined ? { authorizers } : { authorizers, nextCursor: page.nextCursor }
      }),
    authorizerToken,
    refreshAuthorizerToken: (componentAppId, authorizerAppId, staleToken) =>
      Effect.flatMap(
        ownerOf(componentAppId, authorizerAppId),
        (owner) => engine.refresh(owner, staleToken, Component.authorizerToken)
      ),
    authorizerJsapiTicket,
    jsSdkConfig: (componentAppId, authorizerAppId, url) =>
      Effect.gen(function*() {
        const page = yield* Either.match(pageUrl(url), { onLeft: Effect.fail, onRight: Effect.succeed })
        const ticket = yield* authorizerJsapiTicket(componentAppId, authorizerAppId)
        const nonceStr = yield* nonce
        const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        return {
          appId: authorizerAppId,
          timestamp,
          nonceStr,
          signature: signature({ jsapiTicket: ticket.value, nonceStr, timestamp, url: page })
        }
      }),
    acceptTicket: (componentAppId, ticket, createdAt) =>
      Effect.gen(function*() {
        const component = yield* componentOf(componentAppId)
        // Pushes may arrive out of order (a retry overtaken by the next
        // ticket): an older ticket never replaces a newer one, which it
        // would doom (61006 at the next fetch). Read from the store, which
        // every replica writes; tickets come 10 minutes apart and the intake
        // refuses pushes signed over 5 minutes away, so two different
        // tickets do not race here.
        if (createdAt !== undefined) {
          const held = Option.getOrUndefined(
            yield* store.get({ appId: component.componentAppId, kind: Component.verifyTicket })
          )
          if (held !== undefined && held.value !== ticket && ticketCreatedAt(held) > createdAt) {
            yield* Effect.logInfo("older component_verify_ticket ignored: a newer one is held").pipe(
              Effect.annotateLogs({
                createdAt: new Date(createdAt).toISOString(),
                heldCreatedAt: new Date(ticketCreatedAt(held)).toISOString()
              })
            )
            return
          }
        }
        const now = yield* Clock.currentTimeMillis
        // Valid 12 h from when WeChat issued it; a clock skew never makes it look older than now.
        const age = createdAt === undefined ? 0 : Math.max(0, now - createdAt)
        yield* engine.put(component.componentAppId, Component.verifyTicket, {
          value: ticket,
          expiresInSeconds: Math.max(60, Component.VERIFY_TICKET_SECONDS - Math.floor(age / 1000))
        })
      }),
    acceptAuthorization,
    acceptRevocation: (componentAppId, authorizerAppId, createdAt) =>
      Effect.gen(function*() {
        const owner = yield* ownerOf(componentAppId, authorizerAppId)
        if (createdAt !== undefined) {
          const authorizedAt = yield* lastAuthorized(owner)
          // CreateTime is whole seconds: the revocation happened before
          // `createdAt + 1 s`; an authorization known only after that is newer.
          if (authorizedAt >= createdAt + 1_000) {
            yield* Effect.logInfo("unauthorized ignored: the authorizer was authorized again after it").pipe(
              Effect.annotateLogs({
                app: owner,
                createdAt: new Date(createdAt).toISOString(),
                authorizedAt: new Date(authorizedAt).toISOString()
              })
            )
            return
          }
        }
        yield* engine.retire(owner)
      }),
    acceptOnce: (componentAppId, pushId, windowMillis, accept) =>
      Effect.flatMap(
        componentOf(componentAppId),
        (component) => PushMessage.acceptOnce(store, `push:${component.componentAppId}:${pushId}`, windowMillis, accept)
      )
  })
})

// A ticket's record expires 12 h after WeChat created it (`acceptTicket`
// sets it so): its expiry is where the ticket's CreateTime is kept, to the
// second, so the comparison reads the very record the engine serves.
const ticketCreatedAt = (record: TokenRecord): number =>
  Math.floor((record.expiresAt - Component.VERIFY_TICKET_SECONDS * 1000) / 1000) * 1000

const unknown = (appId: string) => Effect.fail(new UnknownApp({ appId }))

/**
 * A server or program with no component configured: every component and
 * authorizer is unknown (`UnknownApp`, a 404 on the routes).
 *
 * @since 0.3.0
 * @category constructors
 */
export const none: ComponentTokenShape = ComponentToken.of({
  components: [],
  credentials: () => Option.none(),
  get: unknown,
  refresh: unknown,
  preAuthCode: unknown,
  exchange: unknown,
  authorizers: unknown,
  authorizerToken: unknown,
  refreshAuthorizerToken: unknown,
  authorizerJsapiTicket: unknown,
  jsSdkConfig: unknown,
  acceptTicket: unknown,
  acceptAuthorization: unknown,
  acceptRevocation: unknown,
  authorizerOfCode: () => Effect.succeed(Option.none()),
  acceptOnce: unknown
})

/**
 * `none` as a layer: for an engine that runs no component family, so that what
 * serves every family (the server) finds every family's service.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerNone: Layer.Layer<ComponentToken> = Layer.succeed(ComponentToken, none)

/**
 * `ComponentToken` over the `TokenEngine` in context (e.g. the server's
 * engine, which runs every family together).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerView: Layer.Layer<
  ComponentToken,
  never,
  TokenEngine | TokenStore | StoreDocuments | ComponentApi | ComponentConfig
> = Layer.scoped(ComponentToken, make)

/**
 * An engine running the component families only, and the `ComponentToken` view of it.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options?: EngineOptions
): Layer.Layer<
  ComponentToken | TokenEngine,
  never,
  ComponentConfig | ComponentApi | WeChatApi.WeChatApi | TokenStore | StoreDocuments
> => layerView.pipe(Layer.provideMerge(layerFamilies(Component.families, options)))

/**
 * `ComponentToken` (and the engine behind it) from the environment:
 * `WECHAT_COMPONENTS`, `WECHAT_API_BASE_URL`, `UPSTREAM_TIMEOUT_SECONDS`,
 * `REFRESH_MARGIN_SECONDS`, `TOKEN_STORE`; WeChat is called over `fetch`.
 * Pushes reach it through the server's intake (`/wechat/components/{appid}/events`).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  ComponentToken | TokenEngine,
  ConfigError.ConfigError | StoreError
> = Layer.unwrapEffect(
  Effect.map(Effect.all([componentConfig, TokenConfig.settings]), ([config, settings]) =>
    layer({
      leaseMillis: Duration.toMillis(settings.upstreamTimeout) + 5_000,
      refreshMargin: settings.refreshMargin
    }).pipe(
      Layer.provide(
        Layer.mergeAll(
          ComponentApiModule.layer({ baseUrl: config.apiBaseUrl, timeout: settings.upstreamTimeout }),
          WeChatApi.layer({ baseUrl: config.apiBaseUrl, timeout: settings.upstreamTimeout })
        )
      ),
      Layer.provide(Layer.merge(componentConfigLayer(config), StoreSpec.layerConfig)),
      Layer.provide(FetchHttpClient.layer)
    ))
)
