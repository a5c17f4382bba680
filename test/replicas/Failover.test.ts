/**
 * Three central-server replicas on a Redis that fails over, as companies run
 * it: behind Sentinel, or a Redis Cluster. The master serving the tokens is
 * killed (SIGKILL) under client load; held tokens keep being served, writes
 * wait for the promoted replica, and the failover costs no extra upstream
 * fetch. The figures (answers served and failed, extra fetches, seconds until
 * writes resumed) are logged for the record.
 *
 * These tests start child processes and wait on real time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Option } from "effect"
import * as AppId from "../../src/AppId.js"
import { TokenRecord } from "../../src/Token.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import { APP } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import * as ReplicaStack from "../support/replicas.js"

const REPLICAS = 3

const storeAt = (url: string) => Effect.map(Layer.build(TokenStoreRedis.layer(url)), Context.get(TokenStore.TokenStore))

const probeRecord = (appId: AppId.AppId, generation: number) =>
  new TokenRecord({
    appId,
    kind: "access_token",
    value: `probe-${generation}`,
    mode: "stable",
    fetchedAt: 1_750_000_000_000,
    expiresAt: 1_750_007_200_000,
    refreshAt: 1_750_006_900_000,
    generation
  })

interface Figures {
  readonly served: number
  readonly failed: number
  readonly extraFetches: number
  readonly writesResumedSeconds: number
}

/**
 * Replicas on `redisUrl` answer under load while `kill` takes the master
 * away. `probe` is an owner whose keys the killed master served: its write,
 * started right after the kill, returns once the new master took it.
 */
const failoverUnderLoad = (
  redisUrl: string,
  probe: AppId.AppId,
  kill: Effect.Effect<void>,
  coldCallers = REPLICAS
) =>
  Effect.gen(function*() {
    const upstream = yield* ReplicaStack.upstreams(REPLICAS)
    const replicas = yield* ReplicaStack.startReplicas(
      REPLICAS,
      (index) => ReplicaStack.replicaEnv({ upstream: upstream.urlOf(index), redisUrl, mode: "stable" })
    )
    // Cold callers spread over every replica: one fetch for all of them (single-flight across replicas).
    const cold = yield* Effect.forEach(
      Array.from({ length: coldCallers }, (_, index) => replicas[index % REPLICAS]!),
      ReplicaStack.getToken,
      { concurrency: "unbounded" }
    )
    expect(cold.filter((answer) => answer.status !== 200)).toEqual([])
    expect(new Set(cold.map((answer) => answer.token)).size).toBe(1)
    const fetchesBefore = (yield* upstream.tokenCalls).length
    expect(fetchesBefore).toBe(1)
    const warm = yield* Effect.forEach(replicas, ReplicaStack.getToken)
    const store = yield* storeAt(redisUrl)
    yield* store.set(probeRecord(probe, 1))

    const answers: Array<ReplicaStack.TokenAnswer> = []
    const load = yield* Effect.fork(
      Effect.forEach(replicas, (replica) =>
        ReplicaStack.getToken(replica).pipe(
          Effect.tap((answer) => Effect.sync(() => answers.push(answer))),
          Effect.zipRight(Effect.sleep(Duration.millis(10))),
          Effect.forever
        ), { concurrency: "unbounded", discard: true })
    )
    yield* Effect.sleep(Duration.millis(500))

    const killedAt = Date.now()
    yield* kill
    yield* store.set(probeRecord(probe, 2))
    const resumedAt = Date.now()
    // Every replica finds the new master by itself.
    yield* ReplicaStack.eventually(
      Effect.map(Effect.forEach(replicas, ReplicaStack.readiness), (all) =>
        all.every((ready) => ready.storeHealthy === true)),
      "every replica's store is healthy again",
      Duration.seconds(30)
    )
    yield* Effect.sleep(Duration.millis(500))
    yield* Fiber.interrupt(load)

    const during = answers.filter((answer) =>
      answer.at >= killedAt && answer.at <= resumedAt
    )
    const figures: Figures = {
      served: during.filter((answer) => answer.status === 200).length,
      failed: answers.filter((answer) => answer.status !== 200).length,
      extraFetches: (yield* upstream.tokenCalls).length - fetchesBefore,
      writesResumedSeconds: (resumedAt - killedAt) / 1_000
    }
    // Still one token everywhere, the one held before the failover.
    const after = yield* Effect.forEach(replicas, ReplicaStack.getToken)
    expect(after.map((answer) => answer.token)).toEqual(warm.map((answer) => answer.token))
    return figures
  })

