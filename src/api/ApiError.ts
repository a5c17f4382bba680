/**
 * The error bodies of the central server: always
 * `{"error":{"code":"...","message":"..."}}`, whatever produced the error
 * (a handler, the auth middleware, the platform's request decoding, the router).
 * A 503 also carries the typed failure (`failure`), so a client fails with
 * the same value a local engine gives.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Schema } from "effect"
import { AccessTokenError, failureCause } from "../AccessToken.js"

/**
 * The typed failure behind an error body: one of `AccessTokenError`'s
 * classes, encoded as its `_tag` and fields. A failure this version does not
 * know (from a newer server) is kept undecoded, so the body still decodes
 * and its `code` and `message` still reach the caller.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Failure = Schema.Union(
  AccessTokenError,
  Schema.Unknown.annotations({ description: "a failure of a newer server version" })
).annotations({ description: "the typed failure, as the library fails with it" })

/**
 * The inside of every error body. `code` is machine-readable, `message` says
 * what a person can do about it; neither, nor `failure`, ever contains a secret.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorDetail = Schema.Struct({
  code: Schema.String.annotations({ description: "machine-readable cause, e.g. unknown_app, 40125, upstream_timeout" }),
  message: Schema.String,
  failure: Schema.optional(Failure)
}).annotations({ identifier: "ErrorDetail" })

// Every error class is the same body with its own status: the status lives
// in the schema's annotation, so the server and the OpenAPI document read it
// from one place.
const errorBody = <Self>(tag: string, status: number, description: string) =>
  Schema.Class<Self>(tag)({ error: ErrorDetail }, HttpApiSchema.annotations({ status, description }))

/**
 * 400: malformed JSON, wrong types, an app id of the wrong shape, an unusable page URL.
 *
 * @since 0.1.0
 * @category models
 */
export class BadRequest extends errorBody<BadRequest>("BadRequest", 400, "The request is malformed") {}

/**
 * 401: the `Authorization: Bearer <client key>` header is missing or wrong.
 *
 * @since 0.1.0
 * @category models
 */
export class Unauthorized extends errorBody<Unauthorized>("Unauthorized", 401, "Missing or wrong client key") {}

/**
 * 404: the app id is not configured on this server (or the route does not exist).
 *
 * @since 0.1.0
 * @category models
 */
export class NotFound extends errorBody<NotFound>("NotFound", 404, "Unknown app") {}

/**
 * 405: the path exists but not for this method; `Allow` lists the ones it takes.
 *
 * @since 0.1.0
 * @category models
 */
export class MethodNotAllowed extends errorBody<MethodNotAllowed>(
  "MethodNotAllowed",
  405,
  "Wrong method for this path; the Allow header lists the right ones"
) {}

/**
 * 408: the headers or the body did not arrive within the request timeout.
 *
 * @since 0.1.0
 * @category models
 */
export class RequestTimeout
  extends errorBody<RequestTimeout>("RequestTimeout", 408, "The request did not arrive within the request timeout")
{}

/**
 * 413: the request body is over the server's limit.
 *
 * @since 0.1.0
 * @category models
 */
export class PayloadTooLarge extends errorBody<PayloadTooLarge>("PayloadTooLarge", 413, "Request body too large") {}

/**
 * 503: no valid token can be had now. `code` names the upstream cause (an
 * errcode such as `40164`, or `upstream_timeout`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export class TokenUnavailable extends errorBody<TokenUnavailable>(
  "TokenUnavailable",
  503,
  "No valid token obtainable; the code names the upstream cause"
) {}

/**
 * The 503 of a failure to obtain a credential: its cause code, its message
 * and the failure itself. An unknown owner is a 404, built by the key check
 * so that it reads the same whether the app is missing or not the key's.
 *
 * @since 0.3.0
 * @category constructors
 */
export const tokenUnavailable = (error: AccessTokenError): TokenUnavailable =>
  new TokenUnavailable({ error: { code: failureCause(error), message: error.message, failure: error } })

/**
 * Every error a `/v1` route can answer.
 *
 * @since 0.1.0
 * @category models
 */
export type ApiError =
  | BadRequest
  | Unauthorized
  | NotFound
  | MethodNotAllowed
  | RequestTimeout
  | PayloadTooLarge
  | TokenUnavailable

/**
 * Builds an error body.
 *
 * @since 0.1.0
 * @category utils
 */
export const detail = (code: string, message: string) => ({ error: { code, message } })

/**
 * An error response built outside the `HttpApi` error schemas: for the
 * failures the platform raises before a handler runs. No error answer is
 * worth caching.
 *
 * @since 0.1.0
 * @category utils
 */
export const response = (status: number, code: string, message: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(detail(code, message), { status, headers: { "cache-control": "no-store" } })
