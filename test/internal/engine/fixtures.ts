/**
 * What the engine-part tests share: a family whose issuer counts its calls
 * and can be made to fail, a dynamic family, records, and the parts wired
 * over the memory store as the engine wires them.
 */
import { Clock, Effect } from "effect"
import type { AccessTokenError } from "../../../src/AccessToken.js"
import * as CredentialFamily from "../../../src/CredentialFamily.js"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as Fetch from "../../../src/internal/engine/fetch.js"
import * as Job from "../../../src/internal/engine/job.js"
import * as Owners from "../../../src/internal/engine/owners.js"
import * as Scheduler from "../../../src/internal/engine/scheduler.js"
import type { OwnerId } from "../../../src/OwnerId.js"
import type { CredentialKind } from "../../../src/Token.js"
import { TokenRecord } from "../../../src/Token.js"
import * as TokenConfig from "../../../src/TokenConfig.js"
import { TokenStore } from "../../../src/TokenStore.js"

export const APP = TokenConfig.app("wx0123456789abcdef", "secret").appId
export const AUTHORIZER = "wxc0ffee0000000001"
export const TOKEN = "demo_token" as CredentialKind
export const PRESENCE = "demo_grant" as CredentialKind

/** An issuer answering `value-1`, `value-2`, … for two hours each, or `failing` when set. */
export const makeIssuer = () => {
  const state = { calls: 0, failing: undefined as AccessTokenError | undefined }
  const issue = Effect.suspend(() => {
    state.calls += 1
    return state.failing === undefined
      ? Effect.succeed({ value: `value-${state.calls}`, expiresInSeconds: 7_200 })
      : Effect.fail(state.failing)
  })
  return { state, issue }
}

export type Issuer = ReturnType<typeof makeIssuer>

/** One configured owner with an eager token; dynamic owners (`wxc…`) admitted by a durable grant. */
export const families = (issuer: Issuer) =>
  [
    CredentialFamily.make({
      name: "demo",
      owners: [APP],
      classify: () => "transient",
      kinds: [{ kind: TOKEN, overlap: "classic", storage: "cache", start: "eager", issue: () => issuer.issue }]
    }),
    CredentialFamily.make({
      name: "demo-dynamic",
      owners: [],
      dynamic: { accepts: (owner) => owner.startsWith("wxc"), presence: PRESENCE },
      classify: () => "configuration",
      kinds: [{ kind: PRESENCE, overlap: "none", storage: "durable", start: "eager", issue: () => issuer.issue }]
    })
  ] as const

/** A record of `owner`'s `kind`, fetched at `fetchedAt`, due at `refreshAt`, expiring an hour later. */
export const record = (
  fields: {
    readonly value: string
    readonly fetchedAt: number
    readonly refreshAt?: number
    readonly generation?: number
  },
  owner: string = APP,
  kind: CredentialKind = TOKEN
) =>
  new TokenRecord({
    appId: owner as OwnerId,
    kind,
    value: fields.value,
    mode: "classic",
    fetchedAt: fields.fetchedAt,
    expiresAt: fields.fetchedAt + 7_200_000,
    refreshAt: fields.refreshAt ?? fields.fetchedAt + 6_900_000,
    generation: fields.generation ?? 1,
    lineage: "fixture"
  })

/** The scheduler's calls, recorded instead of run. */
export const recordingScheduler = () => {
  const scheduled = new Map<Cell.Cell, number>()
  const removed: Array<Cell.Cell> = []
  let expected = 0
  const scheduler: Pick<Scheduler.Scheduler, "schedule" | "remove" | "expect"> = {
    schedule: (cell, at) => void scheduled.set(cell, at),
    remove: (cell) => void removed.push(cell),
    expect: (held, sign) => {
      if (held !== undefined) expected += sign
    }
  }
  return { scheduler, scheduled, removed, expected: () => expected }
}

/** Owners over the store in context, with a recording scheduler. */
export const ownersOver = Effect.gen(function*() {
  const store = yield* TokenStore
  const recording = recordingScheduler()
  const owners = yield* Owners.make(families(makeIssuer()), store, recording.scheduler)
  return { store, owners, recording }
})

/** Owners, fetch and the job over the store in context, as the engine wires them (the scheduler recording). */
export const parts = (issuer: Issuer) =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const recording = recordingScheduler()
    const owners = yield* Owners.make(families(issuer), store, recording.scheduler)
    const fetch = yield* Fetch.make(store, owners, recording.scheduler, {
      leaseMillis: 15_000,
      leasePollMillis: 100,
      marginMillis: 300_000,
      issue: () => issuer.issue
    })
    // A single replica: it owns every credential.
    const job = Job.make(fetch, { owns: () => true })
    return { store, owners, fetch, job, recording }
  })

export const now = Clock.currentTimeMillis
