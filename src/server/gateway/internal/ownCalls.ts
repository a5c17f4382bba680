/**
 * The calls a third-party credential's own token makes at WeChat's or
 * WeCom's paths: a third-party platform's component token on
 * `cgi-bin/component/…`, a WeCom suite's token on `cgi-bin/service/…`.
 * The gateway answers the calls that mint credentials itself; every other
 * call with a gateway token of that kind is forwarded here with the real
 * token, replaced and replayed once when the upstream says it is dead, its
 * answer read whole: the tokens used and any other secret named are masked,
 * and the credentials the server holds for the caller (refresh tokens,
 * permanent codes) read as a placeholder wherever the family's own
 * endpoints answer them.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { type Duration, Effect } from "effect"
import type { AccessTokenError, Credential } from "../../../AccessToken.js"
import * as QueryName from "../../internal/queryName.js"
import * as TokenScrubber from "../../internal/tokenScrubber.js"
import type * as UpstreamCall from "../../internal/upstreamCall.js"
import * as ProxyPath from "../../ProxyPath.js"
import * as Answers from "./answers.js"
import * as WholeCall from "./wholeCall.js"

// A page of 500 authorizers is about 100 KiB; the family endpoints' answers are no larger.
const MAX_ANSWER_BYTES = 1024 * 1024

/** The answer and whether it is the one asked for. */
export interface Answered {
  readonly response: HttpServerResponse.HttpServerResponse
  readonly ok: boolean
}

/** A refusal in WeChat's shape. */
export const refused = (errcode: number, errmsg: string): Answered => ({
  response: Answers.error(errcode, errmsg),
  ok: false
})

/**
 * The upstream's own refusal as it gave it; an owner the server does not
 * hold as `unknown`; anything else as the busy answer, which SDKs retry.
 */
export const failed = (error: AccessTokenError, unknown: Answered): Answered =>
  error._tag === "WeChatApiError"
    ? refused(error.errcode, error.errmsg)
    : error._tag === "UnknownApp"
    ? unknown
    : refused(-1, `system error: ${error.message}`)

/** A non-empty string field, else `undefined`. */
export const text = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined

/** `value` with every string field named in `fields`, at any depth, read as `placeholder`. */
export const withPlaceholders = (value: unknown, fields: ReadonlySet<string>, placeholder: string): unknown => {
  if (Array.isArray(value)) return value.map((item) => withPlaceholders(item, fields, placeholder))
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [
      name,
      fields.has(name) && typeof field === "string" ? placeholder : withPlaceholders(field, fields, placeholder)
    ])
  )
}

/** A JSON body's object, when it is one. */
export const parseObject = (body: Uint8Array): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(Buffer.from(body).toString("utf8"))
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

// A query name the upstream might read as a token (`QueryName.readAs`; the
// family endpoints take their own token names too): next to the real token
// it is two tokens in one call.
const namesToken = (query: URLSearchParams): boolean => {
  for (const name of query.keys()) {
    if (QueryName.readAs(name).endsWith("access_token")) return true
  }
  return false
}

/** Sends one call to the upstream and reads its answer whole. */
export type Send = (
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined
) => Effect.Effect<WholeCall.Answer, WholeCall.Failure>

/** Calls to `baseUrl` over `upstream`, each answered within `timeout`. */
export const sender = (options: {
  readonly upstream: UpstreamCall.Upstream
  readonly baseUrl: string
  readonly timeout: Duration.Duration
}): Send => {
  const origin = options.upstream.origin(options.baseUrl.replace(/\/+$/, ""))
  return (method, path, headers, body) =>
    WholeCall.send(
      origin,
      {
        method,
        path,
        headers: { accept: "application/json", "accept-encoding": "identity", ...headers },
        body: body === undefined ? { _tag: "None" } : { _tag: "Held", bytes: body }
      },
      options.timeout,
      MAX_ANSWER_BYTES
    )
}

/**
 * The upstream's answer to a call the gateway rewrote, with `secrets`
 * masked, or its busy answer when there is none.
 */
