/**
 * What replicas sharing a store show each other in the console, kept as two
 * documents in that store (`StoreDocuments`), so every replica's console
 * shows the group:
 *
 * - `console-replicas`: each replica's heartbeat (every `BEAT`) and the
 *   refresh leases it holds at that beat. A replica not heard from for
 *   `ALIVE_MILLIS` shows as gone; after `FORGET_MILLIS` it is dropped, so the
 *   document stays as small as the group.
 * - `console-history`: the group's 24 h history, sparse. Each replica adds
 *   its own growth since its last share (the counters are per process, so
 *   nothing is counted twice) and drops what is older than a day.
 *
 * Both are replaced whole by compare-and-set, so two replicas writing at
 * once lose neither write.
 */
import { Duration, Effect, Option, Schema } from "effect"
import type { StoreDocumentsShape } from "../../../StoreDocuments.js"
import { StoreError } from "../../../TokenStore.js"
import * as History from "./history.js"
import type { HeldLease } from "./leases.js"

export const REPLICAS_DOCUMENT = "console-replicas"
export const HISTORY_DOCUMENT = "console-history"

/** How often a replica says it is alive. */
export const BEAT = Duration.seconds(15)
/** Three missed beats: gone. */
export const ALIVE_MILLIS = 45_000
/** Gone this long: no longer listed. */
export const FORGET_MILLIS = 10 * 60_000

// Two replicas writing in the same instant retry; a store that keeps
// refusing is reported, and the growth waits for the next share.
const ATTEMPTS = 8

const Counts = Schema.mutable(Schema.Array(Schema.Number))
const Buckets = Schema.mutable(Schema.Record({ key: Schema.String, value: Counts }))
const SnapshotJson = Schema.parseJson(Schema.Struct({
  group: Buckets,
  owners: Schema.mutable(Schema.Record({ key: Schema.String, value: Buckets })),
  days: Schema.mutable(
    Schema.Record({ key: Schema.String, value: Schema.mutable(Schema.Tuple(Schema.Number, Schema.Number)) })
  ),
  traffic: Schema.mutable(Schema.Record({ key: Schema.String, value: Schema.Number }))
}))

const Lease = Schema.Struct({ owner: Schema.String, kind: Schema.String, until: Schema.Number })
const Heartbeat = Schema.Struct({ seen: Schema.Number, started: Schema.Number, leases: Schema.Array(Lease) })
const ReplicasJson = Schema.parseJson(Schema.Record({ key: Schema.String, value: Heartbeat }))

// A document another version wrote, or garbage: started afresh, never a failure.
const decodeSnapshot = (body: string | undefined) =>
  Option.getOrElse(
    Option.flatMap(Option.fromNullable(body), Schema.decodeUnknownOption(SnapshotJson)),
    History.emptySnapshot
  )
const decodeReplicas = (body: string | undefined): Readonly<Record<string, typeof Heartbeat.Type>> =>
  Option.getOrElse(Option.flatMap(Option.fromNullable(body), Schema.decodeUnknownOption(ReplicasJson)), () => ({}))

export interface Replica {
  readonly id: string
  readonly alive: boolean
  readonly self: boolean
  /** When it was last heard from, epoch millis. */
  readonly seen: number
  readonly started: number
  readonly leases: ReadonlyArray<HeldLease>
}

export interface Group {
  /** This replica's heartbeat, with the leases it holds now. */
  readonly beat: (now: number, leases: ReadonlyArray<HeldLease>) => Effect.Effect<void, StoreError>
  /** Adds what `history` gathered since its last share to the group's history. */
  readonly share: (history: History.History, now: number) => Effect.Effect<void, StoreError>
  readonly replicas: (now: number) => Effect.Effect<ReadonlyArray<Replica>, StoreError>
  readonly history: Effect.Effect<History.Snapshot, StoreError>
}

export const make = (documents: StoreDocumentsShape, self: string, started: number): Group => {
  const update = (name: string, change: (body: string | undefined) => string) =>
    Effect.gen(function*() {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const held = Option.getOrUndefined(yield* documents.get(name))
        if (yield* documents.swap(name, held?.version ?? 0, change(held?.body))) return
      }
      return yield* Effect.fail(
        new StoreError({ operation: "swap", detail: `${name} changed under ${ATTEMPTS} attempts in a row` })
      )
    })

  const read = (name: string) => Effect.map(documents.get(name), (held) => Option.getOrUndefined(held)?.body)

  return {
    beat: (now, leases) =>
      update(REPLICAS_DOCUMENT, (body) => {
        const next: Record<string, typeof Heartbeat.Type> = {}
        for (const [id, heartbeat] of Object.entries(decodeReplicas(body))) {
          if (heartbeat.seen >= now - FORGET_MILLIS) next[id] = heartbeat
        }
        next[self] = { seen: now, started, leases }
        return JSON.stringify(next)
      }),
    share: (history, now) => {
      const growth = history.drain()
      return update(HISTORY_DOCUMENT, (body) => JSON.stringify(History.merge(decodeSnapshot(body), growth, now))).pipe(
        Effect.tapError(() => Effect.sync(() => history.undrain(growth, now)))
      )
    },
    replicas: (now) =>
      Effect.map(read(REPLICAS_DOCUMENT), (body) =>
        Object.entries(decodeReplicas(body))
          .map(([id, heartbeat]): Replica => ({
            id,
            alive: heartbeat.seen >= now - ALIVE_MILLIS,
            self: id === self,
            seen: heartbeat.seen,
            started: heartbeat.started,
            leases: heartbeat.leases
          }))
          .sort((a, b) => a.id.localeCompare(b.id))),
    history: Effect.map(read(HISTORY_DOCUMENT), decodeSnapshot)
  }
}
