/**
 * Two `serve` processes on one real Redis, each with an ops key: whichever
 * replica an operator signs in to, its console lists both replicas alive and
 * plots the group's history.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as RedisServer from "../../support/redisServer.js"
import { replicaEnv, startReplicas, upstreams } from "../../support/replicas.js"
import { call } from "../../support/serverStack.js"
import { OPS_KEY, signIn } from "./support.js"

describe("Console over replica processes", () => {
  it.live("each replica's console shows both replicas alive and the group's history", () =>
    Effect.gen(function*() {
      const redis = yield* RedisServer.make
      const upstream = yield* upstreams(2)
      const replicas = yield* startReplicas(2, (index) => ({
        ...replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "classic" }),
        OPS_KEYS: OPS_KEY
      }))
      const sessions = yield* Effect.forEach(replicas, (replica) => signIn(replica.url))
      // A replica shares its growth once a minute and when its plots are read: read once on each first.
      for (const [index, replica] of replicas.entries()) {
        yield* call(`${replica.url}/console/api/timeline`, { headers: { cookie: sessions[index]!.cookie } })
      }
      for (const [index, replica] of replicas.entries()) {
        const { cookie } = sessions[index]!
        const answer = yield* call(`${replica.url}/console/api/replicas`, { headers: { cookie } })
        expect(answer.json.scope).toBe("group")
        const listed: ReadonlyArray<{ id: string; alive: boolean; self: boolean }> = answer.json.replicas
        expect(listed.map((entry) => entry.alive)).toEqual([true, true])
        expect(listed.filter((entry) => entry.self).map((entry) => entry.id.split(":")[1])).toEqual([
          String(replica.pid)
        ])
        const timeline = yield* call(`${replica.url}/console/api/timeline`, { headers: { cookie } })
        expect(timeline.json.scope).toBe("group")
        const fetches: ReadonlyArray<number> = timeline.json.timeline.series.fetches
        // The one start-up fetch of the app, whichever replica made it, is in both replicas' plots.
        expect(fetches.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
      }
    }).pipe(Effect.scoped), 180_000)
})
