/**
 * The console's credential table: one page of the engine's statuses,
 * searched by owner and filtered by family, kind and state, in one pass over
 * `eachStatus` that keeps only the page (100,000 credentials are filtered
 * and counted in milliseconds; nothing is copied but the rows shown).
 */
import { Clock, Effect, Option, Schema } from "effect"
import { failureCause } from "../../../AccessToken.js"
import * as OwnerId from "../../../OwnerId.js"
import { usableUntil } from "../../../Token.js"
import type { CredentialStatus, TokenEngineShape } from "../../../TokenEngine.js"

export const FAMILIES = ["official-account", "wecom", "component", "authorizer"] as const
export const STATES = ["valid", "failing", "invalid", "retired"] as const
export const PAGE_SIZES = [25, 50, 100] as const

// A query parameter is there or not; never `undefined`.
const EXACT = { exact: true } as const

const optionalText = (max: number, what: string) =>
  Schema.optionalWith(
    Schema.String.pipe(Schema.maxLength(max, { message: () => `${what}: at most ${max} characters` })),
    EXACT
  )

// Each rule's own message: a 400 names the rule, never echoes the value sent.
const oneOf = <const A extends ReadonlyArray<string>>(name: string, values: A) =>
  Schema.String.pipe(
    Schema.filter((value): value is "" | A[number] => value === "" || values.includes(value), {
      message: () => `${name}: one of ${values.join(", ")}, or empty`
    })
  )

/** The table's query, as the page's form and `/console/api/credentials` send it. */
export const Query = Schema.Struct({
  q: optionalText(100, "q (owner search)"),
  family: Schema.optionalWith(oneOf("family", FAMILIES), EXACT),
  kind: optionalText(64, "kind"),
  state: Schema.optionalWith(oneOf("state", STATES), EXACT),
  page: Schema.optionalWith(
    Schema.NumberFromString.pipe(
      Schema.int(),
      Schema.between(1, 1_000_000),
      Schema.annotations({ message: () => "page: a whole number from 1" })
    ),
    EXACT
  ),
  size: Schema.optionalWith(
    Schema.NumberFromString.pipe(
      Schema.filter((size) => (PAGE_SIZES as ReadonlyArray<number>).includes(size)),
      Schema.annotations({ message: () => `size: one of ${PAGE_SIZES.join(", ")}` })
    ),
    EXACT
  )
})
export type Query = typeof Query.Type

export interface Row {
  readonly owner: string
  readonly family: typeof FAMILIES[number]
  readonly kind: string
  readonly state: typeof STATES[number]
  /** Seconds the held value stays usable; `null` when none is held. */
  readonly expiresIn: number | null
  /** Seconds until the planned refresh (negative: overdue, waiting on pacing); `null` when none is planned. */
  readonly refreshIn: number | null
  /** The last failure's cause code and what the operator should do about it (the error's own message). */
  readonly lastFailure: { readonly code: string; readonly advice: string } | null
  /** Whether the console may retire this owner: authorizers only. */
  readonly retirable: boolean
}

export interface Page {
  readonly rows: ReadonlyArray<Row>
  /** Credentials matching the query. */
  readonly matched: number
  /** Credentials in the engine. */
  readonly total: number
  readonly page: number
  readonly pages: number
  readonly size: number
  /** Credentials due for refresh and not yet refreshed: the pacing backlog. */
  readonly overdue: number
}

export const familyOf = (owner: string, kind: string): typeof FAMILIES[number] =>
  OwnerId.isAuthorizer(owner)
    ? "authorizer"
    : OwnerId.isWeCom(owner)
    ? "wecom"
    : kind.startsWith("component_")
    ? "component"
    : "official-account"

const stateOf = (status: CredentialStatus): typeof STATES[number] =>
  status.retired ? "retired" : !status.valid ? "invalid" : Option.isSome(status.lastError) ? "failing" : "valid"

const rowOf = (status: CredentialStatus, now: number): Row => {
  const record = Option.getOrUndefined(status.record)
  const error = Option.getOrUndefined(status.lastError)
  return {
    owner: status.appId,
    family: familyOf(status.appId, status.kind),
    kind: status.kind,
    state: stateOf(status),
    expiresIn: record === undefined || !status.valid
      ? null
      : Math.max(0, Math.floor((usableUntil(record) - now) / 1_000)),
    refreshIn: record === undefined || status.retired ? null : Math.floor((record.refreshAt - now) / 1_000),
    lastFailure: error === undefined ? null : { code: failureCause(error), advice: error.message },
    retirable: OwnerId.isAuthorizer(status.appId) && !status.retired
  }
}

export const DEFAULT_SIZE = 50

export const page = (engine: TokenEngineShape, query: Query): Effect.Effect<Page> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const size = query.size ?? DEFAULT_SIZE
    const wanted = query.page ?? 1
    const search = (query.q ?? "").trim().toLowerCase()
    const family = query.family === "" ? undefined : query.family
    const kind = query.kind === "" ? undefined : query.kind
    const state = query.state === "" ? undefined : query.state
    const from = (wanted - 1) * size
    const rows: Array<Row> = []
    let matched = 0
    let total = 0
    let overdue = 0
    yield* engine.eachStatus((status) => {
      total += 1
      if (!status.retired && Option.isSome(status.record) && status.record.value.refreshAt <= now) overdue += 1
      if (search !== "" && !status.appId.toLowerCase().includes(search)) return
      if (kind !== undefined && status.kind !== kind) return
      if (family !== undefined && familyOf(status.appId, status.kind) !== family) return
      if (state !== undefined && stateOf(status) !== state) return
      if (matched >= from && rows.length < size) rows.push(rowOf(status, now))
      matched += 1
    })
    const pages = Math.max(1, Math.ceil(matched / size))
    return { rows, matched, total, page: wanted, pages, size, overdue }
  })
