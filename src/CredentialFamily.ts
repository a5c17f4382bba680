/**
 * A credential family as data: the kinds an owner (an app) holds, how each is
 * issued, what its overlap rule is, whether it is a cache or a durable input,
 * and how the family's errors classify. The token engine runs any family the
 * same way (single-flight, lease, schedule, static stability, cooldown,
 * store, metrics, status) and knows none of them by name.
 *
 * An issuer is pure: a kind declares the credentials it is issued from
 * (`inputs`), the engine resolves them and calls `issue` with their values,
 * and the issuer answers what it issued (plus values issued alongside) or a
 * typed failure the engine acts on (`InputRejected`, `OwnerRevoked`). It
 * never calls back into the engine.
 *
 * @since 0.2.0
 */
import { Data, type Effect } from "effect"
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
 * A credential an issuer needs: another kind of the same owner, or of the
 * owner `ownerOf` names (an authorizer token needs its component's token).
 * A durable kind answers its latest value.
 *
 * @since 0.3.0
 * @category models
 */
export interface Input {
  readonly kind: CredentialKind
  readonly ownerOf?: ((owner: OwnerId) => OwnerId) | undefined
  /**
   * A durable input that is pushed, not fetched (a verify ticket): its
   * issuer asks for a push, which comes moments after it answers, so after
   * a rejection the engine waits a few seconds for the new value.
   */
  readonly awaitsPush?: boolean | undefined
}

/**
 * What an issuer gets for one fetch: the owner, whether a forced fetch is
 * asked for, and the current values of its declared `inputs`, in order.
 *
 * @since 0.3.0
 * @category models
 */
export interface IssueRequest {
  readonly owner: OwnerId
  /** A replacement of a rejected value was asked for and the kind's forced-refresh budget allowed one. */
  readonly force: boolean
  readonly inputs: ReadonlyArray<Credential>
}

/**
 * What an issuer answers: the credential, and values of durable kinds of
 * the same owner its answer carried (the refresh token
 * `api_authorizer_token` rotates), stored before the credential is.
 *
 * @since 0.3.0
 * @category models
 */
export interface IssuedWith {
  readonly issued: Issued
  readonly alongside: ReadonlyArray<{ readonly kind: CredentialKind; readonly issued: Issued }>
}

/**
 * The issuer's upstream rejected input number `input` (a dead token, a
 * refused refresh token): the engine compare-and-refreshes that input and
 * calls `issue` once more; rejected again, the fetch fails with `error`.
 *
 * @since 0.3.0
 * @category errors
 */
export class InputRejected extends Data.TaggedError("InputRejected")<{
  readonly input: number
  readonly error: AccessTokenError
}> {}

/**
 * The owner is gone (WeChat says the authorization was revoked): the engine
 * retires it (`TokenEngine.retire`) and the fetch fails with `error`.
 *
 * @since 0.3.0
 * @category errors
 */
export class OwnerRevoked extends Data.TaggedError("OwnerRevoked")<{
  readonly error: AccessTokenError
}> {}

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
   * `TokenEngine.put` or an issuer's `IssuedWith.alongside` and written to the store before
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
  /**
   * The credentials `issue` needs, resolved by the engine before each call.
   *
   * @since 0.3.0
   */
  readonly inputs?: ReadonlyArray<Input> | undefined
  /**
   * Issues one credential from its inputs, under the engine's limit of
   * upstream calls in flight. It never calls back into the engine: a
   * rejected input or a revoked owner is a typed failure the engine acts on.
   */
  readonly issue: (
    request: IssueRequest
  ) => Effect.Effect<Issued | IssuedWith, AccessTokenError | InputRejected | OwnerRevoked>
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
