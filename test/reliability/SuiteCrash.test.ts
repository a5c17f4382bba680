/**
 * The server SIGKILLed right after it answered `success` to a WeCom
 * `create_auth` push still has the corp on restart: the temporary code was
 * exchanged and the permanent code stored in the file store before the
 * answer. WeCom hands a permanent code out once and the temporary code dies
 * with its exchange, so a code stored after the answer would lose the corp
 * for good.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { STORE_KEY, SUITE, SUITE_CORP as CORP, suiteRegistration, WECOM_SUITES } from "../support/fixtures.js"
import { CLIENT_KEY, eventually, getJson as get, spawnReplica } from "../support/replicas.js"

// The store's record keys: `{owner}/{kind}`.
const storedKinds = (path: string): ReadonlyArray<string> =>
  NodeFs.existsSync(path)
    ? Object.keys((JSON.parse(NodeFs.readFileSync(path, "utf8")) as { records: Record<string, unknown> }).records)
    : []

describe("crash consistency: a WeCom suite's install", () => {
  it.scopedLive(
    "SIGKILL right after `success` to a create_auth push: the restart serves the corp without a new install",
    () =>
      Effect.gen(function*() {
        const path = NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "suite-crash-")), "store.json")
        const wecom = yield* Emulator.serve({ suites: [suiteRegistration] })
        const controls = wecom.emulator.wecomSuite
        const env = {
          WECOM_SUITES,
          WECOM_API_BASE_URL: wecom.url,
          TOKEN_STORE: `file:${path}`,
          STORE_ENCRYPTION_KEY: STORE_KEY,
          CLIENT_KEYS: CLIENT_KEY,
          LOG_LEVEL: "info"
        }
        const first = yield* spawnReplica(0, env)
        yield* controls.setCommandUrl(SUITE, `${first.url}/wecom/suites/${SUITE}/events`)
        yield* controls.pushTicket(SUITE)
        yield* eventually(
          Effect.map(get(`${first.url}/v1/wecom-suites/${SUITE}/access-token`), (answer) => answer.status === 200),
          "the suite token is served",
          Duration.seconds(150)
        )

        // `install` returns once the push was answered `success`; nothing else is waited for.
        yield* controls.install(SUITE, CORP, 1000002)
        yield* first.kill("SIGKILL")
        const owner = WeComSuite.corpOwner(SUITE as never, CORP as never)
        expect(storedKinds(path)).toContain(`${owner}/${WeComSuite.permanentCode}`)
        expect(yield* controls.pushLog(SUITE)).toEqual(
          expect.arrayContaining([expect.objectContaining({ infoType: "create_auth", delivered: true })])
        )
        const exchanges = (yield* controls.stats(SUITE)).permanentCodeCalls
        expect(exchanges).toBe(1)

        // WeCom pushes nothing to the restarted server: all it has is what the first one stored.
        yield* controls.setCommandUrl(SUITE, undefined)
        const second = yield* spawnReplica(1, env)
        const corpRoute = `${second.url}/v1/wecom-suites/${SUITE}/corps/${CORP}/access-token`
        yield* eventually(
          Effect.map(get(corpRoute), (answer) => answer.status === 200),
          "the corp is served after the restart",
          Duration.seconds(150)
        )
        const token = yield* get(corpRoute)
        expect(yield* wecom.emulator.wecom.isValidToken(token.body["access_token"] as string)).toBe(true)
        expect((yield* controls.stats(SUITE)).permanentCodeCalls).toBe(exchanges)
      }),
    { timeout: 300_000 }
  )
})
