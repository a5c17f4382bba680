/**
 * Three replica processes of the server on one Redis, serving one WeCom
 * suite: WeCom pushes to replica 0's command URL only, the others read the
 * suite ticket and the permanent code from the store. A replica started
 * afterwards serves the corp from the store alone (no call to WeCom), and
 * a `cancel_auth` pushed to replica 0 retires the corp on all of them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { SUITE, SUITE_CORP as CORP, suiteRegistration } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import { eventually, getJson, type Replica, spawnReplica, startReplicas, suiteReplicaEnv } from "../support/replicas.js"

const corpToken = (replica: Replica) => getJson(`${replica.url}/v1/wecom-suites/${SUITE}/corps/${CORP}/access-token`)

const everyReplica = (replicas: ReadonlyArray<Replica>, status: number) =>
  Effect.map(
    Effect.forEach(replicas, corpToken, { concurrency: "unbounded" }),
    (answers) => answers.every((answer) => answer.status === status)
  )

describe("replicas on one Redis: a WeCom suite", () => {
  it.scopedLive(
    "pushes to one replica serve the corp on all; a restart asks WeCom for nothing; cancel_auth → 404 on every replica",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const wecom = yield* Emulator.serve({ suites: [suiteRegistration] })
        const controls = wecom.emulator.wecomSuite
        const env = suiteReplicaEnv(wecom.url, redis.url)
        const replicas = yield* startReplicas(3, () => env)
        yield* controls.setCommandUrl(SUITE, `${replicas[0]!.url}/wecom/suites/${SUITE}/events`)
        yield* controls.pushTicket(SUITE)
        yield* controls.install(SUITE, CORP, 1000002)
        yield* eventually(everyReplica(replicas, 200), "every replica serves the corp", Duration.seconds(120))
        for (const replica of replicas) {
          const token = (yield* corpToken(replica)).body["access_token"] as string
          expect(yield* wecom.emulator.wecom.isValidToken(token)).toBe(true)
        }
        const before = yield* controls.stats(SUITE)
        // The lease: one exchange, one suite token and one corp token for the group, not one per replica.
        expect(before.permanentCodeCalls).toBe(1)
        expect(before.suiteTokensIssued).toBe(1)
        expect(before.corpTokenCalls).toBe(1)

        // A fourth process, started on the same Redis: everything it serves comes from the store.
        yield* controls.resetStats
        const restarted = yield* spawnReplica(3, env)
        yield* eventually(
          everyReplica([restarted], 200),
          "the restarted replica serves the corp",
          Duration.seconds(120)
        )
        const after = yield* controls.stats(SUITE)
        expect(after.suiteTokenCalls).toBe(0)
        expect(after.corpTokenCalls).toBe(0)
        expect(after.permanentCodeCalls).toBe(0)

        const corpsOf = (replica: Replica) => getJson(`${replica.url}/v1/wecom-suites/${SUITE}/corps`)
        const listed = yield* corpsOf(restarted)
        expect(listed.status).toBe(200)
        expect(JSON.stringify(listed.body)).toContain(CORP)

        // The corp uninstalls; WeCom tells replica 0 only.
        const all = [...replicas, restarted]
        yield* controls.revoke(SUITE, CORP)
        yield* eventually(
          everyReplica(all, 404),
          "every replica answers 404 for the revoked corp",
          Duration.seconds(60)
        )
        for (const replica of all) {
          const corps = yield* corpsOf(replica)
          expect(corps.status).toBe(200)
          expect(JSON.stringify(corps.body)).not.toContain(CORP)
        }
      }),
    { timeout: 300_000 }
  )
})
