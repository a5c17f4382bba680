/**
 * A WeCom suite's whole life in a real `serve` process, once on the file
 * store and once on Redis: ticket pushes, an install, a permanent code
 * reset, every suite, corp and provider route, a forged push, `/metrics`,
 * `/readyz` and the uninstall. The suite secret, the provider secret, the
 * push Token, the EncodingAESKey and the permanent codes appear in no log
 * line, no answer and no stored value in clear; tokens and tickets appear
 * in the logs only masked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { call, OPS_KEY, redisDump } from "../support/adminReplicas.js"
import {
  AES_KEY,
  MESSAGE_TOKEN,
  STORE_KEY,
  SUITE,
  SUITE_CORP as CORP,
  SUITE_SECRET,
  suiteRegistration,
  WECOM_SUITES
} from "../support/fixtures.js"
import * as RedisServer from "../support/redisServer.js"
import { CLIENT_KEY, eventually, spawnReplica } from "../support/replicas.js"

const PROVIDER = "ww0d0d0d0d0d0d0d0d"
const PROVIDER_SECRET = "provider-secret-never-in-clear-01"

const valueOf = (text: string, field: string): string => {
  const value = (JSON.parse(text) as Record<string, unknown>)[field]
  return typeof value === "string" ? value : ""
}

/** Runs the suite's life on `store` (a `TOKEN_STORE`) and checks `stored()` (what the store holds) at the end. */
const scenario = (store: string, stored: Effect.Effect<string>) =>
  Effect.gen(function*() {
    const wecom = yield* Emulator.serve({ suites: [suiteRegistration] })
    const controls = wecom.emulator.wecomSuite
    yield* controls.registerProvider(PROVIDER, PROVIDER_SECRET)
    const server = yield* spawnReplica(0, {
      WECOM_SUITES,
      WECOM_PROVIDER: `${PROVIDER}:${PROVIDER_SECRET}`,
      WECOM_API_BASE_URL: wecom.url,
      TOKEN_STORE: store,
      STORE_ENCRYPTION_KEY: STORE_KEY,
      CLIENT_KEYS: CLIENT_KEY,
      OPS_KEYS: OPS_KEY,
      LOG_LEVEL: "debug"
    })
    const suite = `/v1/wecom-suites/${SUITE}`
    const corp = `${suite}/corps/${CORP}`
    const answers: Array<string> = []
    const values = new Set<string>()
    const ask = (method: string, path: string, body?: unknown) =>
      Effect.tap(call(server, method, path, CLIENT_KEY, body), (answer) => void answers.push(answer.text))

    const events = `${server.url}/wecom/suites/${SUITE}/events`
    yield* controls.setCommandUrl(SUITE, events)
    values.add(yield* controls.pushTicket(SUITE))
    yield* controls.install(SUITE, CORP, 1000002)
    const codes = [yield* controls.permanentCode(SUITE, CORP)]
    yield* eventually(
      Effect.map(call(server, "GET", `${corp}/access-token`, CLIENT_KEY), (answer) => answer.status === 200),
      "the corp is served",
      Duration.seconds(120)
    )
    // A reset: the old code dies, the new one is exchanged and stored.
    yield* controls.resetPermanentCode(SUITE, CORP)
    codes.push(yield* controls.permanentCode(SUITE, CORP))
    expect(codes[0]).toBeDefined()
    expect(codes[1]).toBeDefined()
    expect(codes[1]).not.toBe(codes[0])

    for (
      const [path, field] of [
        [`${suite}/access-token`, "access_token"],
        [`${suite}/provider-token`, "access_token"],
        [`${corp}/access-token`, "access_token"],
        [`${corp}/jsapi-ticket`, "ticket"],
        [`${corp}/agent-ticket`, "ticket"]
      ] as const
    ) {
      const answer = yield* ask("GET", path)
      expect(answer.status, path).toBe(200)
      values.add(valueOf(answer.text, field))
    }
    const install = yield* ask("POST", `${suite}/pre-auth-code`, {})
    expect(install.status).toBe(200)
    values.add(valueOf(install.text, "pre_auth_code"))
    expect((yield* ask("POST", `${corp}/jssdk-config`, { url: "https://example.com/page" })).status).toBe(200)
    yield* ask("GET", `${suite}/corps`)

    // A forged push, a wrong client key, then the uninstall.
    const forged = yield* Effect.promise(() =>
      fetch(`${events}?msg_signature=${"0".repeat(40)}&timestamp=1&nonce=2`, {
        method: "POST",
        body: `<xml><ToUserName>${SUITE}</ToUserName><Encrypt>AAAA</Encrypt></xml>`
      }).then((response) => response.text())
    )
    answers.push(forged)
    answers.push((yield* call(server, "GET", `${suite}/access-token`, `${CLIENT_KEY}x`)).text)
    yield* controls.revoke(SUITE, CORP)
    yield* eventually(
      Effect.map(call(server, "GET", `${corp}/access-token`, CLIENT_KEY), (answer) => answer.status === 404),
      "the revoked corp answers 404",
      Duration.seconds(60)
    )
    for (const path of ["/readyz", "/metrics"]) {
      const detailed = yield* call(server, "GET", path, OPS_KEY)
      expect(detailed.status, path).toBe(200)
      answers.push(detailed.text)
    }
    yield* server.kill("SIGTERM")

    const logs = server.output()
    const held = yield* stored
    expect(logs.split("\n").length).toBeGreaterThan(5)
    // The store holds the suite's records, sealed.
    expect(held).toContain(SUITE)
    for (const secret of [SUITE_SECRET, PROVIDER_SECRET, MESSAGE_TOKEN, AES_KEY, ...codes as Array<string>]) {
      expect(logs).not.toContain(secret)
      expect(held).not.toContain(secret)
      for (const answer of answers) expect(answer).not.toContain(secret)
    }
    values.delete("")
    expect(values.size).toBeGreaterThanOrEqual(7)
    for (const value of values) expect(logs).not.toContain(value)
  })

describe("Secrets: WeCom suites", () => {
  it.scopedLive(
    "on the file store: no suite or provider secret, Token, AES key or permanent code in logs, answers or the files",
    () =>
      Effect.gen(function*() {
        const directory = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "suite-secrets-"))
        const files = Effect.sync(() =>
          NodeFs.readdirSync(directory, { recursive: true, encoding: "utf8" })
            .map((name) => NodePath.join(directory, name))
            .filter((file) => NodeFs.statSync(file).isFile())
            .map((file) => NodeFs.readFileSync(file, "utf8"))
            .join("\n")
        )
        yield* scenario(`file:${NodePath.join(directory, "store.json")}`, files)
      }),
    { timeout: 240_000 }
  )

  it.scopedLive(
    "on Redis: no suite or provider secret, Token, AES key or permanent code in logs, answers or any Redis value",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make
        yield* scenario(redis.url, redisDump(redis.url))
      }),
    { timeout: 240_000 }
  )
})
