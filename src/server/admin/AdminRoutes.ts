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
import { Effect, Layer, Option } from "effect"
import * as AdminApi from "../../api/AdminApi.js"
import { detail, NotFound, Unauthorized } from "../../api/ApiError.js"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import { TokenEngine } from "../../TokenEngine.js"
import * as ClientAuth from "../ClientAuth.js"
import { Admin, callerId } from "./Admin.js"
import * as RegistryActions from "./internal/registryActions.js"

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
              : Effect.succeed({ id: callerId(header!.slice(7)) })
          })
      })
    )
  })
)

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
    const actions = RegistryActions.make(found.value, engine)
    return handlers
      .handle("putApp", ({ path, payload }) => actions.putApp(path.appId, payload))
      .handle("deleteApp", ({ path }) => actions.deleteApp(path.appId))
      .handle("listApps", () => Effect.map(actions.listApps, (apps) => ({ apps })))
      .handle("putAgent", ({ path, payload }) => actions.putAgent(path.corpId, path.agent, payload))
      .handle("deleteAgent", ({ path }) => actions.deleteAgent(path.corpId, path.agent))
      .handle("listCorpAgents", ({ path }) =>
        Effect.map(actions.listAgents, (agents) => ({
          agents: agents.filter((agent) => agent.corpId === path.corpId)
        })))
      .handle("listAgents", () => Effect.map(actions.listAgents, (agents) => ({ agents })))
      .handle("putComponent", ({ path, payload }) => actions.putComponent(path.componentAppId, payload))
      .handle("deleteComponent", ({ path }) => actions.deleteComponent(path.componentAppId))
      .handle("listComponents", () => Effect.map(actions.listComponents, (components) => ({ components })))
      .handle("createKey", ({ payload }) => actions.createKey(payload))
      .handle("listKeys", () => Effect.map(actions.listKeys, (keys) => ({ keys })))
      .handle("revokeKey", ({ path }) => actions.revokeKey(path.id))
      .handle("audit", () => Effect.map(actions.auditLog, (entries) => ({ entries })))
  }))
