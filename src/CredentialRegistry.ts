/**
 * Owners and client keys changed at run time: apps, WeCom agents and
 * third-party platforms with their secrets, client keys with their scopes,
 * and the audit trail of every change. Kept as one document in the store
 * (`StoreDocuments`), every secret sealed with `STORE_ENCRYPTION_KEY`
 * (AES-256-GCM), client keys as SHA-256 hashes, so the store never holds a
 * secret in clear; every replica on the same store sees each change as it is
 * made (Redis announces it, the file store is polled).
 *
 * Changes are compare-and-set on the document's version: two replicas
 * changing the registry at once both succeed, one after the other, and a
 * change that fails leaves the registry as it was.
 *
 * @since 0.3.0
 */
import {
  type ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Random,
  Redacted,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { createHash, randomBytes } from "node:crypto"
import type { AppId } from "./AppId.js"
import * as RegistryDocument from "./internal/registryDocument.js"
import * as SecretBox from "./internal/secretBox.js"
import { secret } from "./internal/secretConfig.js"
import type { OwnerId, WeComAgentId } from "./OwnerId.js"
import { ALL, StoreDocuments } from "./StoreDocuments.js"
import type { TokenMode } from "./Token.js"
import { StoreError } from "./TokenStore.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface RegistryApp {
  readonly appId: AppId
  readonly secret: Redacted.Redacted<string>
  readonly mode: TokenMode
  readonly updatedAt: number
}

/**
 * @since 0.3.0
 * @category models
 */
export interface RegistryAgent {
  readonly id: WeComAgentId
  readonly secret: Redacted.Redacted<string>
  readonly updatedAt: number
}

/**
 * @since 0.3.0
 * @category models
 */
export interface RegistryComponent {
  readonly componentAppId: AppId
  readonly secret: Redacted.Redacted<string>
  /** The message token of the authorization-event URL. */
  readonly token: Redacted.Redacted<string>
  /** The EncodingAESKey of the authorization-event URL. */
  readonly aesKey: Redacted.Redacted<string>
  readonly updatedAt: number
}

/**
 * A client key as the registry keeps it: never the key itself.
 *
 * @since 0.3.0
 * @category models
 */
export interface RegistryKey {
  readonly id: string
  /** SHA-256 of the key, hex. */
  readonly hash: string
  readonly label: string
  /** The owners the key may ask for; empty: every owner. */
  readonly scope: ReadonlyArray<OwnerId>
  readonly createdAt: number
}

/**
 * One admin action: who (an admin key's id), what, on which owner, and how
 * it ended. Never a secret.
 *
 * @since 0.3.0
 * @category models
 */
export interface AuditEntry {
  readonly at: number
  readonly actor: string
  readonly action: string
  readonly owner?: string | undefined
  readonly outcome: string
  readonly detail?: string | undefined
}

/**
 * The registry at one version.
 *
 * @since 0.3.0
 * @category models
 */
export interface Registry {
  /** How many changes the stored document has seen; 0 before the first. */
  readonly version: number
  readonly apps: ReadonlyMap<string, RegistryApp>
  readonly agents: ReadonlyMap<string, RegistryAgent>
  readonly components: ReadonlyMap<string, RegistryComponent>
  readonly keys: ReadonlyMap<string, RegistryKey>
  /** Oldest first, the last `AUDIT_LIMIT`. */
  readonly audit: ReadonlyArray<AuditEntry>
}

/**
 * How many audit entries the registry keeps.
 *
 * @since 0.3.0
 * @category constants
 */
export const AUDIT_LIMIT = 1_000

/**
 * @since 0.3.0
 * @category models
 */