const report = (topology: string, figures: Figures) =>
  Effect.log(
    `${topology} failover: ${figures.served} answers served and ${figures.failed} failed during it, ` +
      `${figures.extraFetches} extra upstream fetches, writes resumed after ${
        figures.writesResumedSeconds.toFixed(1)
      } s`
  )

describe("failover under load", () => {
  it.scopedLive(
    "Sentinel: the master is killed, the replica promoted; held tokens never fail",
    () =>
      Effect.gen(function*() {
        const topology = yield* RedisServer.sentinelTopology
        const figures = yield* failoverUnderLoad(topology.url, AppId.make("wx00000000000000f1"), topology.master.kill)
        expect(yield* topology.masterPort).toBe(topology.replica.port)
        yield* report("Sentinel", figures)
        expect(figures.failed).toBe(0)
        expect(figures.served).toBeGreaterThan(0)
        expect(figures.extraFetches).toBeLessThanOrEqual(1)
      }),
    { timeout: 90_000 }
  )

  it.scopedLive(
    "Cluster: 1,000 credentials over every slot; the master of the app's slot is killed",
    () =>
      Effect.gen(function*() {
        const topology = yield* RedisServer.clusterTopology
        const store = yield* storeAt(topology.url)
        // 1,000 owners hash to slots all over the cluster; each owner's keys share one.
        const owners = Array.from(
          { length: 1_000 },
          (_, index) => AppId.make(`wx${index.toString(16).padStart(16, "0")}`)
        )
        yield* Effect.forEach(owners, (owner) => store.set(probeRecord(owner, 1)), { concurrency: 50, discard: true })
        expect((yield* store.list("access_token")).length).toBe(1_000)
        // Re-validation's batch read: a cluster refuses one MGET across slots,
        // so each key is read on its own master, answered in the keys' order.
        const absent = AppId.make("wx00000000000fffff")
        const batch = [owners[999]!, absent, ...owners.slice(0, 999)].map((appId) => ({
          appId,
          kind: "access_token" as const
        }))
        const many = yield* store.getMany!(batch)
        expect(many.map((found) => Option.map(found, (record) => record.appId))).toEqual(
          batch.map(({ appId }) => appId === absent ? Option.none() : Option.some(appId))
        )
        const perMaster = yield* Effect.forEach(
          topology.nodes.slice(0, 3),
          (node) => RedisServer.cli(["-p", String(node.port), "DBSIZE"])
        )
        for (const size of perMaster) expect(Number(size.trim())).toBeGreaterThan(100)

        const appKey = `wechat-token:{${APP}}:access_token`
        const master = yield* topology.masterOf(appKey)
        // A probe owner on the same master, so its write waits for the same promotion.
        let probe = owners[0]!
        for (const owner of owners) {
          probe = owner
          if ((yield* topology.masterOf(`wechat-token:{${owner}}:access_token`)) === master) break
        }
        const figures = yield* failoverUnderLoad(topology.url, probe, master.kill, 500)
        expect(yield* topology.masterOf(appKey)).not.toBe(master)
        yield* report("Cluster", figures)
        expect(figures.failed).toBe(0)
        expect(figures.served).toBeGreaterThan(0)
        expect(figures.extraFetches).toBeLessThanOrEqual(1)
      }),
    { timeout: 120_000 }
  )
})
