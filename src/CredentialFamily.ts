/**
 * A credential family as data: the kinds an owner (an app) holds, how each is
 * issued, what its overlap rule is, whether it is a cache or a durable input,
 * and how the family's errors classify. The token engine runs any family the
 * same way (single-flight, lease, schedule, static stability, cooldown,
 * store, metrics, status) and knows none of them by name.
 *
 * @since 0.2.0
 */
import type { Effect } from "effect"
import type { AccessTokenError, Credential } from "./AccessToken.js"
import type { OwnerId } from "./OwnerId.js"
import type { FailureClass, ForceRefreshRule, OverlapRule } from "./RefreshPolicy.js"
import type { CredentialKind } from "./Token.js"
import type { WeChatError } from "./WeChatError.js"

/**
 * A credential as its issuer answered: the value and its lifetime.
 *
 * @since 0.2.0
 * @category models
 */
export interface Issued {
  readonly value: string
  readonly expiresInSeconds: number
}

/**
 * What an issuer gets from the engine for one fetch.
 *
 * @since 0.2.0
 * @category models
 */
export interface IssueContext {
  readonly owner: OwnerId
  /** A replacement of a rejected value was asked for and the kind's forced-refresh budget allowed one. */
  readonly force: boolean
  /**
   * Runs one upstream call under the engine's limit of calls in flight. Hold
   * it around the call only: an issuer waiting on another credential holds
   * none, so two kinds can never deadlock on the limit.
   */
  readonly upstream: <A, E, R>(call: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Another credential: of the same owner (a ticket's token), or of `owner`
   * (an authorizer token needs its component's token). A durable kind
   * answers its latest value.
   */
  readonly credential: (kind: CredentialKind, owner?: OwnerId) => Effect.Effect<Credential, AccessTokenError>
  /** Compare-and-refresh of another credential (same owner unless named), e.g. a token the issuer rejected. */
  readonly replace: (
    kind: CredentialKind,
    stale: string,
    owner?: OwnerId
  ) => Effect.Effect<Credential, AccessTokenError>
  /**
   * Stores a value of a durable kind of the same owner that the issuer's
   * answer carried (the refresh token `api_authorizer_token` returns):
   * written before the issuer goes on, like `TokenEngine.put`.
   */
  readonly put: (kind: CredentialKind, issued: Issued) => Effect.Effect<Credential, AccessTokenError>
  /** The owner is gone (WeChat says the authorization was revoked): `TokenEngine.retire`. */
  readonly retire: Effect.Effect<void, AccessTokenError>
}

/**
 * One kind of credential.
 *
 * @since 0.2.0
 * @category models
 */
export interface CredentialKindSpec {
  readonly kind: CredentialKind
  /** What issuing a new one does to the one it replaces; caps how long a held one is handed out. */
  readonly overlap: OverlapRule
  /**
   * `cache`: can always be fetched again; a store that cannot take it is
   * logged and the value served from memory. `durable`: an input that cannot
   * be fetched again (a pushed verify ticket, a refresh token), supplied with
   * `TokenEngine.put` or `IssueContext.put` and written to the store before
   * the put returns, so before anything depending on it is answered. Its
   * `issue` runs only when no usable value is held or at its `refreshAt`:
   * it recovers the value if it can (or asks for it to be pushed again) and
   * otherwise fails with `MissingInput`.
   */
  readonly storage: "cache" | "durable"
  /** `eager`: fetched when the engine starts; `on-demand`: on first use. */
  readonly start: "eager" | "on-demand"
  /**
   * Present when a plain fetch answers the held value while it is valid, so
   * replacing a rejected one needs a forced fetch, which this rule budgets.
   */
  readonly forceRefresh?: ForceRefreshRule | undefined
  readonly issue: (context: IssueContext) => Effect.Effect<Issued, AccessTokenError>
}

/**
 * Owners that come and go at runtime (the accounts merchants authorize to a
 * third-party platform). An owner is admitted when a value of its `presence`
 * kind (durable) is put, and at start-up for every stored, unretired record
 * of that kind; `TokenEngine.retire` ends it.
 *
 * @since 0.3.0
 * @category models
 */
export interface DynamicOwners {
  /** Which owner ids the family may admit. */
  readonly accepts: (owner: string) => boolean
  /** The durable kind whose record makes an owner exist. */
  readonly presence: CredentialKind
}

/**
 * A family: its owners, its kinds and how its errors classify.
 *
 * @since 0.2.0
 * @category models
 */
export interface CredentialFamily {
  readonly name: string
  /** The owners known from configuration. */
  readonly owners: ReadonlyArray<OwnerId>
  /**
   * Present when owners also come at runtime.
   *
   * @since 0.3.0
   */
  readonly dynamic?: DynamicOwners | undefined
  /** The first kind is what `get(owner)` answers when no kind is named. */
  readonly kinds: readonly [CredentialKindSpec, ...Array<CredentialKindSpec>]
  /**
   * How the family's WeChat errors classify, when not as WeChat's global
   * return codes say (`RefreshPolicy.classify`, the default).
   */
  readonly classify?: ((error: WeChatError) => FailureClass) | undefined
}

/**
 * Declares a family (an identity that keeps the literal types).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <const F extends CredentialFamily>(family: F): F => family
