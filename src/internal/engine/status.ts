/**
 * What `/readyz`, `/metrics` and the authorizer pages see of the engine:
 * every cell's status, and every retired owner's, in one synchronous pass.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { AccessTokenError } from "../../AccessToken.js"
import type { OwnerId as Owner } from "../../OwnerId.js"
import type { CredentialKind, TokenRecord } from "../../Token.js"
import type { CredentialStatus, StatusCounts } from "../../TokenEngine.js"
import * as Cell from "./cell.js"
import type { Owners } from "./owners.js"

/** @internal */
export const make = (owners: Pick<Owners, "cells" | "retired" | "labelOf" | "table">) => {
  // One synchronous pass: with 100,000 cells, an Effect step per cell
  // would cost /readyz and /metrics more than everything else they do.
  // The pass shows every cell through one reused view, so it allocates
  // nothing per cell: a visitor copies (`{ ...status }`, which reads the
  // getters) only what it keeps. Measured at 100,000 authorizers, a fresh
  // status object and `Option` per cell made the pass 3-4x slower.
  let current: Cell.Cell | undefined
  // The owner id is read through the cell only when a visitor asks.
  const view = {
    get appId(): Owner {
      return current!.key.appId
    },
    kind: "" as CredentialKind,
    metricsLabel: "",
    valid: false,
    retired: false,
    get record(): Option.Option<TokenRecord> {
      const held = current?.held
      return held === undefined ? Option.none() : Option.some(held.record)
    },
    get lastError(): Option.Option<AccessTokenError> {
      const failure = current?.lastFailure
      return failure === undefined ? Option.none() : Option.some(failure.error)
    }
  }
  const show = (cell: Cell.Cell, now: number): CredentialStatus => {
    current = cell
    view.kind = cell.spec.kind
    view.metricsLabel = cell.label
    view.valid = Cell.isUsableUntil(cell.usableUntil, now)
    return view
  }
  const retiredStatus = ({ record }: { readonly record: TokenRecord }): CredentialStatus => ({
    appId: record.appId,
    kind: record.kind,
    metricsLabel: owners.labelOf(record.appId),
    valid: false,
    record: Option.some(record),
    lastError: Option.none(),
    retired: true
  })

  const visitStatuses = (now: number, visit: (status: CredentialStatus) => void): void => {
    for (const cell of owners.cells()) visit(show(cell, now))
    for (const retired of owners.retired()) visit(retiredStatus(retired))
  }

  const eachStatus = (visit: (status: CredentialStatus) => void): Effect.Effect<void> =>
    Effect.clockWith((clock) => Effect.sync(() => visitStatuses(clock.unsafeCurrentTimeMillis(), visit)))

  const status: Effect.Effect<ReadonlyArray<CredentialStatus>> = Effect.suspend(() => {
    const statuses: Array<CredentialStatus> = []
    return Effect.as(eachStatus((status) => statuses.push({ ...status })), statuses)
  })

  // The columns of `cellTable.ts` are counted; only the few statuses listed
  // are built, each a copy of the view.
  const countStatuses = (listInvalid: number): Effect.Effect<StatusCounts> =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const { groups, labelled } = owners.table.count(now)
        const retired: Array<CredentialStatus> = []
        let retiredCount = 0
        for (const owner of owners.retired()) {
          retiredCount += 1
          const status = retiredStatus(owner)
          if (status.metricsLabel === status.appId) retired.push(status)
        }
        return {
          counts: groups.map(({ invalid, kind, label, labelled, valid }) => ({
            metricsLabel: label,
            kind,
            labelled,
            valid,
            invalid
          })),
          retired: retiredCount,
          labelled: [...labelled.map((cell) => ({ ...show(cell, now) })), ...retired],
          // The rows are scanned again only when the count found an invalid one.
          invalid: listInvalid > 0 && groups.some((group) => group.invalid > 0)
            ? owners.table.invalid(now, listInvalid).map((cell) => ({ ...show(cell, now) }))
            : []
        }
      })
    )

  return { eachStatus, status, countStatuses }
}
