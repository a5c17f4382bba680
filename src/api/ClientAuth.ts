/**
 * The key check of the API as a contract: every `/v1` route needs
 * `Authorization: Bearer <client key>`, and may answer 401 or 404. The
 * server implements it (`server/ClientAuth`); a client derived from the API
 * only needs to know it is there.
 *
 * @since 0.3.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import { Schema } from "effect"
import { NotFound, Unauthorized } from "./ApiError.js"

/**
 * The middleware tag: `Authorization: Bearer <client key>`, one of `CLIENT_KEYS`.
 * A key limited to some apps asking for another gets the same 404 as an app
 * the server does not have, so a key never learns which other apps exist.
 *
 * @since 0.1.0
 * @category tags
 */
export class ClientAuth extends HttpApiMiddleware.Tag<ClientAuth>()("effect-wechat-token/ClientAuth", {
  failure: Schema.Union(Unauthorized, NotFound),
  security: { bearer: HttpApiSecurity.bearer }
}) {}
