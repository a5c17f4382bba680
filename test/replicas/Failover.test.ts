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
import { Context, Duration, Effect, Fiber, Layer } from "effect"
import * as AppId from "../../src/AppId.js"
import { TokenRecord } from "../../src/Token.js"
import * as TokenStore from "../../src/TokenStore.js"
import * as TokenStoreRedis from "../../src/TokenStoreRedis.js"
import * as RedisServer from "../support/redisServer.js"
import {
  eventually,
  getToken,
  readiness,
  replicaEnv,
  startReplicas,
  type TokenAnswer,
  upstreams
} from "../support/replicas.js"

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
const failoverUnderLoad = (redisUrl: string, probe: AppId.AppId, kill: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const upstream = yield* upstreams(REPLICAS)
    const replicas = yield* startReplicas(
      REPLICAS,
      (index) => replicaEnv({ upstream: upstream.urlOf(index), redisUrl, mode: "stable" })
    )
    const warm = yield* Effect.forEach(replicas, getToken)
    expect(warm.map((answer) => answer.status)).toEqual([200, 200, 200])
    expect(new Set(warm.map((answer) => answer.token)).size).toBe(1)
    const fetchesBefore = (yield* upstream.tokenCalls).length
    const store = yield* storeAt(redisUrl)
    yield* store.set(probeRecord(probe, 1))

    const answers: Array<TokenAnswer> = []
    const load = yield* Effect.fork(
      Effect.forEach(replicas, (replica) =>
        getToken(replica).pipe(
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
    yield* eventually(
      Effect.map(Effect.forEach(replicas, readiness), (all) => all.every((ready) => ready.storeHealthy === true)),
      "every replica's store is healthy again",
      Duration.seconds(30)
    )
    yield* Effect.sleep(Duration.millis(500))
    yield* Fiber.interrupt(load)

    const during = answers.filter((answer) => answer.at >= killedAt && answer.at <= resumedAt)
    const figures: Figures = {
      served: during.filter((answer) => answer.status === 200).length,
      failed: answers.filter((answer) => answer.status !== 200).length,
      extraFetches: (yield* upstream.tokenCalls).length - fetchesBefore,
      writesResumedSeconds: (resumedAt - killedAt) / 1_000
    }
    // Still one token everywhere, the one held before the failover.
    const after = yield* Effect.forEach(replicas, getToken)
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
})
