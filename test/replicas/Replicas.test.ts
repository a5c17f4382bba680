/**
 * Three central-server replicas as real processes on one redis-server behave
 * as one: a cold herd costs one upstream fetch, a killed lease holder is
 * replaced within the lease, and a Redis restart under load costs no request.
 *
 * These tests start child processes and wait on real time; they run one
 * after another in this file.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { Redis } from "ioredis"
import * as Http from "node:http"
import { Fault } from "../../src/testing/WeChatEmulator.js"
import { APP } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import * as ReplicaStack from "../support/replicas.js"

const REPLICAS = 3

/** A plain client to look at the lease and the subscribers. */
const inspector = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis(url)
      // It is meant to see Redis go away; a listener keeps ioredis from printing each refusal.
      client.on("error", () => {})
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

const LEASE_KEY = `wechat-token:{${APP}}:access_token:lease`

/**
 * A GET whose request has left this process by the time `sent` completes, so
 * a test can hold the upstream until every caller is waiting on a replica.
 */
const sendGet = (replica: ReplicaStack.Replica, agent: Http.Agent) =>
  Effect.gen(function*() {
    const sent = yield* Deferred.make<void>()
    const answered = yield* Deferred.make<ReplicaStack.TokenAnswer>()
    const request = Http.get(`${replica.url}/v1/apps/${APP}/access-token`, {
      agent,
      headers: { authorization: `Bearer ${ReplicaStack.CLIENT_KEY}` }
    }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => {
        let token: string | undefined
        try {
          const parsed = JSON.parse(body) as { access_token?: unknown }
          token = typeof parsed.access_token === "string" ? parsed.access_token : undefined
        } catch {
          token = undefined
        }
        Deferred.unsafeDone(answered, Effect.succeed({ status: response.statusCode ?? 0, token, at: Date.now() }))
      })
    })
    request.once("finish", () => Deferred.unsafeDone(sent, Effect.void))
    request.once("error", () => {
      Deferred.unsafeDone(sent, Effect.void)
      Deferred.unsafeDone(answered, Effect.succeed({ status: 0, token: undefined, at: Date.now() }))
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => request.destroy()))
    return { sent: Deferred.await(sent), answer: Deferred.await(answered) }
  })

type Answer = ReplicaStack.TokenAnswer & { readonly replica: number }

/** Calls `GET access-token` on each of `targets` in a loop until interrupted, keeping every answer. */
const hammer = (targets: ReadonlyArray<ReplicaStack.Replica>, answers: Array<Answer>) =>
  Effect.forEach(targets, (replica) =>
    ReplicaStack.getToken(replica).pipe(
      Effect.tap((answer) => Effect.sync(() => answers.push({ ...answer, replica: replica.index }))),
      Effect.forever
    ), { concurrency: "unbounded", discard: true })

