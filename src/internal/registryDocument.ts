/**
 * The credential registry as the store holds it: one `StoreDocuments`
 * document, every secret sealed with `STORE_ENCRYPTION_KEY`, client keys as
 * SHA-256 hashes. Decoding checks every id by its schema and opens every
 * secret; a document that fails either is refused whole, never half-used.
 */
import { Effect, Either, Redacted, Schema } from "effect"
import { AppId } from "../AppId.js"
import type * as CredentialRegistry from "../CredentialRegistry.js"
import { OwnerId, WeComAgentId } from "../OwnerId.js"
import { TokenMode } from "../Token.js"
import { StoreError } from "../TokenStore.js"
import type { SecretBox } from "./secretBox.js"

export const NAME = "registry"
export const FORMAT = "effect-wechat-token/registry/v1"

const Sealed = Schema.String.pipe(Schema.startsWith("enc1:"))
const Millis = Schema.NonNegativeInt

const Stored = Schema.Struct({
  format: Schema.Literal(FORMAT),
  apps: Schema.Record({ key: AppId, value: Schema.Struct({ secret: Sealed, mode: TokenMode, updatedAt: Millis }) }),
  agents: Schema.Record({ key: WeComAgentId, value: Schema.Struct({ secret: Sealed, updatedAt: Millis }) }),
  components: Schema.Record({
    key: AppId,
    value: Schema.Struct({ secret: Sealed, token: Sealed, aesKey: Sealed, updatedAt: Millis })
  }),
  keys: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      hash: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/)),
      label: Schema.String,
      scope: Schema.Array(OwnerId),
      createdAt: Millis
    })
  }),
  audit: Schema.Array(Schema.Struct({
    at: Millis,
    actor: Schema.String,
    action: Schema.String,
    owner: Schema.optional(Schema.String),
    outcome: Schema.String,
    detail: Schema.optional(Schema.String)
  }))
})
type Stored = typeof Stored.Type

const StoredJson = Schema.parseJson(Stored)
const decodeStored = Schema.decodeEither(StoredJson)
const encodeStored = Schema.encodeSync(StoredJson)

const invalid = (detail: string) => new StoreError({ operation: "registry", detail })

const mapValues = <A, B>(record: Readonly<Record<string, A>>, f: (key: string, value: A) => B): Map<string, B> =>
  new Map(Object.entries(record).map(([key, value]) => [key, f(key, value)]))

/** Reads a stored body (absent: an empty registry) and opens its secrets. */
export const decode = (
  box: SecretBox,
  version: number,
  body: string | undefined
): Effect.Effect<CredentialRegistry.Registry, StoreError> => {
  if (body === undefined) return Effect.succeed(empty(version))
  const stored = decodeStored(body)
  if (Either.isLeft(stored)) {
    return Effect.fail(invalid(`the stored registry is not valid: ${stored.left.message.split("\n")[0]}`))
  }
  const { agents, apps, audit, components, keys } = stored.right
  return Effect.try({
    try: () => {
      const open = (sealed: string, context: string) =>
        Either.getOrThrowWith(box.open(sealed, context), (reason) => `${context}: ${reason}`)
      return {
        version,
        apps: mapValues(apps, (appId, app) => ({
          appId: appId as AppId,
          secret: open(app.secret, `app:${appId}:secret`),
          mode: app.mode,
          updatedAt: app.updatedAt
        })),
        agents: mapValues(agents, (id, agent) => ({
          id: id as WeComAgentId,
          secret: open(agent.secret, `agent:${id}:secret`),
          updatedAt: agent.updatedAt
        })),
        components: mapValues(components, (appId, component) => ({
          componentAppId: appId as AppId,
          secret: open(component.secret, `component:${appId}:secret`),
          token: open(component.token, `component:${appId}:token`),
          aesKey: open(component.aesKey, `component:${appId}:aesKey`),
          updatedAt: component.updatedAt
        })),
        keys: mapValues(keys, (id, key) => ({ id, ...key })),
        audit
      } as CredentialRegistry.Registry
    },
    catch: (reason) => invalid(String(reason))
  })
}

/** The registry sealed for the store. */
export const encode = (box: SecretBox, registry: CredentialRegistry.Registry): string => {
  const seal = (secret: Redacted.Redacted<string>, context: string) => box.seal(secret, context)
  const stored: Stored = {
    format: FORMAT,
    apps: Object.fromEntries(
      Array.from(registry.apps.values(), (app) => [app.appId, {
        secret: seal(app.secret, `app:${app.appId}:secret`),
        mode: app.mode,
        updatedAt: app.updatedAt
      }])
    ),
    agents: Object.fromEntries(
      Array.from(registry.agents.values(), (agent) => [agent.id, {
        secret: seal(agent.secret, `agent:${agent.id}:secret`),
        updatedAt: agent.updatedAt
      }])
    ),
    components: Object.fromEntries(
      Array.from(registry.components.values(), (component) => [component.componentAppId, {
        secret: seal(component.secret, `component:${component.componentAppId}:secret`),
        token: seal(component.token, `component:${component.componentAppId}:token`),
        aesKey: seal(component.aesKey, `component:${component.componentAppId}:aesKey`),
        updatedAt: component.updatedAt
      }])
    ),
    keys: Object.fromEntries(
      Array.from(registry.keys.values(), ({ id, ...key }) => [id, key])
    ),
    audit: registry.audit
  }
  return encodeStored(stored)
}

/** A registry with nothing in it, at `version`. */
export const empty = (version: number): CredentialRegistry.Registry => ({
  version,
  apps: new Map(),
  agents: new Map(),
  components: new Map(),
  keys: new Map(),
  audit: []
})
