/**
 * One page of the owners of a kind that share a prefix (a component's
 * authorizers, a suite's corps), ordered by id, read from the engine's
 * statuses in one pass.
 */
import { Effect, Option } from "effect"
import * as RefreshPolicy from "../RefreshPolicy.js"
import type { CredentialKind } from "../Token.js"
import type { CredentialStatus, TokenEngineShape } from "../TokenEngine.js"

/** One owner: its id after the prefix, and until when its credential may be used, when valid. */
export interface OwnerEntry {
  readonly id: string
  readonly valid: boolean
  readonly expiresAt?: number
}

export interface OwnerPage {
  readonly entries: ReadonlyArray<OwnerEntry>
  readonly nextCursor?: string
}

/** At most `size` owners of `kind` whose id starts with `prefix`, after `cursor` (an id after the prefix). */
export const ownerPage = (
  engine: TokenEngineShape,
  options: {
    readonly prefix: string
    readonly kind: CredentialKind
    readonly cursor: string | undefined
    readonly size: number
  }
): Effect.Effect<OwnerPage> =>
  Effect.gen(function*() {
    const { kind, prefix, size } = options
    // The first `size + 1` after the cursor in id order, kept sorted as the
    // statuses pass: a page of 100,000 owners costs one pass and a few
    // hundred insertions, not a list and a sort of them all.
    const page: Array<CredentialStatus> = []
    // Owner ids share the prefix, so they sort as the ids after it do.
    const after = options.cursor === undefined ? undefined : `${prefix}${options.cursor}`
    yield* engine.eachStatus((status) => {
      if (status.kind !== kind || !status.appId.startsWith(prefix)) return
      if (after !== undefined && status.appId <= after) return
      if (page.length > size && status.appId >= page[size]!.appId) return
      let at = page.length
      while (at > 0 && page[at - 1]!.appId > status.appId) at -= 1
      page.splice(at, 0, { ...status })
      if (page.length > size + 1) page.pop()
    })
    const more = page.length > size
    if (more) page.pop()
    const entries = page.map((status): OwnerEntry => {
      const id = status.appId.slice(prefix.length)
      return status.valid && Option.isSome(status.record)
        ? { id, valid: true, expiresAt: RefreshPolicy.usableUntil(status.record.value) }
        : { id, valid: false }
    })
    return more ? { entries, nextCursor: entries[entries.length - 1]!.id } : { entries }
  })
