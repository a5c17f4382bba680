/**
 * The history behind the console's plots: bounded rings of per-bucket counts
 * over the last 24 h, fed by sampling Effect's metric registry (the counters
 * the engine and the proxy already keep), so nothing on the hot paths changes
 * to feed them. Each sample adds the counters' growth since the previous one
 * to the bucket of the sample's time.
 *
 * Memory is fixed when a ring is made: the group ring holds 1,440 one-minute
 * buckets of every series; an owner ring (one per metrics `app` label, at
 * most `MAX_OWNER_RINGS`) holds 144 ten-minute buckets of its credentials'
 * issues and failures. A server of 100,000 credentials labels them by
 * component or as `*` (`TokenMetrics.ownerLabel`), so it keeps a handful of
 * owner rings, not 100,000.
 */
import { Clock, Effect, Metric, MetricState } from "effect"
import type * as MetricPair from "effect/MetricPair"

const MINUTE = 60_000
const DAY = 86_400_000

/** The group ring's series, in the order `Timeline.series` lists them. */
export const GROUP_SERIES = ["fetches", "issued", "failures", "proxyCalls", "proxyReplays", "proxyRefusals"] as const
/** An owner ring's series. */
export const OWNER_SERIES = ["issued", "failures"] as const

/** Owner rings beyond this many are not made: the group ring still counts every owner. */
export const MAX_OWNER_RINGS = 2_000

/** Counts per bucket of `width` millis, the last `buckets` of them, `series` numbers each. */
class Ring {
  readonly counts: Uint32Array
  // The bucket number (time / width) each slot currently holds: a slot of an
  // older bucket reads as zero and is cleared when written.
  readonly slots: Float64Array
  constructor(readonly width: number, readonly buckets: number, readonly series: number) {
    this.counts = new Uint32Array(buckets * series)
    this.slots = new Float64Array(buckets).fill(-1)
  }
  add(now: number, series: number, amount: number): void {
    const bucket = Math.floor(now / this.width)
    const slot = bucket % this.buckets
    if (this.slots[slot] !== bucket) {
      this.slots[slot] = bucket
      this.counts.fill(0, slot * this.series, (slot + 1) * this.series)
    }
    this.counts[slot * this.series + series] += amount
  }
  /** The bucket start times (epoch seconds) and each series' counts, oldest first, ending at `now`'s bucket. */
  read(now: number): { readonly times: Array<number>; readonly values: Array<Array<number>> } {
    const last = Math.floor(now / this.width)
    const times: Array<number> = []
    const values = Array.from({ length: this.series }, () => new Array<number>())
    for (let bucket = last - this.buckets + 1; bucket <= last; bucket++) {
      const slot = bucket % this.buckets
      times.push((bucket * this.width) / 1_000)
      for (let series = 0; series < this.series; series++) {
        values[series].push(this.slots[slot] === bucket ? this.counts[slot * this.series + series] : 0)
      }
    }
    return { times, values }
  }
  get bytes(): number {
    return this.counts.byteLength + this.slots.byteLength
  }
}

export interface Timeline {
  /** Bucket start times, epoch seconds. */
  readonly times: ReadonlyArray<number>
  readonly series: Readonly<Record<string, ReadonlyArray<number>>>
}

/** Token-endpoint calls of one metrics label on one UTC day: what counts against WeChat's 2,000 a day. */
interface DayCount {
  day: number
  calls: number
}

/** What the console reads: this replica's rings, or the group's shared history. */
export interface View {
  readonly group: (now: number) => Timeline
  /** `undefined` for a label no credential has been counted under. */
  readonly owner: (label: string, now: number) => Timeline | undefined
  readonly owners: () => ReadonlyArray<string>
  /** Classic token-endpoint calls of `label` today (UTC, the day the engine's force-refresh budget counts in). */
  readonly callsToday: (label: string, now: number) => number
  /** Proxy and gateway counters since counting began, by name. */
  readonly traffic: () => Readonly<Record<string, number>>
}

export interface History extends View {
  /** Adds the counters' growth since the last sample to the buckets of now. */
  readonly sample: Effect.Effect<void>
  /** What the rings hold in typed arrays, bytes. */
  readonly bytes: () => number
  /** The growth sampled since the last drain (kept only when `share` was asked for), then forgets it. */
  readonly drain: () => Snapshot
  /** Gives back a drained snapshot that could not be shared, to go with the next one. */
  readonly undrain: (snapshot: Snapshot, now: number) => void
}

/** Counts per bucket number (time / bucket width), one per series. */
export type Buckets = Record<string, Array<number>>

/**
 * The same history, sparse: only buckets with counts. It is what replicas
 * sharing a store add their growth to (the group's history) and what each
 * replica gathers between two shares. Bounded like the rings: buckets older
 * than a day are dropped, owners beyond `MAX_OWNER_RINGS` are not kept.
 */
