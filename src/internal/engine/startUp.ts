/**
 * Starting the engine's owners: the configured owners' eager kinds, then
 * the dynamic owners back from their stored presence records, each kind
 * read with one listing.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import type { CredentialFamily } from "../../CredentialFamily.js"
import type { CredentialKind, TokenRecord } from "../../Token.js"
import type { TokenStoreShape } from "../../TokenStore.js"
import type { Owners } from "./owners.js"

/** What start-up listed, by kind and owner. */
export type Preloaded = ReadonlyMap<CredentialKind, ReadonlyMap<string, TokenRecord>>

/**
 * The stored record of a preloaded kind (`null`: none stored); `undefined`
 * when the kind was not listed and must be read.
 */
export const seedOf = (
  preloaded: Preloaded | undefined,
  kind: CredentialKind,
  owner: string
): TokenRecord | null | undefined => {
  const listed = preloaded?.get(kind)
  return listed === undefined ? undefined : listed.get(owner) ?? null
}

// Listed credentials are started synchronously, this many per step: a
// million owners are then a few seconds of plain work, not an Effect (and
// its garbage) per credential.
const BATCH = 5_000

const eagerKinds = (family: CredentialFamily, except?: CredentialKind) =>
  family.kinds.filter((spec) => spec.start === "eager" && spec.kind !== except)

// A loop, not `new Map(records.map(…))`: a million listed records would
// first be a million pairs of garbage.
const byOwner = (records: ReadonlyArray<TokenRecord>): Map<string, TokenRecord> => {
  const map = new Map<string, TokenRecord>()
  for (const record of records) map.set(record.appId, record)
  return map
}

/** @internal */
export const run = (
  families: ReadonlyArray<CredentialFamily>,
  store: Pick<TokenStoreShape, "list">,
  owners: Pick<Owners, "start" | "startWith" | "admit" | "admitListed" | "remember">
): Effect.Effect<void> => {
  // Start-up reads each eagerly started kind with one listing (one file
  // read, a Redis SCAN with MGETs) instead of a read per credential: with
  // 100,000 owners that is the difference between seconds and minutes. A
  // store that cannot list leaves the kind to per-credential reads.
  const preload = (kindsToRead: ReadonlyArray<CredentialKind>): Effect.Effect<Preloaded> =>
    Effect.forEach(kindsToRead, (kind) =>
      store.list(kind).pipe(
        Effect.map((records) => [kind, byOwner(records)] as const),
        Effect.catchTag("StoreError", (error) =>
          Effect.logWarning("token store cannot list at start-up; reading credentials one by one", error.message)
            .pipe(Effect.as(undefined)))
      )).pipe(Effect.map((listed) => new Map(listed.filter((entry) => entry !== undefined))))

  // `handle` takes an item at once, or answers false and leaves it to `later`.
  const inBatches = <A>(
    items: ReadonlyArray<A>,
    handle: (item: A, now: number) => boolean,
    later: (item: A) => Effect.Effect<unknown>
  ): Effect.Effect<void> =>
    Effect.gen(function*() {
      for (let from = 0; from < items.length; from += BATCH) {
        const at = yield* Clock.currentTimeMillis
        const left = items.slice(from, from + BATCH).filter((item) => !handle(item, at))
        for (const item of left) yield* later(item)
      }
    })

  return Effect.gen(function*() {
    for (const family of families) {
      const eager = eagerKinds(family)
      if (family.owners.length === 0 || eager.length === 0) continue
      const preloaded = yield* preload(eager.map((spec) => spec.kind))
      for (const spec of eager) {
        const listed = preloaded.has(spec.kind)
        yield* inBatches(family.owners, (owner, now) => {
          if (!listed) return false
          owners.startWith(owner, family, spec, seedOf(preloaded, spec.kind, owner)!, now)
          return true
        }, (owner) => owners.start(owner, family, spec))
      }
    }
    // A store that cannot list owners now still admits each on first use (`Owners.cellOf`).
    for (const family of families) {
      const dynamic = family.dynamic
      if (dynamic === undefined) continue
      const records = yield* store.list(dynamic.presence).pipe(
        Effect.catchTag(
          "StoreError",
          (error) =>
            Effect.logWarning("token store cannot list owners at start-up; admitting them on first use", error.message)
              .pipe(Effect.as([]))
        )
      )
      const preloaded = records.length === 0
        ? undefined
        : yield* preload(eagerKinds(family, dynamic.presence).map((spec) => spec.kind))
      yield* inBatches(records, (record, now) => {
        if (!dynamic.accepts(record.appId)) return true
        if (record.retired === true) {
          owners.remember(record, family)
          return true
        }
        return owners.admitListed(record.appId, family, record, preloaded, now)
      }, (record) => owners.admit(record.appId, family, record, preloaded))
    }
  })
}
