/**
 * The families the server serves: one line each. The server derives its
 * route handlers (`TokenServer.layerApi`) and its proxy targets
 * (`Proxy.layer`) from this list and names no family itself; each family's
 * library service comes from the context the server runs in
 * (`TokenLayer.layerFamilies`, or `TokenLayer.layerUnconfiguredFamilies`
 * over an engine that runs official accounts alone).
 *
 * @since 0.3.0
 */
import { Context, Effect, Layer } from "effect"
import type { ClientAuth } from "../api/ClientAuth.js"
import * as ComponentRoutes from "../families/component/ComponentRoutes.js"
import * as OfficialAccountRoutes from "../families/officialAccount/OfficialAccountRoutes.js"
import * as WeComRoutes from "../families/wecom/WeComRoutes.js"
import * as WeComSuiteRoutes from "../families/wecomSuite/WeComSuiteRoutes.js"
import type * as FamilyRoutes from "../FamilyRoutes.js"
import type { ProxyTarget } from "../ProxyTarget.js"

/**
 * What the registered families' routes take from the server's context.
 *
 * @since 0.3.0
 * @category models
 */
export type Services = typeof registered[number] extends FamilyRoutes.FamilyRoutes<infer R> ? R : never

/**
 * The registered families, in the order their proxy routes are matched.
 *
 * @since 0.3.0
 * @category constants
 */
export const registered = [
  OfficialAccountRoutes.routes,
  WeComRoutes.routes,
  ComponentRoutes.routes,
  WeComSuiteRoutes.routes
] as const

/**
 * The families a server serves: `registered` unless a layer provides another
 * list (a test family beside them, say).
 *
 * @since 0.3.0
 * @category tags
 */
export class Families extends Context.Reference<Families>()("effect-wechat-token/server/Families", {
  defaultValue: (): ReadonlyArray<FamilyRoutes.FamilyRoutes<Services>> => registered
}) {}

/**
 * The handlers of every family's route groups and push intake, merged.
 *
 * @since 0.3.0
 * @category layers
 */
export const handlers: Layer.Layer<FamilyRoutes.Handlers, never, Services | ClientAuth> = Layer.unwrapEffect(
  Effect.map(Families, (families) =>
    Layer.mergeAll(
      Layer.empty,
      ...families.flatMap((family) =>
        family.intake === undefined ? [family.handlers] : [family.handlers, family.intake]
      )
    ))
)

/**
 * Every family's proxy target, over the services in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const proxyTargets = (
  upstreams: FamilyRoutes.Upstreams
): Effect.Effect<ReadonlyArray<ProxyTarget>, never, Services> =>
  Effect.flatMap(
    Families,
    (families) =>
      Effect.forEach(
        families.flatMap((family) => family.proxy === undefined ? [] : [family.proxy(upstreams)]),
        (target) => target
      )
  )
