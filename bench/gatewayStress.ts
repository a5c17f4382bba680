/**
 * The gateway under a real-token kill: 3 replicas of the server as real
 * processes on one redis-server, 200 SDK-style callers (each an SDK instance
 * that took its gateway token from one replica at start-up) calling WeChat
 * through the gateway at once, just after the emulator killed every real
 * token of the app. Counted: the answers that were not WeChat's success
 * (goal 0), and the refreshes WeChat saw (goal 1: the replicas share the
 * store, and compare-and-refresh turns every 40001 into one fetch).
 *
 * Each call goes on a connection of its own, as separate SDK processes
 * would: a pooled keep-alive connection that the server closes as idle just
 * as this loaded process reuses it is a client-side reset that says nothing
 * about the gateway.
 */
import { Duration, Effect } from "effect"
import { request } from "node:http"
import * as RedisServer from "../test/support/redisServer.js"
import { APP, CLIENT_KEY, type Replica, replicaEnv, startReplicas, upstreams } from "../test/support/replicas.js"
import type { Figure } from "./Figure.js"

const REPLICAS = 3

interface Plan {
  readonly callers: number
  readonly reproduce: string
}

const FULL: Plan = { callers: 200, reproduce: "npm run bench -- gateway" }
// A third of the callers: the same kill, over the same three processes, in less time on a loaded machine.
const SMOKE: Plan = { callers: 60, reproduce: "npm run bench:smoke -- gateway" }

/** One call: its status and body, or why there was none. */
const exchange = (url: string, body?: string) =>
  Effect.async<{ readonly status: number; readonly text: string }>((resume) => {
    const call = request(url, {
      method: body === undefined ? "GET" : "POST",
      agent: false,
      headers: body === undefined ? {} : { "content-type": "application/json" }
    }, (answer) => {
      const chunks: Array<Buffer> = []
      answer.on("data", (chunk: Buffer) => chunks.push(chunk))
      answer.on(
        "end",
        () => resume(Effect.succeed({ status: answer.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }))
      )
      answer.on("error", (error) => resume(Effect.succeed({ status: 0, text: error.message })))
    })
    call.on(
      "error",
      (error: NodeJS.ErrnoException) => resume(Effect.succeed({ status: 0, text: error.code ?? error.message }))
    )
    call.end(body)
    return Effect.sync(() => call.destroy())
  })

const gatewayToken = (replica: Replica) =>
  Effect.flatMap(
    exchange(`${replica.url}/cgi-bin/token?grant_type=client_credential&appid=${APP}&secret=${CLIENT_KEY}`),
    (answer) => {
      const token = (JSON.parse(answer.text) as { readonly access_token?: string }).access_token
      return token === undefined ? Effect.dieMessage(`no gateway token: ${answer.text}`) : Effect.succeed(token)
    }
  )

const MESSAGE = JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "stress" } })

const sendMessage = (replica: Replica, token: string) =>
  exchange(`${replica.url}/cgi-bin/message/custom/send?access_token=${token}`, MESSAGE)

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const redis = yield* RedisServer.make
    const upstream = yield* upstreams(REPLICAS)
    const replicas = yield* startReplicas(
      REPLICAS,
      // Counted, not timed: 200 calls queue in lines of 32 per app on a loaded machine, and the upstream
      // deadline must not turn a wait into an error that says nothing about the gateway.
      (index) =>
        replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "stable", upstreamTimeoutSeconds: 60 })
    )
    const { emulator } = upstream
    const callers = yield* Effect.forEach(
      Array.from({ length: plan.callers }, (_, index) => replicas[index % REPLICAS]!),
      (replica) => Effect.map(gatewayToken(replica), (token) => ({ replica, token })),
      { concurrency: 20 }
    )
    // Warm: every replica holds the current token.
    yield* Effect.forEach(replicas, (replica) => sendMessage(replica, callers[0]!.token), { discard: true })
    const issued = (yield* emulator.appStats(APP)).tokensIssued
    // Another process refreshed behind everyone's back: every real token of the app is dead now.
    yield* emulator.killTokens(APP)
    const [elapsed, answers] = yield* Effect.timed(Effect.forEach(
      callers,
      ({ replica, token }) => sendMessage(replica, token),
      { concurrency: "unbounded" }
    ))
    const refreshes = (yield* emulator.appStats(APP)).tokensIssued - issued
    const failed = answers.filter((answer) =>
      answer.status !== 200 || answer.text !== "{\"errcode\":0,\"errmsg\":\"ok\"}"
    )
    if (failed.length > 0) {
      yield* Effect.logWarning(
        `${failed.length} callers saw an error, e.g. ${failed[0]!.status} ${failed[0]!.text.slice(0, 200)}`
      )
    }
    const who = `${plan.callers} concurrent SDK-style callers over ${REPLICAS} replica processes`
    return [
      {
        scenario: "gateway",
        name: `${who}, real token killed: callers that saw an error`,
        value: failed.length,
        unit: "callers",
        goal: "= 0",
        met: failed.length === 0,
        reproduce: plan.reproduce
      },
      {
        scenario: "gateway",
        name: "refreshes WeChat saw for the kill",
        value: refreshes,
        unit: "fetches",
        goal: "= 1",
        met: refreshes === 1,
        reproduce: plan.reproduce
      },
      {
        scenario: "gateway",
        name: "the burst, from the first call to the last answer",
        value: Duration.toMillis(elapsed),
        unit: "ms",
        reproduce: plan.reproduce
      }
    ]
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
