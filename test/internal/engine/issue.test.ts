import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, TestClock } from "effect"
import type { Credential } from "../../../src/AccessToken.js"
import * as CredentialFamily from "../../../src/CredentialFamily.js"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as Issue from "../../../src/internal/engine/issue.js"
import type { OwnerId } from "../../../src/OwnerId.js"
import type { CredentialKind } from "../../../src/Token.js"
import { MissingInput, WeChatApiError } from "../../../src/WeChatError.js"
import { APP, AUTHORIZER } from "./fixtures.js"

const rejected = new WeChatApiError({ errcode: 40001, errmsg: "invalid credential" })

// The engine around an issuer, faked: values by owner and kind, a log of what it was asked.
const engine = (values: Map<string, string>) => {
  const log: Array<string> = []
  let permits = 0
  const credential = (value: string): Credential => ({ value, expiresAt: Number.MAX_SAFE_INTEGER })
  const deps: Issue.IssueDeps = {
    get: (owner, kind) => Effect.sync(() => credential(values.get(`${owner}/${kind}`)!)),
    refresh: (owner, stale, kind) =>
      Effect.sync(() => {
        log.push(`refresh ${owner}/${kind} ${stale}`)
        values.set(`${owner}/${kind}`, `${stale}+`)
        return credential(`${stale}+`)
      }),
    put: (owner, kind, issued) =>
      Effect.sync(() => (log.push(`put ${owner}/${kind} ${issued.value}`), credential(issued.value))),
    retire: (owner) => Effect.sync(() => void log.push(`retire ${owner}`)),
    withPermit: (effect) =>
      Effect.acquireUseRelease(Effect.sync(() => permits++), () => effect, () => Effect.sync(() => permits--))
  }
  return { deps, log, permitsHeld: () => permits }
}

const cellWith = (spec: Omit<CredentialFamily.CredentialKindSpec, "overlap" | "storage" | "start">, owner: string) => {
  const full: CredentialFamily.CredentialKindSpec = {
    overlap: "classic",
    storage: "cache",
    start: "on-demand",
    ...spec
  }
  const family = CredentialFamily.make({ name: "test", owners: [], classify: () => "transient", kinds: [full] })
  return Cell.make({ appId: owner as OwnerId, kind: spec.kind }, full, family, owner, undefined)
}

