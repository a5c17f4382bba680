/**
 * What the runtime under the server adds to the app, read once as the
 * server starts. By default nothing: the app is served as it is, its bodies
 * read through the platform's stream, on any `HttpServer` and through
 * `HttpApp.toWebHandler`. The Node edge (`NodeServer`) provides its own:
 * bodies read off the socket without losing it, the answers of clients that
 * left ended, and the proxy's routes, which stream through Node, answered
 * before any body is read.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import { Context, type Scope } from "effect"
import * as RequestLimits from "../RequestLimits.js"

export interface EdgeShape {
  readonly body: RequestLimits.BodyReader
  /** Around the app, inside the request counter, before the body is read. */
  readonly front: <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R | Scope.Scope>
}

export class Edge extends Context.Reference<Edge>()("effect-wechat-token/server/Edge", {
  defaultValue: (): EdgeShape => ({ body: RequestLimits.platformBodyReader, front: (app) => app })
}) {}
