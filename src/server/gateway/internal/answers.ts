/**
 * Answers in WeChat's shape: HTTP 200 with `errcode` and `errmsg`, so an SDK
 * reads them as it reads WeChat's and raises its usual error.
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

const NO_STORE = { "cache-control": "no-store" } as const

/** A JSON answer, never cached: it holds a token, a ticket, or an error about one. */
export const json = (body: object): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body, { headers: NO_STORE })

/** WeChat's error answer. */
export const error = (errcode: number, errmsg: string): HttpServerResponse.HttpServerResponse =>
  json({ errcode, errmsg })

/** 40001: what WeChat answers a token it does not accept; SDKs read it as "get a new token". */
export const invalidToken = (): HttpServerResponse.HttpServerResponse =>
  error(40001, "invalid credential, access_token is invalid or not latest (this gateway accepts only its own tokens)")

// The proxy's own refusals and failures, as WeChat's nearest errcode: an SDK
// retries -1 (system busy) and fails fast on the others, as it should here.
const ERRCODES: Record<string, number> = {
  path_not_allowed: 48001,
  invalid_path: 48001,
  access_token_not_allowed: 40001,
  payload_too_large: 45002,
  method_not_allowed: 43001,
  unknown_app: 40001
}

/**
 * The proxy's refusal (`status`, `code`, `message`) in WeChat's shape: the
 * errcode WeChat would give, `-1` for anything that may pass (WeChat not
 * reachable, too slow, no token yet). The message says what happened.
 */
export const refusal = (_status: number, code: string, message: string): HttpServerResponse.HttpServerResponse =>
  error(ERRCODES[code] ?? -1, `${message} (${code})`)

/** WeChat's own answer, passed on as it came (masked already), with its status (200 unless given). */
export const raw = (
  body: Uint8Array,
  contentType: string | undefined,
  status = 200
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.uint8Array(body, {
    status,
    headers: NO_STORE,
    contentType: contentType ?? "application/json; charset=utf-8"
  })
