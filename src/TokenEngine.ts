/**
 * The credential engine: per owner and credential kind, the current value in
 * memory, one shared upstream fetch at a time (single-flight, also across
 * replicas via the store's lease), and a background fiber that refreshes
 * ahead of expiry on a `Schedule`. A failed refresh never takes away a
 * credential that is still valid. What a kind is and how it is issued comes
 * from its `CredentialFamily`; when to fetch and how to react to a failure
 * comes from `RefreshPolicy`. The engine itself knows no family by name.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, type Option, type Scope } from "effect"
import { AccessToken, type AccessTokenError, type Credential } from "./AccessToken.js"
import type { CredentialFamily, Issued } from "./CredentialFamily.js"
import * as OfficialAccount from "./families/officialAccount/OfficialAccount.js"
import type { WeChatApi } from "./families/officialAccount/WeChatApi.js"
import * as internal from "./internal/tokenEngine.js"
import type { OwnerId } from "./OwnerId.js"
import type * as RefreshPolicy from "./RefreshPolicy.js"
import type { CredentialKind, TokenRecord } from "./Token.js"
import { TokenConfig } from "./TokenConfig.js"
import type { RecordKey, TokenStore } from "./TokenStore.js"
import type { UnknownApp } from "./WeChatError.js"

/**
 * How one credential is doing: what `/readyz` and `/metrics` report.
 *
 * @since 0.1.0
 * @category models
 */
export interface CredentialStatus {
  readonly appId: OwnerId
  readonly kind: CredentialKind
  /**
   * The `app` label metrics count this credential under
   * (`TokenMetrics.ownerLabel`): the owner itself, or for an authorizer its
   * component, or `*` beyond `MAX_LABELLED_OWNERS` configured owners.
   *
   * @since 0.3.0
   */
  readonly metricsLabel: string
  readonly valid: boolean
  readonly record: Option.Option<TokenRecord>
  readonly lastError: Option.Option<AccessTokenError>
  /**
   * The owner is gone (`TokenEngine.retire`): nothing of it is refreshed or
   * served. Reported once per retired owner, on its presence kind.
   *
   * @since 0.3.0
   */
  readonly retired: boolean
}

/**
 * How many credentials of one metrics label and kind are valid: what
 * `/readyz` summarises and `/metrics` counts.
 *
 * @since 0.3.0
 * @category models
 */
export interface CredentialCount {
  readonly metricsLabel: string
  readonly kind: CredentialKind
  /** The group is one owner labelled by itself (its label is its id): its status is in `StatusCounts.labelled`. */
  readonly labelled: boolean
  readonly valid: number
  readonly invalid: number
}

/**
 * The engine's credentials counted, and the few statuses a summary lists.
 *
 * @since 0.3.0
 * @category models
 */
export interface StatusCounts {
  /** Per metrics label and kind, the credentials of live owners. */
  readonly counts: ReadonlyArray<CredentialCount>
  /** Retired owners (one status each in `eachStatus`), not in `counts`. */
  readonly retired: number
  /** The statuses of owners labelled by themselves, retired ones included. */
  readonly labelled: ReadonlyArray<CredentialStatus>
  /** The statuses of the first invalid credentials of live owners, as many as asked for. */
  readonly invalid: ReadonlyArray<CredentialStatus>
}

/**
 * @since 0.1.0
 * @category models
 */
