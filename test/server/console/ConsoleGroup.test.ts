/**
 * Replicas sharing a real Redis show each other in the console: two servers
 * on one Redis list each other alive in the replicas panel and read the
 * group's history; the group's documents add each replica's growth, list
 * the leases each holds, forget a silent replica, and stay small at the
 * size of 100,000 credentials (measured with Redis's own `MEMORY USAGE`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Group from "../../../src/server/console/internal/group.js"
import * as History from "../../../src/server/console/internal/history.js"
import { StoreDocuments } from "../../../src/StoreDocuments.js"
import * as TokenStoreRedis from "../../../src/TokenStoreRedis.js"
import * as RedisServer from "../../support/redisServer.js"
import { call, serveUpstream } from "../../support/serverStack.js"
import { COMPONENT, serveConsole, signIn } from "./support.js"

const MINUTE = 60_000
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0)

const documentsAt = (url: string) =>
  Effect.map(Layer.build(Layer.orDie(TokenStoreRedis.layer(url))), Context.get(StoreDocuments))

// A replica's growth, as its history gathers it between two shares.
const growth = (issued: number, label: string): History.Snapshot => ({
  group: { [Math.floor(NOW / MINUTE)]: [issued, issued, 0, 0, 0, 0] },
  owners: { [label]: { [Math.floor(NOW / (10 * MINUTE))]: [issued, 0] } },
  days: { [label]: [Math.floor(NOW / 86_400_000), issued] },
  traffic: { wechat_proxy_requests_total: issued }
})

const sharing = (snapshot: History.Snapshot) =>
  Effect.tap(History.make({ share: true }), (history) => Effect.sync(() => history.undrain(snapshot, NOW)))

describe("Console group", () => {
  it.live("two servers on one Redis list each other alive and read the group's history", () =>
    Effect.gen(function*() {
      const redis = yield* RedisServer.make
      const upstream = yield* serveUpstream()
      const store = Layer.orDie(TokenStoreRedis.layer(redis.url))
      const one = yield* serveConsole({ upstream, store })
      const two = yield* serveConsole({ upstream, store: Layer.orDie(TokenStoreRedis.layer(redis.url)) })
      for (const server of [one, two]) {
        const { cookie } = yield* signIn(server.base)
        const answer = yield* call(`${server.base}/console/api/replicas`, { headers: { cookie } })
        expect(answer.json.scope).toBe("group")
        const replicas: ReadonlyArray<{ id: string; alive: boolean; self: boolean }> = answer.json.replicas
        expect(replicas).toHaveLength(2)
        expect(replicas.every((replica) => replica.alive)).toBe(true)
        expect(replicas.filter((replica) => replica.self)).toHaveLength(1)
        const timeline = yield* call(`${server.base}/console/api/timeline`, { headers: { cookie } })
        expect([timeline.status, timeline.json.scope]).toEqual([200, "group"])
      }
    }).pipe(Effect.scoped), 120_000)

  it.live(
    "the group's history adds every replica's growth; heartbeats carry leases and a silent replica goes",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const a = Group.make(yield* documentsAt(redis.url), "host-a:1", NOW - MINUTE)
        const b = Group.make(yield* documentsAt(redis.url), "host-b:2", NOW - MINUTE)
        yield* a.share(yield* sharing(growth(3, COMPONENT)), NOW)
        yield* b.share(yield* sharing(growth(4, COMPONENT)), NOW)
        for (const group of [a, b]) {
          const view = History.view(yield* group.history)
          expect(view.group(NOW).series["issued"]?.at(-1)).toBe(7)
          expect(view.owner(COMPONENT, NOW)?.series["issued"]?.at(-1)).toBe(7)
          expect(view.callsToday(COMPONENT, NOW)).toBe(7)
          expect(view.traffic()).toEqual({ wechat_proxy_requests_total: 7 })
        }
        // A day later the old buckets are gone from the document on the next share.
        const later = NOW + 86_400_000
        yield* a.share(yield* sharing(History.emptySnapshot()), later)
        const dayAfter = History.view(yield* b.history)
        expect(dayAfter.group(later).series["issued"]?.reduce((x, y) => x + y, 0)).toBe(0)
        expect(dayAfter.owners()).toEqual([])

        yield* a.beat(NOW, [{ owner: COMPONENT, kind: "component_access_token", until: NOW + 30_000 }])
        yield* b.beat(NOW, [])
        expect((yield* a.replicas(NOW)).map(({ alive, id, leases, self }) => ({ id, alive, self, leases }))).toEqual([
          {
            id: "host-a:1",
            alive: true,
            self: true,
            leases: [{ owner: COMPONENT, kind: "component_access_token", until: NOW + 30_000 }]
          },
          { id: "host-b:2", alive: true, self: false, leases: [] }
        ])
        yield* a.beat(NOW + Group.ALIVE_MILLIS + 1, [])
        expect((yield* a.replicas(NOW + Group.ALIVE_MILLIS + 1)).map(({ alive, id }) => [id, alive])).toEqual([
          ["host-a:1", true],
          ["host-b:2", false]
        ])
        yield* a.beat(NOW + Group.FORGET_MILLIS + 1, [])
        expect((yield* b.replicas(NOW + Group.FORGET_MILLIS + 1)).map(({ id }) => id)).toEqual(["host-a:1"])
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "the group's history at 100,000 credentials: every bucket of a day full, one owner label",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const group = Group.make(yield* documentsAt(redis.url), "host-a:1", NOW)
        // 100,000 authorizers refreshed every ~2 h: ~833 a minute, all under their platform's label.
        const full: History.Snapshot = { group: {}, owners: { [COMPONENT]: {} }, days: {}, traffic: {} }
        for (let minute = 0; minute < 1_440; minute++) {
          full.group[Math.floor(NOW / MINUTE) - minute] = [833, 833, 17, 120_000, 3_000, 250]
        }
        for (let bucket = 0; bucket < 144; bucket++) {
          full.owners[COMPONENT]![Math.floor(NOW / (10 * MINUTE)) - bucket] = [8_333, 170]
        }
        full.days[COMPONENT] = [Math.floor(NOW / 86_400_000), 0]
        yield* group.share(yield* sharing(full), NOW)
        const bytes = Number(
          (yield* RedisServer.cli([
            "-p",
            String(redis.port),
            "MEMORY",
            "USAGE",
            `wechat-token:{doc:${Group.HISTORY_DOCUMENT}}`
          ])).trim()
        )
        console.log(`console-history document in Redis at 100,000 credentials: ${bytes} bytes`)
        expect(bytes).toBeGreaterThan(0)
        expect(bytes).toBeLessThan(128 * 1_024)
      }).pipe(Effect.scoped),
    60_000
  )
})