export interface Snapshot {
  /** One-minute buckets of `GROUP_SERIES`. */
  readonly group: Buckets
  /** Ten-minute buckets of `OWNER_SERIES`, by metrics label. */
  readonly owners: Record<string, Buckets>
  /** Classic calls by label: `[UTC day, calls]`. */
  readonly days: Record<string, [number, number]>
  readonly traffic: Record<string, number>
}

export const emptySnapshot = (): Snapshot => ({ group: {}, owners: {}, days: {}, traffic: {} })

const GROUP = { width: MINUTE, buckets: 1_440, series: 6 } as const
const OWNER = { width: 10 * MINUTE, buckets: 144, series: 2 } as const

const bump = (buckets: Buckets, bucket: number, series: number, seriesCount: number, amount: number) => {
  const counts = buckets[bucket] ??= new Array<number>(seriesCount).fill(0)
  counts[series] += amount
}

// `from`'s buckets still within a day of `now` added into `into`.
const addBuckets = (into: Buckets, from: Buckets, shape: typeof GROUP | typeof OWNER, now: number) => {
  const oldest = Math.floor(now / shape.width) - shape.buckets + 1
  for (const [bucket, counts] of Object.entries(from)) {
    if (Number(bucket) < oldest) continue
    counts.forEach((count, series) => bump(into, Number(bucket), series, shape.series, count))
  }
}

/** `a` and `b` added, without what is older than a day at `now`. */
export const merge = (a: Snapshot, b: Snapshot, now: number): Snapshot => {
  const merged = emptySnapshot()
  const today = Math.floor(now / DAY)
  for (const part of [a, b]) {
    addBuckets(merged.group, part.group, GROUP, now)
    for (const [label, buckets] of Object.entries(part.owners)) {
      const into = merged.owners[label] ?? (Object.keys(merged.owners).length < MAX_OWNER_RINGS ? {} : undefined)
      if (into === undefined) continue
      addBuckets(into, buckets, OWNER, now)
      if (Object.keys(into).length > 0) merged.owners[label] = into
    }
    for (const [label, [day, calls]] of Object.entries(part.days)) {
      if (day === today) merged.days[label] = [day, (merged.days[label]?.[1] ?? 0) + calls]
    }
    for (const [name, count] of Object.entries(part.traffic)) merged.traffic[name] = (merged.traffic[name] ?? 0) + count
  }
  return merged
}

const ringOf = (buckets: Buckets, shape: typeof GROUP | typeof OWNER): Ring => {
  const ring = new Ring(shape.width, shape.buckets, shape.series)
  for (const [bucket, counts] of Object.entries(buckets)) {
    counts.forEach((count, series) => ring.add(Number(bucket) * shape.width, series, count))
  }
  return ring
}

const timeline = (ring: Ring, names: ReadonlyArray<string>, now: number): Timeline => {
  const { times, values } = ring.read(now)
  return { times, series: Object.fromEntries(names.map((name, index) => [name, values[index]])) }
}

const callsOn = (days: ReadonlyMap<string, DayCount>, label: string, now: number) => {
  const today = days.get(label)
  return today !== undefined && today.day === Math.floor(now / DAY) ? today.calls : 0
}

// What the console reads of rings and day counts, one replica's or the group's.
const viewOf = (
  group: Ring,
  owners: ReadonlyMap<string, Ring>,
  days: ReadonlyMap<string, DayCount>,
  traffic: () => Readonly<Record<string, number>>
): View => ({
  group: (now) => timeline(group, GROUP_SERIES, now),
  owner: (label, now) => {
    const ring = owners.get(label)
    return ring === undefined ? undefined : timeline(ring, OWNER_SERIES, now)
  },
  owners: () => Array.from(owners.keys()).sort(),
  callsToday: (label, now) => callsOn(days, label, now),
  traffic
})

/** The group's history as the console reads it. */
export const view = (snapshot: Snapshot): View => {
  const group = ringOf(snapshot.group, GROUP)
  const owners = new Map(Object.entries(snapshot.owners).map(([label, buckets]) => [label, ringOf(buckets, OWNER)]))
  const days = new Map(Object.entries(snapshot.days).map(([label, [day, calls]]) => [label, { day, calls }]))
  return viewOf(group, owners, days, () => ({ ...snapshot.traffic }))
}

const countOf = (pair: MetricPair.MetricPair.Untyped): number | undefined => {
  const state: unknown = pair.metricState
  if (MetricState.isCounterState(state)) return Number(state.count)
  if (MetricState.isHistogramState(state)) return state.count
  return undefined
}

const tagOf = (pair: MetricPair.MetricPair.Untyped, key: string): string | undefined =>
  pair.metricKey.tags.find((tag) => tag.key === key)?.value

