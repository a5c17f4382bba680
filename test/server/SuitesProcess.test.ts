import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { spawnServer } from "../support/serverProcess.js"

// A real `serve` process with WECOM_SUITES, WeCom played by the emulator
// over real HTTP: WeCom pushes to the server's command URL, the install's
// permanent code is stored (sealed) on a file store, a restart on that file
// asks WeCom for nothing, and forged pushes change nothing.

const SUITE = "ww5a5a5a5a5a5a5a5a"
const SECRET = "suite-secret-never-in-clear-0123"
const TOKEN = "suitePushToken"
const KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const CORP = "ww0e0e0e0e0e0e0e0e"
const OPS_KEY = "ops-key-for-the-suites-process-test-0123"
const STORE_KEY = "00112233445566778899aabbccddeeff".repeat(2)

const CLIENT_KEY = "client-key-0123456789abcdef"

const corpToken = (base: string) =>
  Effect.promise(() =>
    fetch(`${base}/v1/wecom-suites/${SUITE}/corps/${CORP}/access-token`, {
      headers: { authorization: `Bearer ${CLIENT_KEY}` }
    }).then(
      async (response) => ({ status: response.status, body: await response.text() }),
      () => ({ status: 0, body: "" })
    )
  )

interface Readiness {
  readonly credentials?: ReadonlyArray<Record<string, unknown>>
}

const readyz = (base: string) =>
  Effect.promise(() =>
    fetch(`${base}/readyz`, { headers: { authorization: `Bearer ${OPS_KEY}` } }).then(
      (response) => response.json() as Promise<Readiness>,
      (): Readiness => ({})
    )
  )

const holds = (base: string, appId: string, kind: string) =>
  Effect.map(
    readyz(base),
    (body) => (body.credentials ?? []).some((entry) => entry.app_id === appId && entry.kind === kind && entry.valid)
  )

// Generous: two cores shared by many sessions; a bound for a broken build, not a speed goal.
const eventually = (check: Effect.Effect<boolean>) =>
  check.pipe(
    Effect.filterOrFail((held) => held, () => "condition never held"),
    Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 480 })
  )

describe("serve with WECOM_SUITES (real processes)", () => {
  it.scopedLive(
    "pushes → suite token → install → corp token; restart on the file store asks WeCom for nothing; cancel_auth retires; forged pushes refused",
    () =>
      Effect.gen(function*() {
        const { emulator, url } = yield* Emulator.serve({
          suites: [{ suiteId: SUITE, secret: SECRET, messageToken: TOKEN, encodingAesKey: KEY }]
        })
        const path = NodePath.join(mkdtempSync(NodePath.join(tmpdir(), "suites-serve-")), "tokens.json")
        const env = {
          WECOM_SUITES: `${SUITE}:${SECRET}:${TOKEN}:${KEY}`,
          WECOM_API_BASE_URL: url,
          CLIENT_KEYS: CLIENT_KEY,
          OPS_KEYS: OPS_KEY,
          TOKEN_STORE: `file:${path}`,
          STORE_ENCRYPTION_KEY: STORE_KEY
        }
        const owner = `${SUITE}:${CORP}`
        const code = yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* spawnServer(env)
          const events = `${server.base}/wecom/suites/${SUITE}/events`
          // WeCom's pushes reach the server once it listens.
          yield* eventually(Effect.map(readyz(server.base), (body) => body.credentials !== undefined))
          yield* Effect.orDie(emulator.wecomSuite.setCommandUrl(SUITE, events))
          yield* Effect.orDie(emulator.wecomSuite.pushTicket(SUITE))
          yield* eventually(holds(server.base, SUITE, "suite_access_token"))
          yield* Effect.orDie(emulator.wecomSuite.install(SUITE, CORP, 1000002))
          yield* eventually(holds(server.base, owner, "suite_corp_access_token"))
          const served = yield* corpToken(server.base)
          expect(served.status).toBe(200)
          expect(served.body).not.toContain(SECRET)

          // A forged push (signed with another token) and a body that is not WeCom's change nothing.
          const forged = yield* Effect.promise(() =>
            fetch(`${events}?msg_signature=${"0".repeat(40)}&timestamp=${Math.floor(Date.now() / 1000)}&nonce=1`, {
              method: "POST",
              body: `<xml><ToUserName>${SUITE}</ToUserName><Encrypt>AAAA</Encrypt></xml>`
            })
          )
          expect(forged.status).toBe(401)
          const unknown = yield* Effect.promise(() =>
            fetch(`${server.base}/wecom/suites/ww0000000000000000/events?msg_signature=x&timestamp=1&nonce=1`, {
              method: "POST",
              body: "<xml/>"
            })
          )
          expect(unknown.status).toBe(401)
          return yield* Effect.orDie(emulator.wecomSuite.permanentCode(SUITE, CORP))
        }))
        // Sealed at rest: neither the permanent code nor the suite secret is in the file.
        const text = readFileSync(path, "utf8")
        expect(text).toContain(owner)
        expect(code).toBeDefined()
        expect(text).not.toContain(code!)
        expect(text).not.toContain(SECRET)

        yield* emulator.resetStats
        yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* spawnServer(env)
          yield* Effect.orDie(
            emulator.wecomSuite.setCommandUrl(SUITE, `${server.base}/wecom/suites/${SUITE}/events`)
          )
          yield* eventually(holds(server.base, owner, "suite_corp_access_token"))
          const stats = yield* emulator.wecomSuite.stats(SUITE)
          expect(stats.suiteTokenCalls).toBe(0)
          expect(stats.corpTokenCalls).toBe(0)

          expect((yield* corpToken(server.base)).status).toBe(200)

          // The corp uninstalls: its routes answer 404. /readyz keeps its tombstone (the permanent
          // code, not valid) and no corp token: a retired corp is listed, never served.
          yield* Effect.orDie(emulator.wecomSuite.revoke(SUITE, CORP))
          yield* eventually(Effect.map(corpToken(server.base), (answer) => answer.status === 404))
          const after = yield* readyz(server.base)
          expect(after.credentials).toEqual(expect.not.arrayContaining([
            expect.objectContaining({ app_id: owner, valid: true })
          ]))
        }))
      }),
    240_000
  )
})
