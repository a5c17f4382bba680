/**
 * The calls that take the app secret instead of a token: mini-program login
 * (`/sns/jscode2session`) and web OAuth (`/sns/oauth2/access_token`). The
 * caller sends its client key as `secret`; the gateway checks it, puts the
 * real secret in its place and passes WeChat's answer back with the secret
 * masked, should WeChat ever echo it. The client key never goes upstream,
 * the secret never comes back.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Duration, Effect, Redacted } from "effect"
import * as TokenScrubber from "../../internal/tokenScrubber.js"
import * as UpstreamCall from "../../internal/upstreamCall.js"
import * as Answers from "./answers.js"
import type { Keys } from "./keys.js"
import * as WholeCall from "./wholeCall.js"

/** The paths, as WeChat spells them. */
export const PATHS: ReadonlySet<string> = new Set(["/sns/jscode2session", "/sns/oauth2/access_token"])

// WeChat's answers here are a few fields; anything larger is not one.
const MAX_ANSWER_BYTES = 64 * 1024

/** @internal */
export interface SecretCalls {
  readonly answer: (
    path: string,
    query: URLSearchParams,
    keys: Keys
  ) => Effect.Effect<{ readonly response: HttpServerResponse.HttpServerResponse; readonly ok: boolean }>
}

/**
 * Over `upstream`'s connections to `baseUrl`, with the real secret of each
 * app from `secretOf` and WeChat's answer due within `timeout`.
 *
 * @internal
 */
export const make = (options: {
  readonly upstream: UpstreamCall.Upstream
  readonly baseUrl: string
  readonly secretOf: (appId: string) => Redacted.Redacted<string> | undefined
  readonly timeout: Duration.Duration
}): SecretCalls => {
  const origin = options.upstream.origin(options.baseUrl.replace(/\/+$/, ""))
  const refused = (response: HttpServerResponse.HttpServerResponse) => Effect.succeed({ response, ok: false })
  return {
    answer: (path, query, keys) => {
      const appId = query.get("appid")
      const presented = query.get("secret")
      if (appId === null || appId === "") return refused(Answers.error(41002, "appid missing"))
      if (presented === null || presented === "") return refused(Answers.error(41004, "appsecret missing"))
      const key = keys.match(presented)
      if (key === undefined) return refused(Answers.error(40125, "invalid appsecret"))
      const secret = options.secretOf(appId)
      if (secret === undefined || !keys.allows(key, appId)) return refused(Answers.error(40013, "invalid appid"))
      const real = Redacted.value(secret)
      const forwarded = new URLSearchParams(query)
      forwarded.set("secret", real)
      return WholeCall.send(
        origin,
        {
          method: "GET",
          path: `${path}?${forwarded.toString()}`,
          headers: { accept: "application/json", "accept-encoding": "identity" },
          body: { _tag: "None" }
        },
        options.timeout,
        MAX_ANSWER_BYTES
      ).pipe(
        Effect.match({
          onFailure: (failure) => ({ response: Answers.error(-1, `system error: ${failure}`), ok: false }),
          onSuccess: (answer) => ({
            response: Answers.raw(TokenScrubber.whole(answer.body, [real]), answer.contentType),
            ok: true
          })
        })
      )
    }
  }
}
