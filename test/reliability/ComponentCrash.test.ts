/**
 * The server SIGKILLed right after it answered `success` to an authorization
 * push still has the authorization on restart: the code was journaled in
 * the file store's `authorization-codes` document (written atomically)
 * before the answer, and the next start exchanges it. WeChat's `api_query_auth` is held slow, so the kill always lands
 * before the first process could exchange the code itself.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Component from "../../src/families/component/Component.js"
import * as AuthorizationCodes from "../../src/families/component/internal/authorizationCodes.js"
import * as FileDocuments from "../../src/internal/fileDocuments.js"
import * as OwnerId from "../../src/OwnerId.js"
import { Fault } from "../../src/testing/Fault.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import {
  AES_KEY,
  COMPONENT,
  COMPONENT_SECRET,
  MERCHANT,
  MESSAGE_TOKEN,
  registration
} from "../support/componentStack.js"
import { CLIENT_KEY, eventually, explainedBy, spawnReplica } from "../support/replicas.js"

const get = (url: string) =>
  Effect.promise(() =>
    fetch(url, { headers: { authorization: `Bearer ${CLIENT_KEY}` } })
      .then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> }))
      .catch(() => ({ status: 0, body: {} as Record<string, unknown> }))
  )

const storedRefreshToken = (path: string): string | undefined => {
  const document = JSON.parse(NodeFs.readFileSync(path, "utf8")) as {
    records: Record<string, { value: string; retired?: boolean }>
  }
  return document.records[`${COMPONENT}:${MERCHANT}/${Component.refreshToken}`]?.value
}

// The codes the `authorization-codes` document holds, by authorizer.
const journaledCodes = (path: string): Record<string, { readonly code: string; readonly exchangedAt?: number }> => {
  const file = NodePath.join(FileDocuments.directoryOf(path), `${AuthorizationCodes.NAME}.json`)
  if (!NodeFs.existsSync(file)) return {}
  const document = JSON.parse(NodeFs.readFileSync(file, "utf8")) as { body: string }
  return (JSON.parse(document.body) as { codes: Record<string, { code: string; exchangedAt?: number }> }).codes
}

describe("crash consistency: a third-party platform's authorization", () => {
  it.scopedLive(
    "SIGKILL right after `success` to an authorization push: the restart has the refresh token",
    () =>
      Effect.gen(function*() {
        const path = NodePath.join(NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "component-crash-")), "store.json")
        const wechat = yield* Emulator.serve({ components: [registration] })
        const controls = wechat.emulator.component
        const env = {
          WECHAT_COMPONENTS: `${COMPONENT}:${COMPONENT_SECRET}:${MESSAGE_TOKEN}:${AES_KEY}`,
          WECHAT_API_BASE_URL: wechat.url,
          TOKEN_STORE: `file:${path}`,
          CLIENT_KEYS: CLIENT_KEY,
          LOG_LEVEL: "info"
        }
        const first = yield* spawnReplica(0, env)
        yield* controls.setPushUrl(COMPONENT, `${first.url}/wechat/components/${COMPONENT}/events`)
        yield* controls.pushTicket(COMPONENT)
        yield* eventually(
          Effect.map(get(`${first.url}/v1/components/${COMPONENT}/access-token`), (answer) => answer.status === 200),
          "the component token is served",
          Duration.seconds(150)
        ).pipe(explainedBy(first))

        yield* wechat.emulator.injectFault({ fault: Fault.Slow(Duration.minutes(5)), endpoints: ["api_query_auth"] })
        // `authorize` returns once the push was answered `success`.
        const code = yield* controls.authorize(COMPONENT, MERCHANT)
        yield* first.kill("SIGKILL")
        const owner = OwnerId.authorizer(COMPONENT as never, MERCHANT as never)
        expect(journaledCodes(path)).toEqual({ [owner]: expect.objectContaining({ code }) })
        const log = yield* controls.pushLog(COMPONENT)
        expect(log.at(-1)).toMatchObject({ infoType: "authorized", delivered: true })
        expect((yield* controls.stats(COMPONENT)).authorizerTokensIssued).toBe(0)
        expect(storedRefreshToken(path)).toBeUndefined()

        yield* wechat.emulator.clearFaults
        yield* controls.setPushUrl(COMPONENT, undefined)
        const second = yield* spawnReplica(1, env)
        yield* eventually(
          Effect.map(
            get(`${second.url}/v1/components/${COMPONENT}/authorizers/${MERCHANT}/access-token`),
            (answer) => answer.status === 200
          ),
          "the authorizer is served after the restart",
          Duration.seconds(150)
        ).pipe(explainedBy(second))
        const token = yield* get(`${second.url}/v1/components/${COMPONENT}/authorizers/${MERCHANT}/access-token`)
        expect(yield* controls.isValidAuthorizerToken(token.body["access_token"] as string, MERCHANT)).toBe(true)
        expect(storedRefreshToken(path)).toBe(yield* controls.currentRefreshToken(COMPONENT, MERCHANT))
        // Exchanged: the code left the document.
        yield* eventually(
          Effect.sync(() => journaledCodes(path)[owner]?.exchangedAt !== undefined),
          "the code is marked exchanged",
          Duration.seconds(60)
        )
      }),
    { timeout: 300_000 }
  )
})
