/**
 * What the console's tests share: the keys, a server with the console and
 * (optionally) 100,000 synthetic authorizers beside its real apps, and
 * signing in as a browser would.
 */
import { Effect, Option, Redacted } from "effect"
import * as AppId from "../../../src/AppId.js"
import * as OwnerId from "../../../src/OwnerId.js"
import { TokenRecord } from "../../../src/Token.js"
import type { CredentialStatus, TokenEngineShape } from "../../../src/TokenEngine.js"
import { UpstreamUnavailable } from "../../../src/WeChatError.js"
import { call, type ServerOptions, serveTokenServer } from "../../support/serverStack.js"

/** An ops key: may sign in. The client key (`KEY`) may not. */
export const OPS_KEY = "ops-key-0123456789abcdef0123456789abcdef"

export const COMPONENT = AppId.make("wx00000000000c0de0")
export const authorizerOf = (index: number) =>
  OwnerId.authorizer(COMPONENT, AppId.make(`wx${index.toString(16).padStart(16, "0")}`))

const HOUR = 3_600_000

/**
 * The engine with `count` authorizers' statuses listed after its own: a
 * status source of the size the console must page, without making 100,000
 * fetches. Every tenth is invalid, every tenth (another) failing; both with
 * WeChat's "system busy" as their last failure.
 */
export const withAuthorizers = (count: number, now: number) => (engine: TokenEngineShape): TokenEngineShape => {
  const busy = Option.some(new UpstreamUnavailable({ reason: "busy", detail: "system busy (errcode -1)" }))
  const statuses: ReadonlyArray<CredentialStatus> = Array.from({ length: count }, (_, index) => {
    const fetchedAt = now - (index % 7_000) * 1_000
    return {
      appId: authorizerOf(index),
      kind: "authorizer_access_token",
      metricsLabel: COMPONENT,
      valid: index % 10 !== 3,
      record: Option.some(
        new TokenRecord({
          appId: authorizerOf(index),
          kind: "authorizer_access_token",
          value: `authorizer-token-${index}`,
          mode: "none",
          fetchedAt,
          expiresAt: fetchedAt + 2 * HOUR,
          refreshAt: fetchedAt + 2 * HOUR - 300_000,
          generation: 1
        }, { disableValidation: true })
      ),
      lastError: index % 10 === 3 || index % 10 === 7 ? busy : Option.none(),
      retired: false
    }
  })
  return {
    ...engine,
    eachStatus: (visit) =>
      Effect.zipRight(
        engine.eachStatus(visit),
        Effect.sync(() => {
          for (const status of statuses) visit(status)
        })
      )
  }
}

/** The token server with the console for `OPS_KEY`. */
export const serveConsole = (options: ServerOptions & { readonly authorizers?: number }) =>
  serveTokenServer({
    console: { keys: [Redacted.make(OPS_KEY)] },
    ...options,
    ...(options.authorizers === undefined ? {} : { engineView: withAuthorizers(options.authorizers, Date.now()) })
  })

export const form = (fields: Record<string, string>) => ({
  method: "POST",
  redirect: "manual" as const,
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString()
})

/** Signs in with `key`: the session cookie (name=value) and the page's CSRF token. */
export const signIn = (base: string, key: string = OPS_KEY) =>
  Effect.gen(function*() {
    const answer = yield* call(`${base}/console/session`, form({ key }))
    const cookie = (answer.headers.get("set-cookie") ?? "").split(";")[0]
    const page = yield* call(`${base}/console`, { headers: { cookie } })
    const csrf = /name="csrf-token" content="([^"]+)"/.exec(page.text)?.[1] ?? ""
    return { cookie, csrf, answer, page }
  })