export const passed = (
  sent: Effect.Effect<WholeCall.Answer, WholeCall.Failure>,
  secrets: ReadonlyArray<string>
): Effect.Effect<Answered> =>
  Effect.match(sent, {
    onFailure: (failure) => refused(-1, `system error: ${failure}`),
    onSuccess: (answer) => ({
      response: Answers.raw(TokenScrubber.whole(answer.body, secrets), answer.contentType, answer.status),
      ok: true
    })
  })

/**
 * One call as the caller sent it: `path` with its leading `/`, `query`
 * without the gateway token; the real token is added as `tokenName`.
 */
export interface Call {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly tokenName: string
  readonly contentType: string | undefined
  readonly body: Uint8Array | undefined
}

/** The family's own endpoints, and what is refused and hidden there. */
export interface Own {
  /** Their prefix, lower case, e.g. `cgi-bin/component/`. */
  readonly under: string
  /** Those never forwarded (matched without regard to case), and why. */
  readonly refused: RegExp
  readonly because: string
  /** Answer fields that hold a credential the server keeps, read as `placeholder`. */
  readonly hidden: ReadonlySet<string>
  readonly placeholder: string
  /** The errcodes that say the family's token is dead: replaced once and the call replayed. */
  readonly deadToken: ReadonlySet<number>
}

/**
 * Forwards `call` with the real token (`token`, and `refresh` of it once
 * when the upstream says it is dead). On the family's own endpoints the
 * family's rules hold, elsewhere the proxy's. `secrets` are masked in the
 * answer besides the tokens used.
 */
export const forward = (options: {
  readonly send: Send
  readonly call: Call
  readonly own: Own
  readonly token: Effect.Effect<Credential, AccessTokenError>
  readonly refresh: (stale: string) => Effect.Effect<Credential, AccessTokenError>
  readonly secrets?: ReadonlyArray<string>
  readonly failed: (error: AccessTokenError) => Answered
}): Effect.Effect<Answered> =>
  Effect.gen(function*() {
    const { call, own } = options
    const checked = ProxyPath.normalize(call.path.slice(1))
    if (!("path" in checked)) return refused(48001, `api unauthorized: ${checked.reason}`)
    const path = checked.path
    const underOwn = path.toLowerCase().startsWith(own.under)
    const refusal = underOwn
      ? own.refused.test(path) ? own.because : undefined
      : (() => {
        const resolved = ProxyPath.resolve(path, undefined)
        return "path" in resolved ? undefined : resolved.reason
      })()
    if (refusal !== undefined) return refused(48001, `api unauthorized: ${refusal}`)
    if (namesToken(call.query)) return refused(40001, "invalid credential: one access token per call")
    const prefix = `/${path}?${call.query.size === 0 ? "" : `${call.query.toString()}&`}${call.tokenName}=`
    const headers: Record<string, string> = call.contentType === undefined ? {} : { "content-type": call.contentType }
    const once = (token: string) => options.send(call.method, prefix + encodeURIComponent(token), headers, call.body)

    const first = yield* options.token
    let answer = yield* once(first.value)
    const used = [first.value]
    const errcode = parseObject(answer.body)?.["errcode"]
    if (typeof errcode === "number" && own.deadToken.has(errcode)) {
      const fresh = yield* options.refresh(first.value)
      if (fresh.value !== first.value) {
        used.push(fresh.value)
        answer = yield* once(fresh.value)
      }
    }
    let body: Uint8Array = TokenScrubber.whole(answer.body, [...used, ...(options.secrets ?? [])])
    if (underOwn) {
      const fields = parseObject(body)
      // Not a JSON object: no credential field to replace.
      if (fields !== undefined) {
        body = new TextEncoder().encode(JSON.stringify(withPlaceholders(fields, own.hidden, own.placeholder)))
      }
    }
    return { response: Answers.raw(body, answer.contentType, answer.status), ok: true }
  }).pipe(
    Effect.catchAll((error) =>
      Effect.succeed(typeof error === "string" ? refused(-1, `system error: ${error}`) : options.failed(error))
    )
  )
