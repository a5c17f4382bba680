/**
 * The registry's changes as the admin API and the console both make them:
 * each tried first (a secret against WeChat or WeCom), then made in the
 * registry by compare-and-set, then applied on this replica (the others
 * apply it as the registry announces it), and audited with the caller's id
 * (`AdminCaller`) and its outcome, never a secret. One place, so the two
 * ways in cannot drift apart in what they accept or record.
 */
import { Clock, Effect, Either, Redacted } from "effect"
import * as AdminApi from "../../../api/AdminApi.js"
import { BadRequest, detail, NotFound, TokenUnavailable, tokenUnavailable } from "../../../api/ApiError.js"
import type { AppId } from "../../../AppId.js"
import * as CredentialRegistry from "../../../CredentialRegistry.js"
import * as Component from "../../../families/component/Component.js"
import * as OfficialAccount from "../../../families/officialAccount/OfficialAccount.js"
import * as WeCom from "../../../families/wecom/WeCom.js"
import { type AgentKey, type CorpId, weCom, weComParts } from "../../../OwnerId.js"
import { TokenEngine, type TokenEngineShape } from "../../../TokenEngine.js"
import { StoreError } from "../../../TokenStore.js"
import type { WeChatError } from "../../../WeChatError.js"
import { type AdminShape, isoOf } from "../Admin.js"

/** Every way a registry change can be refused, each with its HTTP status. */
export type Refusal = BadRequest | AdminApi.ReadOnly | AdminApi.SecretRejected | NotFound | TokenUnavailable

const readOnly = (what: string) =>
  new AdminApi.ReadOnly(detail("read_only", `${what} is configured by the environment; change it there`))

const notFound = (what: string) => new NotFound(detail("not_found", `${what} is not in the registry`))

