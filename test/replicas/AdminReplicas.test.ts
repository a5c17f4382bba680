/**
 * The admin API across real processes: three `serve` replicas on one real
 * redis-server stay in step with every change whichever replica made it
 * (an app added, its secret replaced under load, a key created and revoked,
 * the app removed), a restart of all three keeps the registry, and a
 * file-store server keeps it across its restart. Neither the store (every
 * Redis value, every file), nor the logs, answers, `/metrics` or the audit
 * list ever hold a secret or a client key in clear.
 *
 * The propagation time itself is a figure of the bench (`npm run bench --
 * registry`); here each change only has to show on every replica.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  ADMIN_KEY,
  adminEnv,
  type Answer,
  call,
  ENCRYPTION_KEY,
  OPS_KEY,
  putApp,
  redisDump,
  tokenOf
} from "../support/adminReplicas.js"
import * as RedisServer from "../support/redisServer.js"
import { CLIENT_KEY, eventually, type Replica, spawnReplica, startReplicas, upstreams } from "../support/replicas.js"

const REPLICAS = 3
const ADDED = "wx00000000000000a1"
const FIRST_SECRET = "first-secret-of-the-added-app-0001"
const SECOND_SECRET = "second-secret-of-the-added-app-0002"

const all = (replicas: ReadonlyArray<Replica>, check: (replica: Replica) => Effect.Effect<boolean>) =>
  Effect.map(Effect.forEach(replicas, check, { concurrency: "unbounded" }), (results) => results.every(Boolean))

const statusIs = (status: number, answer: Effect.Effect<Answer>) => Effect.map(answer, (got) => got.status === status)

const accessToken = (answer: Answer): string => (JSON.parse(answer.text) as { access_token: string }).access_token

// Everything each replica printed, with what it answers on /metrics and the audit list.
const observed = (replicas: ReadonlyArray<Replica>) =>
  Effect.map(
    Effect.forEach(replicas, (replica) =>
      Effect.map(
        Effect.all([call(replica, "GET", "/metrics", OPS_KEY), call(replica, "GET", "/v1/admin/audit", ADMIN_KEY)]),
        ([metrics, audit]) => [replica.output(), metrics.text, audit.text].join("\n")
      )),
    (parts) => parts.join("\n")
  )

const expectNoSecret = (haystack: string, secrets: ReadonlyArray<string>, where: string) => {
  for (const secret of secrets) expect(haystack.includes(secret), `${where} holds a secret in clear`).toBe(false)
}

describe("the admin API over three replicas on one Redis", () => {
  it.live(
    "every change shows on every replica, a secret replaced under 50 clients fails none, a restart keeps the registry, nothing in clear",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        const upstream = yield* upstreams(REPLICAS)
        yield* upstream.emulator.registerApp({ appId: ADDED, secret: FIRST_SECRET })
        const env = (index: number) => adminEnv({ upstream: upstream.urlOf(index), store: redis.url })
        const [a, b, c] = (yield* startReplicas(REPLICAS, env)) as [Replica, Replica, Replica]
        const replicas = [a, b, c]
        const answers: Array<string> = []
        const keep = <E, R>(answer: Effect.Effect<Answer, E, R>) =>
          Effect.tap(answer, (got) => Effect.sync(() => answers.push(got.text)))

        // Added on A: B and C serve its token.
        expect((yield* keep(putApp(a, ADDED, FIRST_SECRET))).status).toBe(200)
        yield* eventually(all(replicas, (replica) => statusIs(200, tokenOf(replica, ADDED))), "B and C serve the app")

        // WeChat's reset kills the old secret at once; the new one is put on B while 50 clients keep asking.
        let asking = true
        const statuses: Array<number> = []
        const clients = yield* Effect.fork(Effect.forEach(
          Array.from({ length: 50 }, (_, index) => replicas[index % REPLICAS]!),
          (replica) =>
            tokenOf(replica, ADDED).pipe(
              Effect.tap((answer) => Effect.sync(() => statuses.push(answer.status))),
              Effect.repeat({ while: () => asking })
            ),
          { concurrency: "unbounded", discard: true }
        ))
        yield* eventually(Effect.sync(() => statuses.length >= 100), "the clients are asking")
        yield* upstream.emulator.registerApp({ appId: ADDED, secret: SECOND_SECRET })
        expect((yield* keep(putApp(b, ADDED, SECOND_SECRET))).status).toBe(200)
        const during = statuses.length
        yield* eventually(Effect.sync(() => statuses.length >= during + 200), "the clients keep asking")
        asking = false
        yield* Fiber.join(clients)
        expect(statuses.filter((status) => status !== 200)).toEqual([])

        // Each replica refreshes with the new secret: the old one would be refused (40125).
        for (const replica of replicas) {
          const held = accessToken(yield* tokenOf(replica, ADDED))
          const refreshed = yield* call(replica, "POST", `/v1/apps/${ADDED}/access-token/refresh`, ADMIN_KEY, {
            stale_token: held
          })
          expect(refreshed.status).toBe(401)
          const renewed = yield* keep(
            call(replica, "POST", `/v1/apps/${ADDED}/access-token/refresh`, CLIENT_KEY, {
              stale_token: held
            })
          )
          expect(renewed.status, renewed.text).toBe(200)
          expect(yield* upstream.emulator.isValidToken(accessToken(renewed))).toBe(true)
        }

        // A key created on A works on every replica.
        const created = yield* keep(call(a, "POST", "/v1/admin/keys", ADMIN_KEY, { scope: [ADDED], label: "tenant" }))
        expect(created.status).toBe(201)
        const { id, key } = JSON.parse(created.text) as { id: string; key: string }
        yield* eventually(all(replicas, (replica) => statusIs(200, tokenOf(replica, ADDED, key))), "the key works")

        // No secret, AES key or client key in Redis, the logs, the answers, /metrics or the audit list.
        const secrets = [FIRST_SECRET, SECOND_SECRET, key, ADMIN_KEY, ENCRYPTION_KEY]
        const dump = yield* redisDump(redis.url)
        expect(dump).toContain("enc1:")
        expectNoSecret(dump, secrets, "Redis")
        expectNoSecret(yield* observed(replicas), secrets, "a replica's logs, /metrics or audit")
        expectNoSecret(answers.join("\n"), [FIRST_SECRET, SECOND_SECRET, ADMIN_KEY, ENCRYPTION_KEY], "an answer")

        // All three restarted: the registry is intact.
        yield* Effect.forEach(replicas, (replica) => replica.kill("SIGTERM"), {
          concurrency: "unbounded",
          discard: true
        })
        const restarted = yield* startReplicas(REPLICAS, env)
        const [a2, b2, c2] = restarted as [Replica, Replica, Replica]
        const listed = yield* call(b2, "GET", "/v1/admin/apps", ADMIN_KEY)
        expect(JSON.parse(listed.text)).toMatchObject({ apps: [{ appId: ADDED, source: "admin" }] })
        yield* eventually(all(restarted, (replica) => statusIs(200, tokenOf(replica, ADDED, key))), "served again")

        // Revoked on C: refused on every replica.
        expect((yield* call(c2, "DELETE", `/v1/admin/keys/${id}`, ADMIN_KEY)).status).toBe(204)
        yield* eventually(all(restarted, (replica) => statusIs(401, tokenOf(replica, ADDED, key))), "the key refused")

        // Removed on A: 404 on every replica.
        expect((yield* call(a2, "DELETE", `/v1/admin/apps/${ADDED}`, ADMIN_KEY)).status).toBe(204)
        yield* eventually(all(restarted, (replica) => statusIs(404, tokenOf(replica, ADDED))), "404 everywhere")
        expectNoSecret(yield* redisDump(redis.url), secrets, "Redis after the restart")
        expectNoSecret(yield* observed(restarted), secrets, "a restarted replica's logs, /metrics or audit")
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "a file-store server keeps its registry across a restart; its files hold no secret in clear",
    () =>
      Effect.gen(function*() {
        const upstream = yield* upstreams(1)
        yield* upstream.emulator.registerApp({ appId: ADDED, secret: FIRST_SECRET })
        const directory = yield* Effect.sync(() => mkdtempSync(join(tmpdir(), "admin-file-store-")))
        const env = adminEnv({ upstream: upstream.urlOf(0), store: `file:${join(directory, "tokens.json")}` })
        const first = yield* spawnReplica(0, env)
        expect((yield* putApp(first, ADDED, FIRST_SECRET)).status).toBe(200)
        const created = yield* call(first, "POST", "/v1/admin/keys", ADMIN_KEY, { scope: [], label: "all" })
        const { key } = JSON.parse(created.text) as { key: string }
        expect((yield* tokenOf(first, ADDED, key)).status).toBe(200)
        yield* first.kill("SIGTERM")

        const second = yield* spawnReplica(0, env)
        expect((yield* tokenOf(second, ADDED, key)).status).toBe(200)
        const files = yield* Effect.sync(() => filesUnder(directory).map((file) => readFileSync(file, "utf8")))
        expect(files.join("\n")).toContain("enc1:")
        const secrets = [FIRST_SECRET, key, ADMIN_KEY, ENCRYPTION_KEY]
        expectNoSecret(files.join("\n"), secrets, "the store's files")
        expectNoSecret(yield* observed([second]), secrets, "the server's logs, /metrics or audit")
        expectNoSecret(first.output(), secrets, "the first server's logs")

        expect((yield* call(second, "DELETE", `/v1/admin/apps/${ADDED}`, ADMIN_KEY)).status).toBe(204)
        yield* second.kill("SIGTERM")
        const third = yield* spawnReplica(0, env)
        expect((yield* tokenOf(third, ADDED, key)).status).toBe(404)
      }).pipe(Effect.scoped),
    300_000
  )
})

const filesUnder = (directory: string): Array<string> =>
  readdirSync(directory).flatMap((name) => {
    const path = join(directory, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
