/**
 * How replicas on one store share the scheduled refreshes: each credential
 * is refreshed by one replica, its owner, instead of every replica racing
 * for the store's lease when it falls due (N lease attempts per refresh, the
 * work landing wherever a timer fired first).
 *
 * Why owner partitions and not a due queue in the store: every replica
 * already holds every credential and its `refreshAt` (it serves them from
 * memory), so the only thing to agree on is who refreshes. A sorted set of
 * live replicas (`TokenStore.heartbeat`) and rendezvous hashing of each
 * credential over it settle that with one store round trip per replica
 * every `HEARTBEAT`, whatever the number of credentials; a shared due queue
 * would cost a claim per refresh and a poll per replica. Rendezvous hashing
 * splits evenly (each of N replicas owns 1/N ± a few per mille of 100,000
 * credentials) and, when a replica joins or leaves, moves only the
 * credentials it gains or loses.
 *
 * Views of the live replicas can differ for a heartbeat (one joined, one
 * died): then two replicas may both own a credential for a moment, and the
 * lease keeps the refresh single as before. A replica that cannot reach the
 * store for `REPLICA_TTL` counts as alone and owns everything, as a replica
 * did before sharing; the lease (or `defersOnStoreDown`) then decides.
 *
 * @internal
 */
import { Clock, Duration, Effect, Random, type Scope } from "effect"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { keyString, type TokenStoreShape } from "../../TokenStore.js"
import type { Cell } from "./cell.js"

const TTL_MILLIS = Duration.toMillis(RefreshPolicy.REPLICA_TTL)

// 32-bit FNV-1a over `text` from `seed`, then murmur3's finalizer: the
// finalizer spreads FNV's weak low bits, so the owner of keys that differ in
// one character is still a fair draw.
const hash = (text: string, seed: number): number => {
  let h = seed >>> 0
  for (let index = 0; index < text.length; index++) {
    h = Math.imul(h ^ text.charCodeAt(index), 0x01000193)
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

const FNV_OFFSET = 0x811c9dc5

type Seeds = ReadonlyArray<readonly [replica: string, seed: number]>

// Each replica's weight for a credential is a hash seeded by the hash of its id.
const seeded = (replicas: ReadonlyArray<string>): Seeds =>
  replicas.map((replica) => [replica, hash(replica, FNV_OFFSET)] as const)

// Highest random weight; ties (2^-32) go to the smaller id, so every replica
// computes the same owner from the same list.
const heaviest = (credential: string, seeds: Seeds): string | undefined => {
  let owner: string | undefined
  let best = -1
  for (const [replica, seed] of seeds) {
    const weight = hash(credential, seed)
    if (weight > best || (weight === best && owner !== undefined && replica < owner)) {
      owner = replica
      best = weight
    }
  }
  return owner
}

/**
 * The replica of `replicas` that owns `credential` (a `keyString`).
 *
 * @internal
 */
export const ownerOf = (credential: string, replicas: ReadonlyArray<string>): string | undefined =>
  heaviest(credential, seeded(replicas))

/** @internal */
export interface Shares {
  /** This replica's id in the store's list. */
  readonly replica: string
  /** Whether this replica refreshes `cell` at `now`. */
  readonly owns: (cell: Cell, now: number) => boolean
  /** The heartbeat, every `HEARTBEAT` until the scope closes (when the replica leaves). */
  readonly run: Effect.Effect<never>
}

/** @internal */
export const make = (
  store: Pick<TokenStoreShape, "heartbeat" | "leave">
): Effect.Effect<Shares, never, Scope.Scope> =>
  Effect.gen(function*() {
    const replica = (yield* Effect.all([Random.nextInt, Random.nextInt, Random.nextInt]))
      .map((part) => (part >>> 0).toString(36))
      .join("-")
    const { heartbeat, leave } = store
    // The live replicas' seeds, computed once per heartbeat.
    let seeds: Seeds = []
    let viewUntil = Number.NEGATIVE_INFINITY

    // An outage is logged once, not every heartbeat.
    let reachable = true
    const beat = Effect.gen(function*() {
      if (heartbeat === undefined) return
      const now = yield* Clock.currentTimeMillis
      const replicas = yield* heartbeat(replica, now, now + TTL_MILLIS)
      seeds = seeded(replicas.includes(replica) ? replicas : [...replicas, replica])
      viewUntil = now + TTL_MILLIS
      reachable = true
    }).pipe(
      Effect.catchTag("StoreError", (error) =>
        Effect.suspend(() => {
          if (!reachable) return Effect.void
          reachable = false
          return Effect.logWarning("token store unreachable; each replica refreshes alone", error.message)
        }))
    )

    const owns = (cell: Cell, now: number): boolean => {
      if (seeds.length <= 1 || now >= viewUntil) return true
      return heaviest(keyString(cell.key), seeds) === replica
    }

    if (heartbeat !== undefined) {
      yield* beat
      if (leave !== undefined) yield* Effect.addFinalizer(() => Effect.ignore(leave(replica)))
    }
    const run: Effect.Effect<never> = heartbeat === undefined
      ? Effect.never
      : Effect.forever(Effect.zipRight(Effect.sleep(RefreshPolicy.HEARTBEAT), beat))
    return { replica, owns, run }
  })