export type ForceRefreshBudget = RefreshPolicy.ForceRefreshBudget

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenEngineShape {
  readonly apps: ReadonlyArray<OwnerId>
  /**
   * Each configured owner and the kind that makes it servable (its
   * family's first kind): what `/readyz` requires valid.
   *
   * @since 0.3.0
   */
  readonly servable: ReadonlyArray<RecordKey>
  /** The current credential; without `kind`, the first kind of the first family. */
  readonly get: (appId: string, kind?: CredentialKind) => Effect.Effect<Credential, AccessTokenError>
  /**
   * The credential `get` would answer at `now` (epoch millis, from the
   * caller's `Clock`) from memory, read synchronously: `undefined` whenever
   * `get` would have to do anything more (fetch, wait, fail, start a cell).
   * For callers outside any fiber, such as the server's fast path.
   *
   * @since 0.3.0
   */
  readonly peek: (appId: string, now: number, kind?: CredentialKind) => Credential | undefined
  readonly refresh: (
    appId: string,
    staleValue?: string,
    kind?: CredentialKind
  ) => Effect.Effect<Credential, AccessTokenError>
  /**
   * Stores an externally supplied value of a durable kind (a pushed verify
   * ticket, a refresh token from an authorization): written to the store
   * (file store: fsynced; Redis: acknowledged) before it returns, the latest
   * put winning; the same value again writes nothing. A put of a dynamic
   * family's presence kind admits its owner; other values of a dynamic owner
   * may be put before it is admitted (stored only), so admitting it finds
   * them instead of fetching. Nothing evicts a durable value: it stays
   * stored until a newer put (or `retire`) replaces it.
   *
   * @since 0.3.0
   */
  readonly put: (owner: string, kind: CredentialKind, issued: Issued) => Effect.Effect<Credential, AccessTokenError>
  /**
   * Ends a dynamic owner (a merchant revoked the authorization): its
   * credentials stop being refreshed and served, durably (every replica and
   * every restart sees it), until a new value of its presence kind is put.
   *
   * @since 0.3.0
   */
  readonly retire: (owner: string) => Effect.Effect<void, AccessTokenError>
  readonly status: Effect.Effect<ReadonlyArray<CredentialStatus>>
  /**
   * Hands every status `status` would list to `visit`, one at a time, in
   * one synchronous pass, without building the list: how `/readyz`,
   * `/metrics` and the authorizer pages count 100,000 credentials in
   * milliseconds. The status handed over is a view the pass reuses for the
   * next credential: read it during the call, and keep a copy
   * (`{ ...status }`) of any status needed afterwards.
   *
   * @since 0.3.0
   */
  readonly eachStatus: (visit: (status: CredentialStatus) => void) => Effect.Effect<void>
  /**
   * Counts every credential `eachStatus` would hand over, per metrics label
   * and kind, listing only the statuses of owners labelled by themselves
   * and of the first `listInvalid` invalid credentials: how `/readyz` and
   * `/metrics` answer for a million credentials in milliseconds (one pass
   * over flat columns, no status per credential).
   *
   * @since 0.3.0
   */
  readonly countStatuses: (listInvalid: number) => Effect.Effect<StatusCounts>
  readonly forceRefreshBudget: (appId: string, kind?: CredentialKind) => Effect.Effect<ForceRefreshBudget, UnknownApp>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenEngine extends Context.Tag("effect-wechat-token/TokenEngine")<TokenEngine, TokenEngineShape>() {}

/**
 * Knobs with their units; the defaults suit WeChat's real limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineOptions {
  /** Longer than the upstream timeout, so a live refresher never loses its lease. Default: 15 s (`layer`: timeout + 5 s). */
  readonly leaseMillis?: number
  /** How often a replica waiting on another's lease looks at the store. Default 100 ms. */
  readonly leasePollMillis?: number
  /**
   * Upstream calls in flight at once, over all apps. Default 16: a server
   * configured with 1,000 apps starts (and refreshes) them in waves instead
   * of opening 1,000 connections to WeChat at once.
   */
  readonly maxConcurrentFetches?: number
  /** Refresh this long before expiry (capped by `RefreshPolicy.marginMillis`). Default 300 s. */
  readonly refreshMargin?: Duration.DurationInput
}

/**
 * Builds the engine over `families` in a scope: its background fibers stop when the scope closes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeFamilies: (
  families: readonly [CredentialFamily, ...Array<CredentialFamily>],
  options?: EngineOptions
) => Effect.Effect<TokenEngineShape, never, TokenStore | Scope.Scope> = internal.make

/**
 * Builds the engine for the configured official-account apps.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: EngineOptions = {}
): Effect.Effect<TokenEngineShape, never, TokenConfig | TokenStore | WeChatApi | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* TokenConfig
    return TokenEngine.of(
      yield* makeFamilies([yield* OfficialAccount.family], {
        leaseMillis: Duration.toMillis(config.upstreamTimeout) + 5_000,
        refreshMargin: config.refreshMargin,
        ...options
      })
    )
  })

/**
 * The `AccessToken` view of the `TokenEngine` in context: its first family's first kind.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerView: Layer.Layer<AccessToken, never, TokenEngine> = Layer.effect(
  AccessToken,
  Effect.map(TokenEngine, (engine) =>
    AccessToken.of({
      get: (appId) => engine.get(appId),
      refresh: (appId, staleToken) => engine.refresh(appId, staleToken)
    }))
)

/**
 * The engine and the `AccessToken` view of it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: EngineOptions
): Layer.Layer<TokenEngine | AccessToken, never, TokenConfig | TokenStore | WeChatApi> =>
  layerView.pipe(Layer.provideMerge(Layer.scoped(TokenEngine, make(options))))

/**
 * The engine alone over the families `families` builds: what a family's
 * service view (`layerView`, `WeComToken.layerView`, …) is provided with.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerFamilies = <R>(
  families: Effect.Effect<readonly [CredentialFamily, ...Array<CredentialFamily>], never, R>,
  options?: EngineOptions
): Layer.Layer<TokenEngine, never, TokenStore | Exclude<R, Scope.Scope>> =>
  Layer.scoped(TokenEngine, Effect.flatMap(families, (list) => makeFamilies(list, options)))
