/**
 * What an operator reads when something is wrong: each message names the
 * cause and the variable to change, never a secret.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type AddressInfo, createServer } from "node:net"
import * as WeChatApi from "../../src/families/officialAccount/WeChatApi.js"
import * as TokenConfig from "../../src/TokenConfig.js"

const SECRET = "TopSecretValue"

describe("messages", () => {
  it.live("a network failure names the call, the errno and the address, not the secret or the query", () =>
    Effect.gen(function*() {
      // A port that was free a moment ago: nothing listens, the connection is refused.
      const port = yield* Effect.async<number>((resume) => {
        const probe = createServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as AddressInfo
          probe.close(() => resume(Effect.succeed(port)))
        })
      })
      const api = yield* WeChatApi.make({ baseUrl: `http://127.0.0.1:${port}` })
      const app = TokenConfig.app("wx0123456789abcdef", SECRET)
      for (const mode of ["stable", "classic"] as const) {
        const error = yield* Effect.flip(api.fetchAccessToken(app, mode, { forceRefresh: false }))
        const text = `${error.message} ${JSON.stringify(error)}`
        expect(error.message).toContain(
          `${mode === "stable" ? "stable_token" : "token"}: connect ECONNREFUSED 127.0.0.1:${port}`
        )
        expect(text).not.toContain(SECRET)
        expect(text).not.toContain("grant_type")
      }
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
