/**
 * The admin API served: the `admin` group's handlers over the `Admin` state,
 * and the admin-key check. Every change is tried first (a secret against
 * WeChat), then made in the registry by compare-and-set, then applied here
 * (the other replicas apply it as the registry announces it), and audited
 * with the admin key's id and its outcome, never a secret.
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Clock, Effect, Either, Layer, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as AdminApi from "../../api/AdminApi.js"
import { BadRequest, detail, NotFound, TokenUnavailable, tokenUnavailable, Unauthorized } from "../../api/ApiError.js"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import type { AppId } from "../../AppId.js"
import * as CredentialRegistry from "../../CredentialRegistry.js"
import * as Component from "../../families/component/Component.js"
import * as OfficialAccount from "../../families/officialAccount/OfficialAccount.js"
import * as WeCom from "../../families/wecom/WeCom.js"
import { weCom, weComParts } from "../../OwnerId.js"
import { TokenEngine } from "../../TokenEngine.js"
import { StoreError } from "../../TokenStore.js"
import type { WeChatError } from "../../WeChatError.js"
import * as ClientAuth from "../ClientAuth.js"
import { Admin, isoOf } from "./Admin.js"

const refused = (message: string) => new Unauthorized(detail("unauthorized", message))

/**
 * `Authorization: Bearer <admin key>`: one of `ADMIN_KEYS` (none: the admin
 * API is off and refuses every request). A client key is no admin key.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerAuth: Layer.Layer<AdminApi.AdminAuth> = Layer.unwrapEffect(
  Effect.map(Effect.serviceOption(Admin), (admin) => {
    const keys = Option.match(admin, { onNone: () => [], onSome: (admin) => admin.options.adminKeys })
    const check = ClientAuth.check(keys)
    return Layer.succeed(
      AdminApi.AdminAuth,
      AdminApi.AdminAuth.of({
        bearer: () =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
            if (keys.length === 0) return Effect.fail(refused("the admin API is off: set ADMIN_KEYS"))
            const header = request.headers.authorization
            return check.key(header) instanceof Unauthorized
              ? Effect.fail(refused("send Authorization: Bearer <admin key> (ADMIN_KEYS)"))
              // The audit names a key by a short digest: enough to tell keys apart, nothing to replay.
              : Effect.succeed({
                id: `admin-${createHash("sha256").update(header!.slice(7), "utf8").digest("hex").slice(0, 12)}`
              })
          })
      })
    )
  })
)

const readOnly = (what: string) =>
  new AdminApi.ReadOnly(detail("read_only", `${what} is configured by the environment; change it there`))

const notFound = (what: string) => new NotFound(detail("not_found", `${what} is not in the registry`))

/**
 * The `admin` group's handlers.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = HttpApiBuilder.group(TokenServerApi, "admin", (handlers) =>
  Effect.gen(function*() {
    const found = yield* Effect.serviceOption(Admin)
    const engine = yield* TokenEngine
    if (Option.isNone(found)) {
      // Unreachable: without `Admin` the admin key check refuses every request.
      const off = Effect.fail(new NotFound(detail("not_found", "the admin API is off")))
      return handlers.handle("putApp", () => off).handle("deleteApp", () => off).handle("listApps", () => off)
        .handle("putAgent", () => off).handle("deleteAgent", () => off).handle("listCorpAgents", () => off)
        .handle("listAgents", () => off).handle("putComponent", () => off).handle("deleteComponent", () => off)
        .handle("listComponents", () => off).handle("createKey", () => off).handle("listKeys", () => off).handle(
          "revokeKey",
          () => off
        )
        .handle("audit", () => off)
    }
    const admin = found.value
    const { registry } = admin
    const envApps = new Set<string>(admin.options.envApps)
    const envAgents = admin.options.envAgents ?? []
    const envComponents = new Set<string>(admin.options.envComponents)

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
    const audit = (entry: CredentialRegistry.AuditEntry) =>
      Effect.zipRight(
        Effect.logInfo("admin action").pipe(Effect.annotateLogs({ ...entry })),
        registry.update((held) => Either.right([undefined, CredentialRegistry.audited(held, entry)] as const)).pipe(
          Effect.ignore
        )
      )

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

    const listAgents = Effect.map(registry.current, (held) => [
      ...envAgents.map((owner) => ({ owner, ...weComParts(owner), source: "env" as const })),
      ...Array.from(held.agents.values(), agentEntry)
    ])

    return handlers
      .handle("putApp", ({ path, payload }) =>
        Effect.gen(function*() {
          if (envApps.has(path.appId)) return yield* refuse("put-app", path.appId, readOnly(`app ${path.appId}`))
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
            path.appId,
            admin.checkSecret({ appId: path.appId, secret: payload.secret }, mode, { forceRefresh: false })
          )
          const app = yield* change("put-app", path.appId, (held, at) => {
            const app = { appId: path.appId, secret: payload.secret, mode, updatedAt: at }
            return Either.right([app, { ...held, apps: new Map(held.apps).set(path.appId, app) }] as const)
          })
          // The token the check fetched is served: classic mode does not fetch twice.
          yield* engine.put(path.appId, OfficialAccount.accessToken, issued).pipe(Effect.mapError(tokenUnavailable))
          return appEntry(app)
        }))
      .handle("deleteApp", ({ path }) =>
        envApps.has(path.appId) ?
          refuse("delete-app", path.appId, readOnly(`app ${path.appId}`)) :
          change("delete-app", path.appId, (held) =>
            held.apps.has(path.appId)
              ? Either.right([undefined, { ...held, apps: withoutKey(held.apps, path.appId) }] as const)
              : Either.left(notFound(`app ${path.appId}`))))
      .handle("listApps", () =>
        Effect.map(registry.current, (held) => ({
          apps: [
            ...admin.options.envApps.map((appId) => ({ appId, mode: admin.options.mode, source: "env" as const })),
            ...Array.from(held.apps.values(), appEntry)
          ]
        })))
      .handle("putAgent", ({ path, payload }) =>
        Effect.gen(function*() {
          const owner = weCom(path.corpId, path.agent)
          if (envAgents.includes(owner)) return yield* refuse("put-agent", owner, readOnly(`WeCom app ${owner}`))
          const issued = yield* tried(
            "put-agent",
            owner,
            admin.checkAgentSecret({ owner, ...path, secret: payload.secret })
          )
          const agent = yield* change("put-agent", owner, (held, at) => {
            const agent = { id: owner, secret: payload.secret, updatedAt: at }
            return Either.right([agent, { ...held, agents: new Map(held.agents).set(owner, agent) }] as const)
          })
          // The token the check fetched is served: WeCom would answer the same one anyway.
          yield* engine.put(owner, WeCom.accessToken, issued).pipe(Effect.mapError(tokenUnavailable))
          return agentEntry(agent)
        }))
      .handle("deleteAgent", ({ path }) => {
        const owner = weCom(path.corpId, path.agent)
        return envAgents.includes(owner) ?
          refuse("delete-agent", owner, readOnly(`WeCom app ${owner}`)) :
          change("delete-agent", owner, (held) =>
            held.agents.has(owner)
              ? Either.right([undefined, { ...held, agents: withoutKey(held.agents, owner) }] as const)
              : Either.left(notFound(`WeCom app ${owner}`)))
      })
      .handle("listCorpAgents", ({ path }) =>
        Effect.map(listAgents, (agents) => ({
          agents: agents.filter((agent) => agent.corpId === path.corpId)
        })))
      .handle("listAgents", () => Effect.map(listAgents, (agents) => ({ agents })))
      .handle("putComponent", ({ path, payload }) =>
        Effect.gen(function*() {
          const owner = path.componentAppId
          if (envComponents.has(owner)) {
            return yield* refuse("put-component", owner, readOnly(`component ${owner}`))
          }
          const credentials = {
            componentAppId: owner,
            secret: payload.secret,
            messageToken: payload.token,
            encodingAesKey: payload.encodingAesKey
          }
          // WeChat takes a component secret only with a verify ticket, which
          // it pushes every 10 minutes: a component this replica holds one for
          // is tried with it; a new one is admitted untried, and its first
          // fetch (after the first push) is the check. A ticket WeChat no
          // longer takes (61005/61006) cannot try anything either.
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
        }))
      .handle("deleteComponent", ({ path }) => {
        const owner = path.componentAppId
        return envComponents.has(owner) ?
          refuse("delete-component", owner, readOnly(`component ${owner}`)) :
          change("delete-component", owner, (held) =>
            held.components.has(owner)
              ? Either.right([undefined, { ...held, components: withoutKey(held.components, owner) }] as const)
              : Either.left(notFound(`component ${owner}`)))
      })
      .handle("listComponents", () =>
        Effect.map(registry.current, (held) => ({
          components: [
            ...Array.from(envComponents, (componentAppId) => ({
              componentAppId: componentAppId as AppId,
              source: "env" as const
            })),
            ...Array.from(held.components.values(), componentEntry)
          ]
        })))
      .handle("createKey", ({ payload }) =>
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
        }))
      .handle("listKeys", () =>
        Effect.map(registry.current, (held) => ({ keys: Array.from(held.keys.values(), keyEntry) })))
      .handle("revokeKey", ({ path }) =>
        change("revoke-key", path.id, (held) =>
          held.keys.has(path.id)
            ? Either.right([undefined, { ...held, keys: withoutKey(held.keys, path.id) }] as const)
            : Either.left(notFound(`key ${path.id}`))))
      .handle("audit", () =>
        Effect.map(registry.current, (held) => ({
          entries: [...held.audit].reverse().map((entry) => ({ ...entry, at: isoOf(entry.at) }))
        })))

    function agentEntry(agent: CredentialRegistry.RegistryAgent) {
      return { owner: agent.id, ...weComParts(agent.id), source: "admin" as const, updatedAt: isoOf(agent.updatedAt) }
    }

    function componentEntry(component: CredentialRegistry.RegistryComponent) {
      return {
        componentAppId: component.componentAppId,
        source: "admin" as const,
        updatedAt: isoOf(component.updatedAt)
      }
    }

    function keyEntry(key: CredentialRegistry.RegistryKey) {
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
  }))

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

const withoutKey = <V>(map: ReadonlyMap<string, V>, key: string): Map<string, V> => {
  const next = new Map(map)
  next.delete(key)
  return next
}
