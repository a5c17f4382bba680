/**
 * The gateway on three replicas as real processes on one redis-server: a
 * gateway token from one works on the others (they share `CLIENT_KEYS`, not
 * state), and 200 SDK-style callers through a real-token kill cost WeChat
 * one refresh. These tests start child processes and wait on real time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as RedisServer from "../support/redisServer.js"
import { APP, CLIENT_KEY, type Replica, replicaEnv, startReplicas, upstreams } from "../support/replicas.js"

const REPLICAS = 3
// Three processes compiling TypeScript as they start take most of a minute on a loaded two-core machine.
const STARTUP_TIMEOUT = 180_000

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat-shaped answers, asserted field by field
const json = (url: string, init?: RequestInit): Effect.Effect<any> =>
  Effect.promise(() => fetch(url, init).then((response) => response.json()))

const gatewayToken = (replica: Replica) =>
  Effect.map(
    json(`${replica.url}/cgi-bin/token?grant_type=client_credential&appid=${APP}&secret=${CLIENT_KEY}`),
    (answer) => {
      expect(answer).toEqual({ access_token: expect.stringMatching(/^gw1\./), expires_in: 7200 })
      return answer.access_token as string
    }
  )

const sendMessage = (replica: Replica, token: string) =>
  json(`${replica.url}/cgi-bin/message/custom/send?access_token=${token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "hello" } })
  })

// The stress run counts refreshes, not speed: 200 calls in lines of 32 per app on a loaded machine must not
// meet the upstream deadline, or a caller sees -1 for a wait that says nothing about the gateway.
const start = (upstreamTimeoutSeconds = 10) =>
  Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const upstream = yield* upstreams(REPLICAS)
    const replicas = yield* startReplicas(
      REPLICAS,
      (index) =>
        replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "stable", upstreamTimeoutSeconds })
    )
    return { replicas, emulator: upstream.emulator }
  })

describe("the gateway on replicas", () => {
  it.scopedLive(
    "3 replicas with the same CLIENT_KEYS: a gateway token from one works on the others",
    () =>
      Effect.gen(function*() {
        const { emulator, replicas } = yield* start()
        for (const issuer of replicas) {
          const token = yield* gatewayToken(issuer)
          for (const replica of replicas) {
            expect({ issuer: issuer.index, on: replica.index, answer: yield* sendMessage(replica, token) }).toEqual({
              issuer: issuer.index,
              on: replica.index,
              answer: { errcode: 0, errmsg: "ok" }
            })
          }
        }
        const calls = yield* emulator.apis.calls
        expect(calls).toHaveLength(REPLICAS * REPLICAS)
        expect(calls.every((call) => call.owner === APP && !call.token?.startsWith("gw1."))).toBe(true)
      }),
    { timeout: STARTUP_TIMEOUT }
  )

  it.scopedLive(
    "200 concurrent SDK-style callers through a real-token kill: no error, one refresh",
    () =>
      Effect.gen(function*() {
        const { emulator, replicas } = yield* start()
        // Each caller is an SDK instance: it got its own gateway token at start-up, from any replica.
        const callers = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, index) => replicas[index % REPLICAS]!),
          (replica) => Effect.map(gatewayToken(replica), (token) => ({ replica, token })),
          { concurrency: 20 }
        )
        // Warm: every replica holds the current token.
        yield* Effect.forEach(replicas, (replica) => sendMessage(replica, callers[0]!.token), { discard: true })
        const issued = (yield* emulator.appStats(APP)).tokensIssued
        yield* emulator.killTokens(APP)
        const answers = yield* Effect.forEach(
          callers,
          ({ replica, token }) => sendMessage(replica, token),
          { concurrency: "unbounded" }
        )
        expect(answers.filter((answer) => answer.errcode !== 0)).toEqual([])
        expect((yield* emulator.appStats(APP)).tokensIssued - issued).toBe(1)
      }),
    { timeout: STARTUP_TIMEOUT }
  )
})
