/**
 * A hostile token endpoint against the real server process (`src/bin.ts
 * serve`, a file store): absurd or non-numeric `expires_in`, and an
 * `errmsg` of megabytes. The unit tests in `HostileUpstream.test.ts` check
 * the decoding; these check what only a process shows: that it stays up (a
 * throw outside any fiber, as the fast path's date arithmetic once did with
 * `expires_in: 1e13`, ends it), what the client, `/readyz`, the log and the
 * file on disk receive.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { MAX_ERRMSG } from "../../src/internal/upstream.js"
import { Fault } from "../../src/testing/WeChatEmulator.js"
import { APP, CLIENT_KEY, eventually, type Replica, SECRET, spawnReplica, upstreams } from "../support/replicas.js"
import { OPS_KEY, opsAuth } from "../support/serverStack.js"

const DAY_SECONDS = 86_400

interface Answer {
  readonly status: number
  readonly text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any route's JSON body, read field by field below
  readonly json: any
}

const request = (url: string, init: RequestInit = {}): Effect.Effect<Answer> =>
  Effect.promise(() =>
    fetch(url, { ...init, headers: { authorization: `Bearer ${CLIENT_KEY}`, ...init.headers } }).then(
      async (response) => {
        const text = await response.text()
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        return { status: response.status, text, json }
      },
      // A refused or reset connection: the process is gone.
      (error: unknown) => ({ status: 0, text: String(error), json: undefined })
    )
  )

// A request to a process that has exited fails the test at once, with the end of what it printed.
const accessToken = (replica: Replica) =>
  Effect.suspend(() =>
    replica.alive()
      ? request(`${replica.url}/v1/apps/${APP}/access-token`)
      : Effect.dieMessage(
        `the server exited (${JSON.stringify(replica.exitStatus())}):\n${replica.output().slice(-1_500)}`
      )
  )

const tempStore = (prefix: string) =>
  NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix)), "store.json")

const serverEnv = (upstream: string, storePath: string): Record<string, string> => ({
  WECHAT_APPS: `${APP}:${SECRET}`,
  WECHAT_API_BASE_URL: upstream,
  WECHAT_TOKEN_MODE: "classic",
  TOKEN_STORE: `file:${storePath}`,
  CLIENT_KEYS: CLIENT_KEY,
  OPS_KEYS: OPS_KEY,
  LOG_LEVEL: "info"
})

// A 200 must carry the token with a lifetime no longer than a day, dated by a real date.
const expectClampedToken = (answer: Answer, token: string) => {
  expect(answer.status, answer.text).toBe(200)
  expect(answer.json.access_token).toBe(token)
  expect(answer.json.expires_in).toBeGreaterThan(DAY_SECONDS - 120)
  expect(answer.json.expires_in).toBeLessThanOrEqual(DAY_SECONDS)
  const expiresAt = Date.parse(answer.json.expires_at)
  expect(expiresAt - Date.now()).toBeLessThanOrEqual(DAY_SECONDS * 1_000 + 60_000)
}

// Every record in the file has a finite expiry within a day: JSON writes an
// infinite one as `null`, which no later start could read back.
const expectSaneStore = (path: string) => {
  const text = NodeFs.readFileSync(path, "utf8")
  expect(text).not.toContain("null")
  const records = Object.values((JSON.parse(text) as { records: Record<string, { expiresAt: unknown }> }).records)
  expect(records.length).toBeGreaterThan(0)
  for (const record of records) {
    expect(Number.isFinite(record.expiresAt)).toBe(true)
    expect(record.expiresAt as number).toBeLessThanOrEqual(Date.now() + DAY_SECONDS * 1_000 + 60_000)
  }
}

const expectAlive = (replica: Replica) => {
  expect(replica.alive(), replica.output().slice(-3_000)).toBe(true)
  expect(replica.output()).not.toContain("RangeError")
}

describe("a hostile token endpoint against the real process", () => {
  it.scopedLive(
    "expires_in 1e13, 1e308 and non-numbers: the process stays up, answers 503 or 200 with at most a day, and the file never holds a null expiry",
    () =>
      Effect.gen(function*() {
        const wechat = yield* upstreams(1)
        const body = (token: string, expiresIn: string) => `{"access_token":"${token}","expires_in":${expiresIn}}`
        // In this order, one answer each: refused bodies first (the server backs off between them), then
        // absurd lifetimes that are whole numbers, so accepted with a clamp.
        for (const expiresIn of ["NaN", "1e400", "\"7200\"", "null", "-1e13"]) {
          yield* wechat.emulator.injectFault({
            fault: Fault.Malformed(body("REFUSED_TOKEN", expiresIn)),
            endpoints: ["token"],
            times: 1
          })
        }
        for (const [token, expiresIn] of [["HOSTILE_1E13", "1e13"], ["HOSTILE_1E308", "1e308"]] as const) {
          yield* wechat.emulator.injectFault({
            fault: Fault.Malformed(body(token, expiresIn)),
            endpoints: ["token"],
            times: 1
          })
        }
        const path = tempStore("hostile-expiry-")
        const server = yield* spawnReplica(0, serverEnv(wechat.urlOf(0), path))

        // Until the first accepted answer: every answer a typed 503, never a dropped connection.
        const answers: Array<Answer> = []
        yield* eventually(
          Effect.map(accessToken(server), (answer) => {
            answers.push(answer)
            return answer.status === 200
          }),
          "the 1e13 answer is served",
          Duration.seconds(120)
        )
        const refused = answers.slice(0, -1)
        expect(refused.length).toBeGreaterThan(0)
        for (const answer of refused) {
          expect(answer.status, answer.text).toBe(503)
          expect(answer.json.error.code).toEqual(expect.any(String))
        }
        expect(answers.at(-1)!.json.access_token).toBe("HOSTILE_1E13")
        // Served again and again, by the fast path once the engine holds it.
        for (let i = 0; i < 5; i++) expectClampedToken(yield* accessToken(server), "HOSTILE_1E13")
        expectSaneStore(path)

        // A client reports it rejected: the replacement answers 1e308.
        const replaced = yield* request(`${server.url}/v1/apps/${APP}/access-token/refresh`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ stale_token: "HOSTILE_1E13" })
        })
        expectClampedToken(replaced, "HOSTILE_1E308")
        for (let i = 0; i < 5; i++) expectClampedToken(yield* accessToken(server), "HOSTILE_1E308")
        expectSaneStore(path)
        expectAlive(server)
      }),
    { timeout: 300_000 }
  )

  it.scopedLive(
    "an errmsg of megabytes: the 503, /readyz and the log carry at most its first 200 characters",
    () =>
      Effect.gen(function*() {
        const wechat = yield* upstreams(1)
        const FIVE_MB = 5_000_000
        // Above the 1 MiB cap of a credential body: refused unread, so none of it is anywhere.
        yield* wechat.emulator.injectFault({
          fault: Fault.Errcode(-1, "x".repeat(FIVE_MB)),
          endpoints: ["token"],
          times: 1
        })
        // Below the cap: read, and cut to MAX_ERRMSG wherever it is copied.
        const ERRMSG_CHARS = 1_000_000
        yield* wechat.emulator.injectFault({ fault: Fault.Errcode(-1, "e".repeat(ERRMSG_CHARS)), endpoints: ["token"] })
        const server = yield* spawnReplica(0, serverEnv(wechat.urlOf(0), tempStore("hostile-errmsg-")))

        const answers: Array<Answer> = []
        yield* eventually(
          Effect.map(accessToken(server), (answer) => {
            answers.push(answer)
            return answer.text.includes("characters)")
          }),
          "a 503 naming the cut errmsg",
          Duration.seconds(120)
        )
        for (const answer of answers) {
          expect(answer.status).toBe(503)
          expect(answer.text.length).toBeLessThan(1_000)
          expect(answer.text).not.toContain("x".repeat(MAX_ERRMSG))
        }
        expect(answers.some((answer) => answer.text.includes("larger than"))).toBe(true)
        const cut = answers.at(-1)!.json.error.message as string
        expect(cut).toContain(`${"e".repeat(MAX_ERRMSG)}…`)
        expect(cut).not.toContain("e".repeat(MAX_ERRMSG + 1))

        const ready = yield* request(`${server.url}/readyz`, { headers: opsAuth() })
        expect(ready.status).toBe(503)
        expect(ready.text.length).toBeLessThan(10_000)
        expect(ready.text).not.toContain("e".repeat(MAX_ERRMSG + 1))
        expect(ready.text).toContain(`${"e".repeat(MAX_ERRMSG)}…`)

        // The log: the failure is there, cut, on lines of ordinary length.
        const log = server.output()
        expect(log).toContain(`${"e".repeat(MAX_ERRMSG)}…`)
        expect(log).not.toContain("e".repeat(MAX_ERRMSG + 1))
        expect(log).not.toContain("x".repeat(MAX_ERRMSG))
        for (const line of log.split("\n")) expect(line.length).toBeLessThan(2_000)
        expectAlive(server)
      }),
    { timeout: 300_000 }
  )
})
