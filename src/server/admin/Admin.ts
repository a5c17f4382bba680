/**
 * The admin API's state on one replica: the credential registry, the admin
 * keys, and what the registry drives here, kept in step with every change
 * whichever replica made it: the run-time apps, WeCom apps and components the families
 * refresh with (`RuntimeOwners`), the client keys the key check consults
 * (`ClientAuth.RegistryKeys`), and the owners removed, retired in the engine.
 *
 * @since 0.3.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Context, type Duration, Effect, Layer, Redacted, Stream } from "effect"
import { createHash } from "node:crypto"
import type { AppId } from "../../AppId.js"
import * as CredentialRegistry from "../../CredentialRegistry.js"
import * as ComponentApi from "../../families/component/ComponentApi.js"
import type { ComponentCredentials } from "../../families/component/ComponentConfig.js"
import * as WeChatApi from "../../families/officialAccount/WeChatApi.js"
import * as WeComApi from "../../families/wecom/WeComApi.js"
import * as WeComConfig from "../../families/wecom/WeComConfig.js"
import { RuntimeOwners, type RuntimeOwnersShape } from "../../internal/runtimeOwners.js"
import { type WeComAgentId, weComParts } from "../../OwnerId.js"
import type { TokenMode } from "../../Token.js"
import type { AppCredentials } from "../../TokenConfig.js"
import { TokenEngine } from "../../TokenEngine.js"
import { RegistryKeys, type RegistryKeysShape } from "../ClientAuth.js"
import type { ClientKey } from "../ServerConfig.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** `ADMIN_KEYS`. */
  readonly adminKeys: ReadonlyArray<Redacted.Redacted<string>>
  /** The apps configured by the environment: read-only here. */
  readonly envApps: ReadonlyArray<AppId>
  /** The WeCom apps configured by the environment (`WECOM_APPS`): read-only here. */
  readonly envAgents?: ReadonlyArray<WeComAgentId> | undefined
  /**
   * The components configured by the environment (`WECHAT_COMPONENTS`): read-only here.
   *
   * @since 0.3.0
   */
  readonly envComponents?: ReadonlyArray<AppId> | undefined
  /** The token mode of every app on this server (`WECHAT_TOKEN_MODE`). */
  readonly mode: TokenMode
  readonly apiBaseUrl: string
  /** Where WeCom is reached (`WECOM_API_BASE_URL`); default WeCom's own. */
  readonly weComApiBaseUrl?: string | undefined
  readonly upstreamTimeout: Duration.Duration
}

/**
 * @since 0.3.0
 * @category models
 */
