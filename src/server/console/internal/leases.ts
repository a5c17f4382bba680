/**
 * The refresh leases this replica holds now, for the console's replicas
 * panel. A lease lives only while its holder fetches (seconds), so the
 * panel shows which replica is refreshing what at that moment: the record
 * store's own lease keys are not read, the store's `lease` call is watched
 * on its way through instead.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { TokenStore, type TokenStoreShape } from "../../../TokenStore.js"

export interface HeldLease {
  readonly owner: string
  readonly kind: string
  /** When it lapses if its holder never releases it, epoch millis. */
  readonly until: number
}

export interface LeaseBookShape {
  /** Leases held now, oldest first. */
  readonly held: () => ReadonlyArray<HeldLease>
  readonly taken: (lease: HeldLease) => void
  readonly released: (lease: HeldLease) => void
}

export class LeaseBook extends Context.Tag("effect-wechat-token/console/LeaseBook")<LeaseBook, LeaseBookShape>() {}

const id = (lease: { readonly owner: string; readonly kind: string }) => `${lease.owner}/${lease.kind}`

export const layer: Layer.Layer<LeaseBook> = Layer.sync(LeaseBook, () => {
  const entries = new Map<string, HeldLease>()
  return {
    held: () => Array.from(entries.values()),
    taken: (lease) => entries.set(id(lease), lease),
    released: (lease) => entries.delete(id(lease))
  }
})

const watched = (store: TokenStoreShape, book: LeaseBookShape): TokenStoreShape => ({
  ...store,
  lease: (key, leaseMillis) =>
    Effect.tap(store.lease(key, leaseMillis), (taken) =>
      taken
        ? Effect.gen(function*() {
          const lease = { owner: key.appId, kind: key.kind, until: (yield* Clock.currentTimeMillis) + leaseMillis }
          book.taken(lease)
          // Released with the lease's scope: the fetch is over.
          yield* Effect.addFinalizer(() => Effect.sync(() => book.released(lease)))
        })
        : Effect.void)
})

/** The store it is provided with, its leases written in the `LeaseBook`. */
export const layerWatch: Layer.Layer<TokenStore, never, TokenStore | LeaseBook> = Layer.effect(
  TokenStore,
  Effect.map(Effect.all([TokenStore, LeaseBook]), ([store, book]) => watched(store, book))
)
