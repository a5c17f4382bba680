/**
 * One upstream call whose answer the gateway reads whole before passing it
 * on: the calls it rewrites (the real secret in place of the client key, a
 * third-party platform's refresh tokens out of the answer). Their answers are
 * a few fields or a page of a list; anything larger is not one.
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import * as UpstreamCall from "../../internal/upstreamCall.js"

/** WeChat's answer, read whole. */
export interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: Uint8Array
}

/** Why there is no answer to pass on, in WeChat's words for the caller. */
export type Failure = "WeChat did not answer in time" | "WeChat could not be reached" | "WeChat's answer was too large"

/**
 * Sends `call` to `origin` and reads its answer, up to `maxBytes`, within
 * `timeout`; the connection goes back to the pool, or is destroyed, either way.
 *
 * @internal
 */
export const send = (
  origin: UpstreamCall.Origin,
  call: UpstreamCall.Call,
  timeout: Duration.Duration,
  maxBytes: number
): Effect.Effect<Answer, Failure> =>
  Effect.scoped(Effect.gen(function*() {
    const deadlineAt = performance.now() + Duration.toMillis(timeout)
    const answer = yield* Effect.acquireRelease(
      origin.send(call, deadlineAt),
      (answer) => Effect.sync(() => answer.destroy())
    )
    const body = yield* UpstreamCall.peek(answer, maxBytes, deadlineAt)
    if (body._tag !== "Whole") return yield* Effect.fail("WeChat's answer was too large" as const)
    return { status: answer.statusCode ?? 502, contentType: answer.headers["content-type"], body: body.body }
  })).pipe(
    Effect.catchTags({
      CallTimedOut: () => Effect.fail("WeChat did not answer in time" as const),
      CallFailed: () => Effect.fail("WeChat could not be reached" as const),
      BodyRefused: () => Effect.fail("WeChat could not be reached" as const)
    })
  )
