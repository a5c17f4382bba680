/**
 * A `create_auth` whose permanent code the store refuses, across replica
 * processes on one Redis. Replica 0 takes the push, exchanges the temporary
 * code and cannot store the permanent code (its Redis user may not write
 * it): it answers 503 and keeps retrying the write. WeCom's retries land on
 * replica 1, which must not exchange the spent code again: 503 while the
 * code is not stored. Once the store takes it, the retry answers `success`
 * on any replica, a restarted one included, and every replica serves the
 * corp; WeCom was asked for the permanent code once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { SUITE, SUITE_CORP as CORP, suiteRegistration } from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import { eventually, getJson, type Replica, spawnReplica, startReplicas, suiteReplicaEnv } from "../support/replicas.js"

const USER = "replica0"
const PASSWORD = "replica0-password-0123456789"

// Replica 0's Redis user reads everything and writes every key but those ending in `_code`: the
// permanent codes' records (`wechat-token:{suite:corp}:suite_permanent_code`), and nothing else the store writes.
// (A script's keys need reading and writing granted by one pattern, so the others are full patterns.)
const WRITES_BUT_CODES = ["~*[^e]", "~*[^d]e", "~*[^o]de", "~*[^c]ode", "~*[^_]code"]

const corpToken = (replica: Replica) => getJson(`${replica.url}/v1/wecom-suites/${SUITE}/corps/${CORP}/access-token`)

const everyReplica = (replicas: ReadonlyArray<Replica>, status: number) =>
  Effect.map(
    Effect.forEach(replicas, corpToken, { concurrency: "unbounded" }),
    (answers) => answers.every((answer) => answer.status === status)
  )

/** Sends `push` to `replica`'s command URL, as WeCom sent it elsewhere; its answer. */
const redeliver = (push: Emulator.PushRequest, replica: Replica) =>
  Effect.promise(async () => {
    const url = new URL(push.url)
    const answer = await fetch(`${replica.url}${url.pathname}${url.search}`, {
      method: "POST",
      headers: { "content-type": "text/xml" },
      body: push.body
    })
    return { status: answer.status, body: await answer.text() }
  })

describe("replicas on one Redis: a suite install whose permanent code the store refused", () => {
  it.scopedLive(
    "one exchange; WeCom's retries on another replica get 503 until the code is stored, then success anywhere",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const acl = (...rules: ReadonlyArray<string>) =>
          RedisServer.cli(["-p", String(redis.port), "ACL", "SETUSER", USER, ...rules])
        yield* acl("on", `>${PASSWORD}`, "%R~*", ...WRITES_BUT_CODES, "&*", "+@all")

        // WeCom's pushes, each attempt sent where the test says (the first to replica 0, the retries to
        // replica 1), and kept so one can be sent again.
        let routes: Array<Replica> = []
        const sent: Array<Emulator.PushRequest> = []
        const transport: Emulator.PushTransport = (push) => {
          const to = routes.shift()
          const routed = to === undefined
            ? push
            : { ...push, url: `${to.url}${new URL(push.url).pathname}${new URL(push.url).search}` }
          sent.push(routed)
          return Effect.promise(async () => {
            const answer = await fetch(routed.url, {
              method: "POST",
              headers: { "content-type": "text/xml" },
              body: routed.body
            })
            return { status: answer.status, body: await answer.text() }
          })
        }
        const wecom = yield* Emulator.serve({ suites: [suiteRegistration], pushTransport: transport })
        const controls = wecom.emulator.wecomSuite
        const env = suiteReplicaEnv(wecom.url, redis.url)
        const restricted = { ...env, TOKEN_STORE: redis.url.replace("redis://", `redis://${USER}:${PASSWORD}@`) }
        const replicas = yield* startReplicas(3, (index) => index === 0 ? restricted : env)
        const [first, second, third] = replicas as [Replica, Replica, Replica]
        yield* controls.setCommandUrl(SUITE, `${first.url}/wecom/suites/${SUITE}/events`)
        yield* Effect.orDie(controls.pushTicket(SUITE))
        yield* eventually(
          Effect.map(getJson(`${first.url}/v1/wecom-suites/${SUITE}/access-token`), (answer) => answer.status === 200),
          "replica 0 holds the suite token",
          Duration.seconds(60)
        )

        routes = [first, second, second]
        const pushed = sent.length
        yield* Effect.orDie(controls.install(SUITE, CORP, 1000002))
        const attempts = sent.slice(pushed)
        expect(attempts.map((push) => new URL(push.url).origin)).toEqual([first.url, second.url, second.url])
        const log = yield* controls.pushLog(SUITE)
        expect(log.at(-1)).toMatchObject({ infoType: "create_auth", delivered: false, attempts: 3 })
        expect((yield* controls.stats(SUITE)).permanentCodeCalls).toBe(1)
        // Not stored: no replica serves the corp, and the retry is still answered 503 elsewhere.
        expect(yield* everyReplica(replicas, 404)).toBe(true)
        expect((yield* redeliver(attempts[0]!, third)).status).toBe(503)

        // The store takes the code again: replica 0's background write lands, and every replica serves the corp.
        yield* acl("~*")
        yield* eventually(everyReplica(replicas, 200), "every replica serves the corp", Duration.seconds(60))
        for (const replica of replicas) {
          const token = (yield* corpToken(replica)).body["access_token"] as string
          expect(yield* wecom.emulator.wecom.isValidToken(token)).toBe(true)
        }
        // WeCom's retry, now on a replica started after the install, which knows it from the store alone: success,
        // nothing exchanged again; and on any other replica.
        yield* second.kill("SIGKILL")
        const restarted = yield* spawnReplica(3, env)
        expect(yield* redeliver(attempts[1]!, restarted)).toEqual({ status: 200, body: "success" })
        expect(yield* redeliver(attempts[2]!, third)).toEqual({ status: 200, body: "success" })
        expect((yield* controls.stats(SUITE)).permanentCodeCalls).toBe(1)
      }),
    { timeout: 300_000 }
  )
})