describe("engine issue", () => {
  it.effect("resolves the declared inputs in order, of this owner or the one named, and holds a permit around issue only", () =>
    Effect.gen(function*() {
      const fake = engine(new Map([[`${APP}/platform_token`, "p1"], [`${AUTHORIZER}/refresh`, "r1"]]))
      const seen: Array<unknown> = []
      const cell = cellWith({
        kind: "member" as CredentialKind,
        inputs: [{ kind: "platform_token" as CredentialKind, ownerOf: () => APP }, {
          kind: "refresh" as CredentialKind
        }],
        issue: (request) =>
          Effect.sync(() => {
            seen.push([request.owner, request.force, request.inputs.map((input) => input.value), fake.permitsHeld()])
            return { value: "m1", expiresInSeconds: 60 }
          })
      }, AUTHORIZER)
      expect(yield* Issue.make(fake.deps)(cell, true)).toEqual({ value: "m1", expiresInSeconds: 60 })
      expect(seen).toEqual([[AUTHORIZER, true, ["p1", "r1"], 1]])
      expect(fake.permitsHeld()).toBe(0)
    }))

  it.effect("a rejected input is compare-and-refreshed once and issue asked again; rejected again, the fetch fails", () =>
    Effect.gen(function*() {
      const fake = engine(new Map([[`${APP}/token`, "t1"]]))
      const asked: Array<string> = []
      const cell = cellWith({
        kind: "ticket" as CredentialKind,
        inputs: [{ kind: "token" as CredentialKind }],
        issue: ({ inputs: [token] }) => {
          asked.push(token!.value)
          return token!.value === "t1+" && asked.length < 3
            ? Effect.succeed({ value: "ticket", expiresInSeconds: 60 })
            : new CredentialFamily.InputRejected({ input: 0, error: rejected })
        }
      }, APP)
      const issue = Issue.make(fake.deps)
      expect((yield* issue(cell, false)).value).toBe("ticket")
      expect([asked, fake.log]).toEqual([["t1", "t1+"], [`refresh ${APP}/token t1`]])
      expect(yield* Effect.exit(issue(cell, false))).toEqual(Exit.fail(rejected))
      expect(asked).toEqual(["t1", "t1+", "t1+", "t1++"])
    }))

  it.effect("values issued alongside are put before the credential is answered; a revoked owner is retired", () =>
    Effect.gen(function*() {
      const fake = engine(new Map())
      let revoked = false
      const cell = cellWith({
        kind: "member" as CredentialKind,
        issue: () =>
          revoked
            ? new CredentialFamily.OwnerRevoked({ error: rejected })
            : Effect.sync(() => {
              fake.log.push("issued")
              return {
                issued: { value: "m1", expiresInSeconds: 60 },
                alongside: [{ kind: "refresh" as CredentialKind, issued: { value: "r2", expiresInSeconds: 600 } }]
              }
            })
      }, AUTHORIZER)
      const issue = Issue.make(fake.deps)
      expect((yield* issue(cell, false)).value).toBe("m1")
      revoked = true
      expect(yield* Effect.exit(issue(cell, false))).toEqual(Exit.fail(rejected))
      expect(fake.log).toEqual(["issued", `put ${AUTHORIZER}/refresh r2`, `retire ${AUTHORIZER}`])
    }))

  it.effect("a pushed input whose refresh could only ask for a push is waited for until the push lands", () =>
    Effect.gen(function*() {
      const values = new Map([[`${APP}/ticket`, "v1"]])
      const fake = engine(values)
      const missing = new MissingInput({ appId: APP, kind: "ticket", detail: "asked WeChat to push one" })
      const deps = { ...fake.deps, refresh: () => Effect.fail(missing) }
      const cell = cellWith({
        kind: "token" as CredentialKind,
        inputs: [{ kind: "ticket" as CredentialKind, awaitsPush: true }],
        issue: ({ inputs: [ticket] }) =>
          ticket!.value === "v2"
            ? Effect.succeed({ value: "token", expiresInSeconds: 60 })
            : new CredentialFamily.InputRejected({ input: 0, error: rejected })
      }, APP)
      const fiber = yield* Effect.fork(Issue.make(deps)(cell, false))
      yield* TestClock.adjust(1_000)
      values.set(`${APP}/ticket`, "v2")
      yield* TestClock.adjust(250)
      expect((yield* Fiber.join(fiber)).value).toBe("token")
      // No push: the wait ends with the missing input.
      values.set(`${APP}/ticket`, "v1")
      const waiting = yield* Effect.fork(Effect.exit(Issue.make(deps)(cell, false)))
      yield* TestClock.adjust(10_000)
      expect(yield* Fiber.join(waiting)).toEqual(Exit.fail(missing))
    }))

  it.effect("a pushed input rejected again after its replacement came is missing, not the rejection's error", () =>
    Effect.gen(function*() {
      const values = new Map([[`${APP}/ticket`, "v1"]])
      const fake = engine(values)
      const missing = new MissingInput({ appId: APP, kind: "ticket", detail: "asked WeChat to push one" })
      const deps = { ...fake.deps, refresh: () => Effect.fail(missing) }
      const refused = new WeChatApiError({ errcode: 61006, errmsg: "component ticket is invalid" })
      const cell = cellWith({
        kind: "token" as CredentialKind,
        inputs: [{ kind: "ticket" as CredentialKind, awaitsPush: true }],
        issue: () => new CredentialFamily.InputRejected({ input: 0, error: refused })
      }, APP)
      const fiber = yield* Effect.fork(Effect.exit(Issue.make(deps)(cell, false)))
      yield* TestClock.adjust(500)
      // A push lands, and WeChat refuses it too: a newer one is on its way.
      values.set(`${APP}/ticket`, "v2")
      yield* TestClock.adjust(250)
      const exit = yield* Fiber.join(fiber)
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "MissingInput", appId: APP, kind: "ticket" })))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("errcode 61006")
    }))
})
