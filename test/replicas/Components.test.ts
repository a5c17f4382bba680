/**
 * Three replica processes of the server on one Redis, serving one
 * third-party platform: WeChat pushes tickets to one of them, the others
 * read them from the store, and the group fetches one component token per
 * refresh cycle (the lease), each replica handing out tokens WeChat accepts.
 *
 * Child processes cannot share a `TestClock`: the emulator issues 30 s
 * tokens and the replicas refresh 10 s early, so a cycle lasts 20–25 s
 * plus the time a refresh takes (the lease, Redis, the fetch), which a
 * loaded machine stretches by seconds.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { AES_KEY, COMPONENT, COMPONENT_SECRET, MESSAGE_TOKEN, registration } from "../support/componentStack.js"
import * as RedisServer from "../support/redisServer.js"
import { CLIENT_KEY, eventually, startReplicas } from "../support/replicas.js"

const REPLICAS = 3
const CYCLES = 2
const LONGEST_CYCLE = 25_000
const SHORTEST_CYCLE = 20_000
// Room for CYCLES of the longest cycle after the first token, each a few seconds late: watching exactly
// CYCLES × 25 s missed the second refresh whenever the jitter drew near its maximum on a busy machine.
const WATCH_MILLIS = (CYCLES + 0.5) * LONGEST_CYCLE

const componentToken = (url: string) =>
  Effect.promise(() =>
    fetch(`${url}/v1/components/${COMPONENT}/access-token`, { headers: { authorization: `Bearer ${CLIENT_KEY}` } })
      .then(async (response) => ({
        status: response.status,
        body: (await response.json()) as { access_token?: string }
      }))
      .catch(() => ({ status: 0, body: {} as { access_token?: string } }))
  )

describe("replicas on one Redis: a third-party platform", () => {
  it.scopedLive(
    `${CYCLES} refresh cycles: one component token fetch per cycle for the group, tickets shared`,
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const wechat = yield* Emulator.serve({ components: [registration], tokenLifetime: Duration.seconds(30) })
        const controls = wechat.emulator.component
        const replicas = yield* startReplicas(REPLICAS, () => ({
          WECHAT_COMPONENTS: `${COMPONENT}:${COMPONENT_SECRET}:${MESSAGE_TOKEN}:${AES_KEY}`,
          WECHAT_API_BASE_URL: wechat.url,
          TOKEN_STORE: redis.url,
          CLIENT_KEYS: CLIENT_KEY,
          REFRESH_MARGIN_SECONDS: "10",
          LOG_LEVEL: "info"
        }))
        // WeChat knows one authorization-event URL: replica 0's.
        yield* controls.setPushUrl(COMPONENT, `${replicas[0]!.url}/wechat/components/${COMPONENT}/events`)
        yield* controls.pushTicket(COMPONENT)
        // Every replica serves the component token once the ticket is in the store.
        yield* eventually(
          Effect.map(
            Effect.forEach(replicas, (replica) => componentToken(replica.url)),
            (answers) => answers.every((answer) => answer.status === 200)
          ),
          "every replica serves the component token",
          Duration.seconds(60)
        )
        yield* controls.resetStats
        const start = Date.now()
        const dead: Array<string> = []
        // Every replica is asked once a second for the watch; every token is checked at once.
        while (Date.now() - start < WATCH_MILLIS) {
          for (const replica of replicas) {
            const answer = yield* componentToken(replica.url)
            const token = answer.body.access_token
            if (answer.status !== 200 || token === undefined) dead.push(`replica ${replica.index}: ${answer.status}`)
            else if (!(yield* controls.isValidComponentToken(token, COMPONENT))) {
              dead.push(`replica ${replica.index}: dead`)
            }
          }
          yield* Effect.sleep(Duration.seconds(1))
        }
        const stats = yield* controls.stats(COMPONENT)
        expect(dead).toEqual([])
        // Cycles of 20–25 s in 62.5 s: at least two fetches for the whole group and at most one per
        // shortest cycle, never one per replica.
        expect(stats.componentTokensIssued).toBeGreaterThanOrEqual(CYCLES)
        expect(stats.componentTokensIssued).toBeLessThanOrEqual(Math.ceil(WATCH_MILLIS / SHORTEST_CYCLE))
        expect(stats.componentTokenCalls).toBe(stats.componentTokensIssued)
      }),
    { timeout: 300_000 }
  )
})