// The counters sampled, by the series they feed.
const ISSUED = "wechat_token_refreshes_total"
const FAILED = "wechat_token_failures_total"
const FETCHES = "wechat_upstream_latency_seconds"
const PROXY: Readonly<Record<string, typeof GROUP_SERIES[number]>> = {
  wechat_proxy_requests_total: "proxyCalls",
  wechat_proxy_replays_total: "proxyReplays",
  wechat_proxy_refusals_total: "proxyRefusals"
}
// Traffic counters shown as totals: the proxy's, and the gateway's when the server has one.
const isTraffic = (name: string) => name.startsWith("wechat_proxy_") || name.startsWith("wechat_gateway_")

/** The rings of this replica; with `share`, also the growth gathered for the group between two drains. */
export const make = (options: { readonly share?: boolean } = {}): Effect.Effect<History> =>
  Effect.sync(() => {
    const group = new Ring(GROUP.width, GROUP.buckets, GROUP.series)
    const owners = new Map<string, Ring>()
    const days = new Map<string, DayCount>()
    // The last count seen of each series (name and tags), to add only its growth.
    const seen = new Map<string, number>()
    const traffic = new Map<string, number>()
    let pending = emptySnapshot()

    const ownerRing = (label: string): Ring | undefined => {
      const known = owners.get(label)
      if (known !== undefined || owners.size >= MAX_OWNER_RINGS) return known
      const ring = new Ring(OWNER.width, OWNER.buckets, OWNER.series)
      owners.set(label, ring)
      return ring
    }

    const addGroup = (now: number, series: typeof GROUP_SERIES[number], amount: number) => {
      group.add(now, GROUP_SERIES.indexOf(series), amount)
      if (options.share) {
        bump(pending.group, Math.floor(now / GROUP.width), GROUP_SERIES.indexOf(series), GROUP.series, amount)
      }
    }

    const addOwner = (label: string, now: number, series: typeof OWNER_SERIES[number], amount: number) => {
      ownerRing(label)?.add(now, OWNER_SERIES.indexOf(series), amount)
      if (!options.share) {
        return
      }
      const buckets = pending.owners[label] ??= {}
      bump(buckets, Math.floor(now / OWNER.width), OWNER_SERIES.indexOf(series), OWNER.series, amount)
    }

    const addCalls = (label: string, now: number, amount: number) => {
      const day = Math.floor(now / DAY)
      const today = days.get(label)
      if (today === undefined || today.day !== day) {
        days.set(label, { day, calls: amount })
      } else today.calls += amount
      if (!options.share) {
        return
      }
      const held = pending.days[label]
      pending.days[label] = held !== undefined && held[0] === day ? [day, held[1] + amount] : [day, amount]
    }

    const record = (pair: MetricPair.MetricPair.Untyped, now: number) => {
      const { name } = pair.metricKey
      const issued = name === ISSUED
      const relevant = issued || name === FAILED || name === FETCHES || PROXY[name] !== undefined || isTraffic(name)
      if (!relevant) return
      const count = countOf(pair)
      if (count === undefined) return
      const id = `${name}${pair.metricKey.tags.map((tag) => `\u0000${tag.key}=${tag.value}`).join("")}`
      // A counter only grows; a histogram of the same name with other
      // boundaries would be another key. Anything smaller is a restart of the
      // registry (tests): counted from zero.
      const before = seen.get(id) ?? 0
      const growth = count >= before ? count - before : count
      seen.set(id, count)
      if (isTraffic(name)) {
        traffic.set(name, (traffic.get(name) ?? 0) + growth)
        if (options.share && growth > 0) pending.traffic[name] = (pending.traffic[name] ?? 0) + growth
      }
      if (growth === 0) return
      if (name === FETCHES) return addGroup(now, "fetches", growth)
      const proxied = PROXY[name]
      if (proxied !== undefined) return addGroup(now, proxied, growth)
      // The other proxy and gateway counters are totals only, not issues or failures.
      if (isTraffic(name)) return
      addGroup(now, issued ? "issued" : "failures", growth)
      const label = tagOf(pair, "app")
      if (label === undefined) return
      addOwner(label, now, issued ? "issued" : "failures", growth)
      if (tagOf(pair, "kind") === "access_token") addCalls(label, now, growth)
    }

    const history: History = {
      sample: Effect.flatMap(Effect.all([Metric.snapshot, Clock.currentTimeMillis]), ([pairs, now]) =>
        Effect.sync(() => {
          for (const pair of pairs) {
            record(pair, now)
          }
        })),
      ...viewOf(group, owners, days, () => Object.fromEntries(traffic)),
      bytes: () => {
        let bytes = group.bytes
        for (const ring of owners.values()) bytes += ring.bytes
        return bytes
      },
      drain: () => {
        const drained = pending
        pending = emptySnapshot()
        return drained
      },
      undrain: (snapshot, now) => {
        pending = merge(snapshot, pending, now)
      }
    }
    return history
  })