describe("replicas on one Redis", () => {
  it.live(
    "600 concurrent GETs over 3 cold replicas: exactly 1 upstream fetch, 1 token, valid",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const upstream = yield* ReplicaStack.upstreams(REPLICAS)
        // Token calls wait at the gate until every caller is waiting on a replica.
        // The upstream timeout is long so the held call is not given up meanwhile.
        yield* upstream.closeGate
        const replicas = yield* ReplicaStack.startReplicas(REPLICAS, (index) =>
          ReplicaStack.replicaEnv({
            upstream: upstream.urlOf(index),
            redisUrl: redis.url,
            mode: "classic",
            upstreamTimeoutSeconds: 120
          }))
        // The engines start fetching at start-up: by now one holds the lease and waits upstream.
        yield* ReplicaStack.eventually(
          Effect.map(upstream.tokenCalls, (calls) => calls.length > 0),
          "the lease holder calls WeChat"
        )

        const agent = new Http.Agent({ keepAlive: true, maxSockets: Infinity })
        yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
        const gets = yield* Effect.forEach(
          Array.from({ length: 600 }, (_, i) => replicas[i % REPLICAS]!),
          (replica) => sendGet(replica, agent),
          { concurrency: "unbounded" }
        )
        yield* Effect.forEach(gets, (get) => get.sent, { concurrency: "unbounded", discard: true })
        const answering = yield* Effect.fork(Effect.forEach(gets, (get) => get.answer, { concurrency: "unbounded" }))
        const calls = yield* upstream.tokenCalls
        yield* upstream.openGate
        const answers = yield* Fiber.join(answering)

        expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200))
        const tokens = new Set(answers.map((answer) => answer.token))
        expect(tokens.size).toBe(1)
        const [token] = [...tokens]
        expect(yield* upstream.emulator.isValidToken(token!)).toBe(true)
        // A second call would mean a replica fetched without the lease; its warnings say why.
        const warnings = replicas.flatMap((replica) =>
          replica.output().split("\n").filter((line) => line.includes("\"WARN\"")).map((line) =>
            `replica ${replica.index}: ${line}`
          )
        )
        expect(calls, warnings.join("\n")).toHaveLength(1)
        const stats = (yield* upstream.emulator.stats).apps[APP]!
        expect(stats.classicCalls + stats.stableCalls).toBe(1)
        expect(stats.tokensIssued).toBe(1)
      }).pipe(Effect.scoped),
    300_000
  )

  it.live(
    "the lease holder killed (SIGKILL) mid-fetch: another replica fetches once the lease lapses",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const inspect = yield* inspector(redis.url)
        const upstream = yield* ReplicaStack.upstreams(REPLICAS)
        // The first token call hangs (far longer than the test); later ones answer at once.
        yield* upstream.emulator.injectFault({
          fault: Fault.Slow(Duration.minutes(10)),
          endpoints: ["token"],
          times: 1
        })
        // Lease = upstream timeout + 5 s: 10 s here.
        const upstreamTimeoutSeconds = 5
        const leaseMillis = upstreamTimeoutSeconds * 1000 + 5000
        const firstCall = yield* upstream.nextTokenCall
        const launched = yield* Effect.forEach(Array.from({ length: REPLICAS }, (_, index) => index), (index) =>
          ReplicaStack.launchReplica(
            index,
            ReplicaStack.replicaEnv({
              upstream: upstream.urlOf(index),
              redisUrl: redis.url,
              mode: "classic",
              upstreamTimeoutSeconds
            })
          ))

        // The engines fetch at start-up, before their HTTP servers listen: kill
        // the holder the moment its call reaches WeChat, well inside its upstream timeout.
        const holderCall = yield* Deferred.await(firstCall)
        const holder = launched[holderCall.replica]!
        const leaseOwner = yield* Effect.promise(() =>
          inspect.get(LEASE_KEY)
        )
        const leaseAskedAt = Date.now()
        const leaseLeft = yield* Effect.promise(() => inspect.pttl(LEASE_KEY))
        expect(leaseOwner).not.toBeNull()
        yield* holder.kill("SIGKILL")
        const killedAt = Date.now()
        // The lease outlives its holder: nobody else may fetch until it lapses.
        expect(yield* Effect.promise(() => inspect.get(LEASE_KEY))).toBe(leaseOwner)

        const survivors = yield* Effect.forEach(
          launched.filter((replica) => replica !== holder),
          (replica) => replica.ready
        )
        const answers: Array<Answer> = []
        const load = yield* Effect.fork(hammer(survivors, answers))
        yield* ReplicaStack.eventually(
          Effect.sync(() => answers.some((answer) => answer.status === 200)),
          "a surviving replica serves a token",
          Duration.millis(leaseMillis + 30_000)
        )
        const firstServed = answers.find((answer) => answer.status === 200)!
        // Keep the load on a little longer, so the survivors are seen serving together.
        yield* ReplicaStack.eventually(
          Effect.sync(() =>
            survivors.every((replica) =>
              answers.some((answer) => answer.replica === replica.index && answer.at > firstServed.at + 1000)
            )
          ),
          "both survivors keep serving"
        )
        yield* Fiber.interrupt(load)

        const calls = yield* upstream.tokenCalls
        const takeover = calls[1]
        const all = [...answers]
        const afterToken = all.filter((answer) => answer.at >= firstServed.at)
        const failoverMillis = takeover === undefined ? undefined : takeover.at - killedAt
        yield* Effect.logInfo("failover measured").pipe(
          Effect.annotateLogs({
            leaseMillis,
            leaseLeftAtKillMillis: leaseLeft,
            killToTakeoverFetchMillis: failoverMillis,
            killToFirstServedMillis: firstServed.at - killedAt,
            requestsAfterFirstToken: afterToken.length,
            non200BeforeFirstToken: all.length - afterToken.length
          })
        )
        expect(calls).toHaveLength(2)
        expect(takeover!.replica).not.toBe(holder.index)
        // Nobody fetched before the lease lapsed, and the takeover came soon
        // after (survivors poll the lease every 100 ms).
        expect(takeover!.at).toBeGreaterThanOrEqual(leaseAskedAt + leaseLeft - 50)
        expect(failoverMillis).toBeLessThanOrEqual(leaseLeft + 3000)
        expect(afterToken.filter((answer) => answer.status !== 200)).toEqual([])
        const tokens = new Set(all.flatMap((answer) => (answer.token === undefined ? [] : [answer.token])))
        expect(tokens.size).toBe(1)
        expect(yield* upstream.emulator.isValidToken([...tokens][0]!)).toBe(true)
      }).pipe(Effect.scoped),
    300_000
  )

  it.live(
    "Redis stopped and restarted under load: no failed request, /readyz shows the store, replicas reconnect",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const inspect = yield* inspector(redis.url)
        const upstream = yield* ReplicaStack.upstreams(REPLICAS)
        const replicas = yield* ReplicaStack.startReplicas(
          REPLICAS,
          (index) => ReplicaStack.replicaEnv({ upstream: upstream.urlOf(index), redisUrl: redis.url, mode: "classic" })
        )
        yield* Effect.forEach(replicas, (replica) =>
          ReplicaStack.eventually(
            Effect.map(ReplicaStack.getToken(replica), (answer) => answer.status === 200),
            `replica ${replica.index} serves`
          ))

        const answers: Array<Answer> = []
        const load = yield* Effect.fork(hammer(replicas, answers))
        const storeHealthyEverywhere = (healthy: boolean) =>
          Effect.map(
            Effect.forEach(replicas, ReplicaStack.readiness),
            (all) => all.every((ready) => ready.status === 200 && ready.storeHealthy === healthy)
          )

        yield* redis.stop
        const downAt = Date.now()
        // The token is valid, so every replica stays ready and says the store is down.
        yield* ReplicaStack.eventually(storeHealthyEverywhere(false), "/readyz reports the store down on every replica")
        // Keep the outage going under load for a while, measured in requests served.
        yield* ReplicaStack.eventually(
          Effect.sync(() => answers.filter((answer) => answer.at > downAt).length >= 300),
          "300 requests served while Redis is down"
        )
        yield* redis.start
        const upAt = Date.now()
        yield* ReplicaStack.eventually(storeHealthyEverywhere(true), "/readyz reports the store back on every replica")
        yield* Fiber.interrupt(load)

        const all = [...answers]
        expect(all.filter((answer) => answer.status !== 200)).toEqual([])
        const tokens = new Set(all.map((answer) => answer.token))
        expect(tokens.size).toBe(1)
        expect(yield* upstream.emulator.isValidToken([...tokens][0]!)).toBe(true)

        // Reconnected for real: every replica is subscribed again, and a
        // refresh on one reaches the others through Redis.
        yield* ReplicaStack.eventually(
          Effect.map(
            Effect.promise(() => inspect.pubsub("NUMSUB", "wechat-token:changes") as Promise<Array<string | number>>),
            (reply) => Number(reply[1]) === REPLICAS
          ),
          "every replica subscribed to wechat-token:changes again"
        )
        const stale = [...tokens][0]!
        const refreshed = yield* Effect.promise(() =>
          fetch(`${replicas[0]!.url}/v1/apps/${APP}/access-token/refresh`, {
            method: "POST",
            headers: { authorization: `Bearer ${ReplicaStack.CLIENT_KEY}`, "content-type": "application/json" },
            body: JSON.stringify({ stale_token: stale })
          }).then((response) => response.json() as Promise<{ access_token: string }>)
        )
        expect(refreshed.access_token).not.toBe(stale)
        yield* Effect.forEach(replicas, (replica) =>
          ReplicaStack.eventually(
            Effect.map(ReplicaStack.getToken(replica), (answer) => answer.token === refreshed.access_token),
            `replica ${replica.index} adopts the refreshed token`,
            Duration.seconds(5)
          ))
        const stats = (yield* upstream.emulator.stats).apps[APP]!
        expect(stats.classicCalls).toBe(2)
        yield* Effect.logInfo("Redis outage measured").pipe(
          Effect.annotateLogs({
            outageMillis: upAt - downAt,
            requestsDuringOutage: all.filter((answer) => answer.at > downAt && answer.at < upAt).length,
            requestsTotal: all.length
          })
        )
      }).pipe(Effect.scoped),
    300_000
  )
})