export interface CredentialRegistryShape {
  /** The registry as last read or changed. */
  readonly current: Effect.Effect<Registry>
  /** The current registry, then each new one, whichever replica changed it. */
  readonly changes: Stream.Stream<Registry>
  /**
   * Applies `change` to the latest stored registry and stores the result;
   * on a concurrent change, reads again and re-applies. A `Left` stores
   * nothing and fails with it.
   */
  readonly update: <A, E>(
    change: (registry: Registry) => Either.Either<readonly [A, Registry], E>
  ) => Effect.Effect<A, E | StoreError>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class CredentialRegistry extends Context.Tag("effect-wechat-token/CredentialRegistry")<
  CredentialRegistry,
  CredentialRegistryShape
>() {}

/**
 * `registry` with `entry` appended to its audit trail (the oldest dropped past `AUDIT_LIMIT`).
 *
 * @since 0.3.0
 * @category audit
 */
export const audited = (registry: Registry, entry: AuditEntry): Registry => ({
  ...registry,
  audit: [...registry.audit.slice(Math.max(0, registry.audit.length + 1 - AUDIT_LIMIT)), entry]
})

/**
 * The hash a client key is kept and looked up by.
 *
 * @since 0.3.0
 * @category keys
 */
export const hashKey = (key: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(key), "utf8").digest("hex")

/**
 * A new client key (43 URL-safe characters, 256 bits) and its id.
 *
 * Keys and ids come from the system's CSPRNG, not Effect's `Random`: a
 * seeded generator would make keys guessable.
 *
 * @since 0.3.0
 * @category keys
 */
export const generateKey: Effect.Effect<{ readonly id: string; readonly key: Redacted.Redacted<string> }> = Effect
  .sync(() => ({
    id: `key_${randomBytes(8).toString("hex")}`,
    key: Redacted.make(randomBytes(32).toString("base64url"))
  }))

// Concurrent changes each cost one more read; past this many in a row,
// something keeps writing and the caller is told so.
const MAX_ATTEMPTS = 16

/**
 * The registry in the store's documents, sealed with `encryptionKey`.
 * Fails when the key is malformed or does not open the stored registry.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  encryptionKey: Redacted.Redacted<string>
): Effect.Effect<CredentialRegistryShape, StoreError, StoreDocuments | Scope.Scope> =>
  Effect.gen(function*() {
    const documents = yield* StoreDocuments
    const box = yield* Either.mapLeft(
      SecretBox.make(encryptionKey),
      (reason) => new StoreError({ operation: "registry", detail: `STORE_ENCRYPTION_KEY ${reason}` })
    )
    const read = Effect.flatMap(
      documents.get(RegistryDocument.NAME),
      Option.match({
        onNone: () => Effect.succeed(RegistryDocument.empty(0)),
        onSome: (document) => RegistryDocument.decode(box, document.version, document.body)
      })
    )
    const state = yield* SubscriptionRef.make(yield* read)
    // Keeps the newest: announcements and our own writes may arrive in any order.
    const adopt = (registry: Registry) =>
      SubscriptionRef.update(state, (held) => (registry.version > held.version ? registry : held))

    yield* documents.changed.pipe(
      Stream.filter((name) => name === RegistryDocument.NAME || name === ALL),
      Stream.runForEach(() =>
        read.pipe(
          Effect.flatMap(adopt),
          Effect.catchAll((error) =>
            Effect.logWarning("cannot read the credential registry; keeping the one held", error.detail)
          )
        )
      ),
      Effect.forkScoped
    )

    // This replica's own changes take turns: they never race each other,
    // only other replicas' changes, which a short random pause spreads out.
    const turns = yield* Effect.makeSemaphore(1)
    const update: CredentialRegistryShape["update"] = (change) =>
      turns.withPermits(1)(Effect.gen(function*() {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          if (attempt > 0) yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(1, 10 * attempt)))
          const latest = yield* read
          const changed = change(latest)
          if (Either.isLeft(changed)) return yield* Effect.fail(changed.left)
          const [result, next] = changed.right
          if (yield* documents.swap(RegistryDocument.NAME, latest.version, RegistryDocument.encode(box, next))) {
            yield* adopt({ ...next, version: latest.version + 1 })
            return result
          }
        }
        return yield* new StoreError({
          operation: "registry",
          detail: `the registry changed under ${MAX_ATTEMPTS} attempts in a row; try again`
        })
      }))

    return {
      current: SubscriptionRef.get(state),
      changes: state.changes,
      update
    }
  })

/**
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  encryptionKey: Redacted.Redacted<string>
): Layer.Layer<CredentialRegistry, StoreError, StoreDocuments> => Layer.scoped(CredentialRegistry, make(encryptionKey))

/**
 * The registry sealed with `STORE_ENCRYPTION_KEY` (or the file
 * `STORE_ENCRYPTION_KEY_FILE` names).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerConfig: Layer.Layer<CredentialRegistry, StoreError | ConfigError.ConfigError, StoreDocuments> = Layer
  .unwrapEffect(Effect.map(secret("STORE_ENCRYPTION_KEY"), layer))