export interface AdminShape {
  readonly options: Options
  readonly registry: CredentialRegistry.CredentialRegistryShape
  /** Tries a secret against WeChat: the token it fetched, or WeChat's refusal. */
  readonly checkSecret: WeChatApi.WeChatApiShape["fetchAccessToken"]
  /** Tries a WeCom app's secret against WeCom: the token it fetched, or WeCom's refusal. */
  readonly checkAgentSecret: WeComApi.WeComApiShape["fetchToken"]
  /** Tries a component's secret against WeChat with a verify ticket: its component token, or WeChat's refusal. */
  readonly checkComponentSecret: ComponentApi.ComponentApiShape["fetchComponentToken"]
  /** Brings this replica in step with `registry` (idempotent; changes take turns). */
  readonly apply: (registry: CredentialRegistry.Registry) => Effect.Effect<void, never, TokenEngine>
  /** When each registry key was last presented here (epoch millis), by id. */
  readonly lastUsed: ReadonlyMap<string, number>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class Admin extends Context.Tag("effect-wechat-token/Admin")<Admin, AdminShape>() {}

/**
 * The admin state over the registry, `RuntimeOwners` filled before the engine
 * starts (so a restart admits the registry's owners at once) and the registry
 * keys the key check reads.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  Admin | RuntimeOwners | RegistryKeys,
  never,
  CredentialRegistry.CredentialRegistry | HttpClient.HttpClient
> =>
  Layer.effectContext(Effect.gen(function*() {
    const registry = yield* CredentialRegistry.CredentialRegistry
    const api = yield* WeChatApi.make({ baseUrl: options.apiBaseUrl, timeout: options.upstreamTimeout })
    const weComApi = yield* WeComApi.make({
      baseUrl: options.weComApiBaseUrl ?? WeComConfig.defaults.apiBaseUrl,
      timeout: options.upstreamTimeout
    })
    const clock = yield* Effect.clock
    const componentApi = yield* ComponentApi.make({ baseUrl: options.apiBaseUrl, timeout: options.upstreamTimeout })
    const owners: RuntimeOwnersShape = { apps: new Map(), agents: new Map(), components: new Map() }
    const keys = new Map<string, { readonly id: string; readonly key: ClientKey }>()
    const lastUsed = new Map<string, number>()
    let epoch = 0

    // Owners and keys as the registry holds them; the owners removed are
    // returned, still held (a family admits only what it holds, so an owner
    // is retired before it is forgotten).
    const follow = (held: CredentialRegistry.Registry): ReadonlyArray<readonly [Map<string, unknown>, string]> => {
      const removed = [
        ...sync(owners.apps, held.apps, (app): AppCredentials => ({ appId: app.appId, secret: app.secret })),
        ...sync(
          owners.agents,
          held.agents,
          (agent) => ({ owner: agent.id, ...weComParts(agent.id), secret: agent.secret })
        ),
        ...sync(owners.components, held.components, (component): ComponentCredentials => ({
          componentAppId: component.componentAppId,
          secret: component.secret,
          messageToken: component.token,
          encodingAesKey: component.aesKey
        }))
      ]
      const hashes = new Set(Array.from(held.keys.values(), (key) => key.hash))
      if (Array.from(keys.keys()).some((hash) => !hashes.has(hash))) epoch += 1
      keys.clear()
      for (const key of held.keys.values()) {
        keys.set(key.hash, {
          id: key.id,
          // The registry keeps no key, only its hash: the check matched it by that.
          key: key.scope.length === 0
            ? { key: Redacted.make(key.hash) }
            : { key: Redacted.make(key.hash), apps: key.scope }
        })
      }
      return removed
    }
    follow(yield* registry.current)

    const turns = yield* Effect.makeSemaphore(1)
    const apply = (held: CredentialRegistry.Registry) =>
      turns.withPermits(1)(Effect.gen(function*() {
        const engine = yield* TokenEngine
        for (const [map, owner] of follow(held)) {
          // Retired while the family still accepts it, then forgotten.
          yield* engine.retire(owner).pipe(
            Effect.catchAll((error) => Effect.logWarning("cannot retire a removed owner", error.message)),
            Effect.annotateLogs({ app: owner })
          )
          map.delete(owner)
        }
      }))

    const registryKeys: RegistryKeysShape = {
      byHash: (hash) => {
        const found = keys.get(hash)
        if (found === undefined) return undefined
        lastUsed.set(found.id, clock.unsafeCurrentTimeMillis())
        return found.key
      },
      epoch: () => epoch
    }
    const admin: AdminShape = {
      options,
      registry,
      checkSecret: api.fetchAccessToken,
      checkAgentSecret: weComApi.fetchToken,
      checkComponentSecret: componentApi.fetchComponentToken,
      apply,
      lastUsed
    }
    return Context.make(Admin, admin).pipe(
      Context.add(RuntimeOwners, owners),
      Context.add(RegistryKeys, registryKeys)
    )
  }))

// Sets every entry of `registry` in `held`; answers `held`'s owners the registry no longer has.
const sync = <R, V>(
  held: Map<string, V>,
  registry: ReadonlyMap<string, R>,
  credentials: (entry: R) => V
): Array<readonly [Map<string, unknown>, string]> => {
  for (const [owner, entry] of registry) held.set(owner, credentials(entry))
  return Array.from(held.keys()).filter((owner) => !registry.has(owner)).map((owner) => [held, owner] as const)
}

/**
 * Follows the registry's changes, whichever replica made them, for as long
 * as the server runs.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerFollow: Layer.Layer<never, never, Admin | TokenEngine> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const admin = yield* Admin
    yield* admin.registry.changes.pipe(Stream.runForEach(admin.apply), Effect.forkScoped)
  })
)

/**
 * Epoch millis as the admin answers show them.
 *
 * @since 0.3.0
 * @category utils
 */
export const isoOf = (millis: number): string => new Date(millis).toISOString()

/**
 * The id an admin key is audited under, whichever way it came in (the admin
 * API or the console): a short digest of the key, enough to tell keys apart,
 * nothing to replay.
 *
 * @since 0.3.0
 * @category utils
 */
export const callerId = (adminKey: string): string =>
  `admin-${createHash("sha256").update(adminKey, "utf8").digest("hex").slice(0, 12)}`