export const make = (admin: AdminShape, engine: TokenEngineShape) => {
  const { registry } = admin
  const envApps = new Set<string>(admin.options.envApps)
  const envAgents = admin.options.envAgents ?? []

  const audit = (entry: CredentialRegistry.AuditEntry) =>
    Effect.zipRight(
      Effect.logInfo("admin action").pipe(Effect.annotateLogs({ ...entry })),
      registry.update((held) => Either.right([undefined, CredentialRegistry.audited(held, entry)] as const)).pipe(
        Effect.ignore
      )
    )

  // Changes the registry and audits it in the same write; a refusal is
  // audited on its own and changes nothing else.
  const change = <A, E extends { readonly error: { readonly code: string } }>(
    action: string,
    owner: string | undefined,
    apply: (
      registry: CredentialRegistry.Registry,
      at: number
    ) => Either.Either<readonly [A, CredentialRegistry.Registry], E>,
    note?: string
  ) =>
    Effect.gen(function*() {
      const { id } = yield* AdminApi.AdminCaller
      const at = yield* Clock.currentTimeMillis
      const entry = (outcome: string) => ({
        at,
        actor: id,
        action,
        owner,
        outcome,
        ...(note === undefined ? {} : { detail: note })
      })
      const result = yield* registry.update((held) =>
        Either.map(apply(held, at), ([a, next]) => [a, CredentialRegistry.audited(next, entry("ok"))] as const)
      ).pipe(
        Effect.mapError((error) =>
          error instanceof StoreError ? new TokenUnavailable(detail("store_unavailable", error.message)) : error
        ),
        Effect.tapError((error) => audit(entry(error.error.code)))
      )
      yield* admin.apply(yield* registry.current).pipe(Effect.provideService(TokenEngine, engine))
      yield* Effect.logInfo("admin action").pipe(Effect.annotateLogs({ actor: id, action, owner, outcome: "ok" }))
      return result
    })

  // A refusal before any change: audited, then answered.
  const refuse = <E extends { readonly error: { readonly code: string } }>(action: string, owner: string, error: E) =>
    Effect.gen(function*() {
      const { id } = yield* AdminApi.AdminCaller
      const at = yield* Clock.currentTimeMillis
      yield* audit({ at, actor: id, action, owner, outcome: error.error.code })
      return yield* Effect.fail(error)
    })

  // Tried before it takes effect: a refused secret changes nothing and is
  // audited with WeChat's errcode; WeChat unreachable changes nothing either.
  const tried = <A>(action: string, owner: string, check: Effect.Effect<A, WeChatError>) =>
    Effect.catchAll(check, (error) =>
      Effect.gen(function*() {
        const { id } = yield* AdminApi.AdminCaller
        const at = yield* Clock.currentTimeMillis
        const errcode = rejectedCode(error)
        yield* audit({
          at,
          actor: id,
          action,
          owner,
          outcome: errcode === undefined ? "unverified" : `rejected ${errcode}`
        })
        return yield* Effect.fail(
          errcode === undefined
            ? tokenUnavailable(error)
            : new AdminApi.SecretRejected(
              detail("secret_rejected", `WeChat refused the secret (errcode ${errcode}); nothing changed`)
            )
        )
      }))

  const appEntry = (app: CredentialRegistry.RegistryApp) => ({
    appId: app.appId,
    mode: app.mode,
    source: "admin" as const,
    updatedAt: isoOf(app.updatedAt)
  })

  const agentEntry = (agent: CredentialRegistry.RegistryAgent) => ({
    owner: agent.id,
    ...weComParts(agent.id),
    source: "admin" as const,
    updatedAt: isoOf(agent.updatedAt)
  })

  const keyEntry = (key: CredentialRegistry.RegistryKey) => {
    const used = admin.lastUsed.get(key.id)
    return {
      id: key.id,
      label: key.label,
      scope: key.scope,
      source: "admin" as const,
      createdAt: isoOf(key.createdAt),
      ...(used === undefined ? {} : { lastUsedAt: isoOf(used) })
    }
  }

  const putApp = (appId: AppId, payload: typeof AdminApi.PutAppRequest.Type) =>
    Effect.gen(function*() {
      if (envApps.has(appId)) return yield* refuse("put-app", appId, readOnly(`app ${appId}`))
      const mode = payload.mode ?? admin.options.mode
      if (mode !== admin.options.mode) {
        return yield* Effect.fail(
          new BadRequest(
            detail("invalid_request", `mode: this server fetches ${admin.options.mode} tokens (WECHAT_TOKEN_MODE)`)
          )
        )
      }
      const issued = yield* tried(
        "put-app",
        appId,
        admin.checkSecret({ appId, secret: payload.secret }, mode, { forceRefresh: false })
      )
      const app = yield* change("put-app", appId, (held, at) => {
        const app = { appId, secret: payload.secret, mode, updatedAt: at }
        return Either.right([app, { ...held, apps: new Map(held.apps).set(appId, app) }] as const)
      })
      // The token the check fetched is served: classic mode does not fetch twice.
      yield* engine.put(appId, OfficialAccount.accessToken, issued).pipe(Effect.mapError(tokenUnavailable))
      return appEntry(app)
    })

  const deleteApp = (appId: AppId) =>
    envApps.has(appId) ?
      refuse("delete-app", appId, readOnly(`app ${appId}`)) :
      change("delete-app", appId, (held) =>
        held.apps.has(appId)
          ? Either.right([undefined, { ...held, apps: withoutKey(held.apps, appId) }] as const)
          : Either.left(notFound(`app ${appId}`)))

  const listApps = Effect.map(registry.current, (held) => [
    ...admin.options.envApps.map((appId) => ({ appId, mode: admin.options.mode, source: "env" as const })),
    ...Array.from(held.apps.values(), appEntry)
  ])

  const putAgent = (corpId: CorpId, agent: AgentKey, payload: typeof AdminApi.PutAgentRequest.Type) =>
    Effect.gen(function*() {
      const owner = weCom(corpId, agent)
      if (envAgents.includes(owner)) return yield* refuse("put-agent", owner, readOnly(`WeCom app ${owner}`))
      const issued = yield* tried(
        "put-agent",
        owner,
        admin.checkAgentSecret({ owner, corpId, agent, secret: payload.secret })
      )
      const entry = yield* change("put-agent", owner, (held, at) => {
        const entry = { id: owner, secret: payload.secret, updatedAt: at }
        return Either.right([entry, { ...held, agents: new Map(held.agents).set(owner, entry) }] as const)
      })
      // The token the check fetched is served: WeCom would answer the same one anyway.
      yield* engine.put(owner, WeCom.accessToken, issued).pipe(Effect.mapError(tokenUnavailable))
      return agentEntry(entry)
    })

  const deleteAgent = (corpId: CorpId, agent: AgentKey) => {
    const owner = weCom(corpId, agent)
    return envAgents.includes(owner) ?
      refuse("delete-agent", owner, readOnly(`WeCom app ${owner}`)) :
      change("delete-agent", owner, (held) =>
        held.agents.has(owner)
          ? Either.right([undefined, { ...held, agents: withoutKey(held.agents, owner) }] as const)
          : Either.left(notFound(`WeCom app ${owner}`)))
  }

  const listAgents = Effect.map(registry.current, (held) => [
    ...envAgents.map((owner) => ({ owner, ...weComParts(owner), source: "env" as const })),
    ...Array.from(held.agents.values(), agentEntry)
  ])

  const envComponents = new Set<string>(admin.options.envComponents)

  const componentEntry = (component: CredentialRegistry.RegistryComponent) => ({
    componentAppId: component.componentAppId,
    source: "admin" as const,
    updatedAt: isoOf(component.updatedAt)
  })

  const putComponent = (owner: AppId, payload: typeof AdminApi.PutComponentRequest.Type) =>
    Effect.gen(function*() {
      if (envComponents.has(owner)) return yield* refuse("put-component", owner, readOnly(`component ${owner}`))
      const credentials = {
        componentAppId: owner,
        secret: payload.secret,
        messageToken: payload.token,
        encodingAesKey: payload.encodingAesKey
      }
      // WeChat takes a component secret only with a verify ticket, which it
      // pushes every 10 minutes: a component this replica holds one for is
      // tried with it; a new one is admitted untried, and its first fetch
      // (after the first push) is the check. A ticket WeChat no longer takes
      // (61005/61006) cannot try anything either.
      const ticket = engine.peek(owner, yield* Clock.currentTimeMillis, Component.verifyTicket)
      const issued = ticket === undefined ? undefined : yield* tried(
        "put-component",
        owner,
        admin.checkComponentSecret(credentials, ticket.value).pipe(
          Effect.catchIf((error) => Component.isErrcode(error, 61005, 61006), () => Effect.succeed(undefined))
        )
      )
      const component = yield* change("put-component", owner, (held, at) => {
        const component = {
          componentAppId: owner,
          secret: payload.secret,
          token: payload.token,
          aesKey: payload.encodingAesKey,
          updatedAt: at
        }
        return Either.right(
          [component, { ...held, components: new Map(held.components).set(owner, component) }] as const
        )
      }, issued === undefined ? "untried: no verify ticket held" : undefined)
      // The token the check fetched is served: a classic fetch ends the one held before.
      if (issued !== undefined) {
        yield* engine.put(owner, Component.componentToken, issued).pipe(Effect.mapError(tokenUnavailable))
      }
      return componentEntry(component)
    })

  const deleteComponent = (owner: AppId) =>
    envComponents.has(owner) ?
      refuse("delete-component", owner, readOnly(`component ${owner}`)) :
      change("delete-component", owner, (held) =>
        held.components.has(owner)
          ? Either.right([undefined, { ...held, components: withoutKey(held.components, owner) }] as const)
          : Either.left(notFound(`component ${owner}`)))

  const listComponents = Effect.map(registry.current, (held) => [
    ...Array.from(
      envComponents,
      (componentAppId) => ({ componentAppId: componentAppId as AppId, source: "env" as const })
    ),
    ...Array.from(held.components.values(), componentEntry)
  ])

  const createKey = (payload: typeof AdminApi.CreateKeyRequest.Type) =>
    Effect.gen(function*() {
      const { id, key } = yield* CredentialRegistry.generateKey
      const created = yield* change("create-key", id, (held, at) => {
        const entry = {
          id,
          hash: CredentialRegistry.hashKey(key),
          label: payload.label,
          scope: payload.scope,
          createdAt: at
        }
        return Either.right([entry, { ...held, keys: new Map(held.keys).set(id, entry) }] as const)
      })
      return { ...keyEntry(created), key: Redacted.value(key) }
    })

  const listKeys = Effect.map(registry.current, (held) => Array.from(held.keys.values(), keyEntry))

  const revokeKey = (id: string) =>
    change("revoke-key", id, (held) =>
      held.keys.has(id)
        ? Either.right([undefined, { ...held, keys: withoutKey(held.keys, id) }] as const)
        : Either.left(notFound(`key ${id}`)))

  const auditLog = Effect.map(
    registry.current,
    (held) => [...held.audit].reverse().map((entry) => ({ ...entry, at: isoOf(entry.at) }))
  )

  return {
    audit,
    change,
    refuse,
    tried,
    putApp,
    deleteApp,
    listApps,
    putAgent,
    deleteAgent,
    listAgents,
    putComponent,
    deleteComponent,
    listComponents,
    createKey,
    listKeys,
    revokeKey,
    auditLog
  }
}

export type RegistryActions = ReturnType<typeof make>

// The errcode of a refused secret or id (40125, 40001, 40013), as the answer names it.
const rejectedCode = (error: WeChatError): number | undefined => {
  switch (error._tag) {
    case "InvalidAppId":
      return 40013
    case "InvalidAppSecret":
    case "InvalidCredential":
      return error.errcode
    case "WeChatApiError":
      return error.errcode === 40013 ? 40013 : undefined
    default:
      return undefined
  }
}

export const withoutKey = <V>(map: ReadonlyMap<string, V>, key: string): Map<string, V> => {
  const next = new Map(map)
  next.delete(key)
  return next
}
