/**
 * Calling a kind's issuer: its declared inputs resolved first, the upstream
 * permit held around the issuer only (an issuer waiting on an input holds
 * none, so two kinds never deadlock on the limit), a rejected input
 * compare-and-refreshed once before the issuer is asked again (a pushed
 * input rejected again counts as missing, so the next push wakes it), a revoked
 * owner retired, and the values issued alongside stored before the
 * credential is answered.
 *
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import type { Issued, IssuedWith } from "../../CredentialFamily.js"
import type { CredentialKind } from "../../Token.js"
import { MissingInput } from "../../WeChatError.js"
import type { Cell } from "./cell.js"

// After a pushed input was rejected and a push asked for: 20 looks, 250 ms apart.
const PUSH_WAIT = Schedule.intersect(Schedule.spaced(Duration.millis(250)), Schedule.recurs(20))

/** @internal */
export interface IssueDeps {
  readonly get: (owner: string, kind: CredentialKind) => Effect.Effect<Credential, AccessTokenError>
  readonly refresh: (owner: string, stale: string, kind: CredentialKind) => Effect.Effect<Credential, AccessTokenError>
  readonly put: (owner: string, kind: CredentialKind, issued: Issued) => Effect.Effect<Credential, AccessTokenError>
  readonly retire: (owner: string) => Effect.Effect<void, AccessTokenError>
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const isIssuedWith = (answer: Issued | IssuedWith): answer is IssuedWith => "issued" in answer

/** @internal */
export const make = (deps: IssueDeps) => (cell: Cell, force: boolean): Effect.Effect<Issued, AccessTokenError> => {
  const owner = cell.key.appId
  const inputs = cell.spec.inputs ?? []
  const ownerOf = (index: number) => inputs[index]!.ownerOf?.(owner) ?? owner

  // A compare-and-refresh of input `index`; a pushed input the refresh
  // could only ask for is waited for a little.
  const replace = (index: number, stale: string): Effect.Effect<Credential, AccessTokenError> => {
    const { awaitsPush, kind } = inputs[index]!
    const refreshed = deps.refresh(ownerOf(index), stale, kind)
    return awaitsPush !== true ? refreshed : refreshed.pipe(
      Effect.catchTag("MissingInput", (missing) =>
        deps.get(ownerOf(index), kind).pipe(
          Effect.filterOrFail((held) => held.value !== stale, () => missing),
          Effect.retry(PUSH_WAIT)
        ))
    )
  }

  // A pushed input rejected again after its replacement came (a newer push
  // was on its way meanwhile: WeChat takes only the latest ticket) is still
  // missing, not a configuration error: so the failure backs off as a
  // missing input does and the next push wakes the credential at once
  // (`Cell.lacks`), instead of the credential waiting out a rejection's pause.
  const rejectedAgain = (index: number, error: AccessTokenError): AccessTokenError =>
    inputs[index]!.awaitsPush === true
      ? new MissingInput({
        appId: ownerOf(index),
        kind: inputs[index]!.kind,
        detail: `the pushed replacement was rejected too (${error.message}); the next push is waited for`
      })
      : error

  const attempt = (
    values: ReadonlyArray<Credential>,
    replaced: ReadonlySet<number>
  ): Effect.Effect<Issued | IssuedWith, AccessTokenError> =>
    deps.withPermit(cell.spec.issue({ owner, force, inputs: values })).pipe(
      Effect.catchTags({
        InputRejected: ({ error, input }) =>
          input < 0 || input >= values.length
            ? Effect.fail(error)
            : replaced.has(input)
            ? Effect.fail(rejectedAgain(input, error))
            : Effect.flatMap(replace(input, values[input]!.value), (fresh) =>
              attempt(
                values.map((value, index) => index === input ? fresh : value),
                new Set([...replaced, input])
              )),
        OwnerRevoked: ({ error }) => Effect.zipRight(deps.retire(owner), Effect.fail(error))
      })
    )

  return Effect.forEach(inputs, (input, index) => deps.get(ownerOf(index), input.kind)).pipe(
    Effect.flatMap((values) => attempt(values, new Set())),
    Effect.flatMap((answer) =>
      isIssuedWith(answer)
        ? Effect.as(
          Effect.forEach(answer.alongside, ({ issued, kind }) => deps.put(owner, kind, issued), { discard: true }),
          answer.issued
        )
        : Effect.succeed(answer)
    )
  )
}
