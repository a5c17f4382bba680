/**
 * Durable inputs from outside (a pushed ticket, a refresh token an
 * authorization answered) and the end of a dynamic owner: both are written
 * to the store before they return, and races between replicas resolve in
 * the store, the latest write winning.
 *
 * @internal
 */
import { Clock, Effect, Option } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import type { Issued } from "../../CredentialFamily.js"
import type { OwnerId as Owner } from "../../OwnerId.js"
import { type CredentialKind, mask, TokenRecord } from "../../Token.js"
import type { TokenStoreShape } from "../../TokenStore.js"
import { UnknownApp } from "../../WeChatError.js"
import * as Cell from "./cell.js"
import type { Fetch } from "./fetch.js"
import type { Owners } from "./owners.js"
import type { Scheduler } from "./scheduler.js"

/** @internal */
export const make = (
  store: Pick<TokenStoreShape, "get" | "set">,
  owners: Owners,
  fetch: Pick<Fetch, "adopt" | "newest">,
  scheduler: Pick<Scheduler, "schedule">,
  marginMillis: number
) => {
  const current = (owner: Owner, kind: CredentialKind, cell: Cell.Cell | undefined) =>
    cell !== undefined
      ? fetch.newest(cell)
      : Effect.map(store.get({ appId: owner, kind }), Option.getOrUndefined)

  // A credential whose last fetch failed for want of this input is fetched
  // at once, by the schedule: its backoff (up to a minute) was meant for a
  // failing issuer, not for a push that had not come yet. A third-party
  // platform's verify ticket arriving after a cold start is the case.
  const awaken = (owner: string, kind: CredentialKind): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.forEach(
        Array.from(owners.dependentsOf(owner, kind)).filter((cell) => Cell.lacks(cell, owner, kind)),
        (cell) => Effect.zipRight(Cell.succeeded(cell), Effect.sync(() => scheduler.schedule(cell, now))),
        { discard: true }
      ))

  // The owner may have no cell yet: the first ticket, a new authorizer.
  const put = (owner: string, kind: CredentialKind, issued: Issued): Effect.Effect<Credential, AccessTokenError> =>
    Effect.gen(function*() {
      const declared = owners.declared(kind)
      if (declared === undefined) {
        return yield* new UnknownApp({ appId: owner })
      }
      const { family, spec } = declared
      // A dynamic owner's values may be put before it is admitted (the token
      // an authorization answered, then the refresh token that admits it),
      // so admitting it finds them instead of fetching.
      const dynamic = family.dynamic !== undefined && family.dynamic.accepts(owner) &&
        !family.owners.some((known) => known === owner)
      const presence = dynamic && family.dynamic!.presence === kind
      const key = { appId: owner as Owner, kind }
      const cell = owners.started(owner, kind) ?? (dynamic ? undefined : yield* owners.cellOf(owner, kind))
      const held = yield* current(key.appId, kind, cell)
      const winner = held !== undefined && held.value === issued.value && held.retired !== true
        // The same value again (a duplicate push): already stored, nothing to write.
        ? held
        : yield* Effect.gen(function*() {
          const record = yield* Cell.newRecord(
            { key, spec },
            issued,
            yield* Clock.currentTimeMillis,
            held,
            marginMillis
          )
          const stored = yield* store.set(record)
          // Another put raced ours to the same generation: the later put wins.
          return stored.value === record.value
            ? stored
            : yield* store.set(
              new TokenRecord({ ...record, lineage: stored.lineage, generation: stored.generation + 1 })
            )
        })
      const live = cell !== undefined || !dynamic || presence || owners.isAdmitted(owner)
      const target = live ? cell ?? (yield* owners.start(key.appId, family, spec, winner)) : undefined
      if (target !== undefined) {
        yield* fetch.adopt(target, winner)
        yield* Cell.succeeded(target)
      }
      if (presence && !owners.isAdmitted(owner)) yield* owners.admit(key.appId, family, winner)
      if (winner !== held) {
        yield* awaken(owner, kind)
        yield* Effect.logInfo("durable value stored").pipe(
          Effect.annotateLogs({ app: owner, kind, value: mask(winner.value), generation: winner.generation })
        )
      }
      return Cell.toHeld(winner).credential
    })

  const retire = (owner: string): Effect.Effect<void, AccessTokenError> =>
    Effect.gen(function*() {
      const family = owners.dynamicFamilyOf(owner)
      if (family === undefined) {
        return yield* new UnknownApp({ appId: owner })
      }
      const kind = family.dynamic!.presence
      const stored = yield* current(owner as Owner, kind, owners.started(owner, kind))
      // Never known here or anywhere: nothing to stop.
      if (stored === undefined) {
        return
      }
      const tombstone = stored.retired === true
        ? stored
        : yield* store.set(new TokenRecord({ ...stored, generation: stored.generation + 1, retired: true }))
      // A put of a new value won the race: the owner is back.
      if (tombstone.retired === true) {
        yield* owners.stop(owner, family, tombstone)
      }
    })

  return { put, retire }
}
