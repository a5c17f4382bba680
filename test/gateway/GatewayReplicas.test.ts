/**
 * The gateway on three replicas as real processes on one redis-server: a
 * gateway token from one works on the others (they share `CLIENT_KEYS`, not
 * state). These tests start child processes and wait on real time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { request } from "node:http"
import * as RedisServer from "../support/redisServer.js"
import { APP, CLIENT_KEY, type Replica, replicaEnv, startReplicas, upstreams } from "../support/replicas.js"

const REPLICAS = 3
// Three processes compiling TypeScript as they start take most of a minute on a loaded two-core machine.
const STARTUP_TIMEOUT = 180_000

// Each call on a connection of its own: a pooled keep-alive connection the
// server closes as idle while a loaded test process is about to reuse it is
// a reset that says nothing about the gateway.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- WeChat-shaped answers, asserted field by field
const json = (url: string, init: { readonly method?: string; readonly body?: string } = {}): Effect.Effect<any> =>
  Effect.promise(() =>
    new Promise((resolve, reject) => {
      const call = request(url, {
        method: init.method ?? "GET",
        agent: false,
        headers: init.body === undefined ? {} : { "content-type": "application/json" }
      }, (answer) => {
        const chunks: Array<Buffer> = []
        answer.on("data", (chunk: Buffer) => chunks.push(chunk))
        answer.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))))
        answer.on("error", reject)
      })
      call.on("error", reject)
      call.end(init.body)
    })
  )

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
    body: JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "hello" } })
  })

const start = () =>
  Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const upstream = yield* upstreams(REPLICAS)
    const replicas = yield* startReplicas(
      REPLICAS,
      (index) => replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "stable" })
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
})
