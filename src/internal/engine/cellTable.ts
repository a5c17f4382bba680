/**
 * What `/readyz` and `/metrics` count, kept in flat columns: one row per
 * live cell, holding its group (metrics label and kind) and the usable end
 * of what it holds. Counting a million credentials is then one pass over
 * two typed arrays, a few milliseconds, instead of a walk over a million
 * cells scattered across a GB of heap (hundreds of milliseconds: the walk
 * is bound by cache misses, not instructions).
 *
 * @internal
 */
import type { CredentialKind } from "../../Token.js"
import type { Cell } from "./cell.js"
import { isUsableUntil } from "./cell.js"

/** The cells of one metrics label and kind. */
export interface Group {
  readonly label: string
  readonly kind: CredentialKind
  /**
   * Whether its owner is labelled by itself (the label is the owner's id):
   * then the group is that one cell, which metrics show one by one.
   */
  readonly labelled: boolean
}

/** How many cells of a group hold a valid credential at the time of the count, and how many do not. */
export interface GroupCount extends Group {
  readonly valid: number
  readonly invalid: number
}

/** @internal */
export interface CellTable {
  /** Gives `cell` a row in the group of `label` and `kind`. */
  readonly add: (cell: Cell, label: string, kind: CredentialKind) => void
  /** Frees the row of `cell`, which is no longer live. */
  readonly remove: (cell: Cell) => void
  /** The usable end of what `cell` holds changed (0: none). */
  readonly setUsableUntil: (cell: Cell, usableUntil: number) => void
  /** Whether `cell` holds a credential usable at `now`, read from its row. */
  readonly isValid: (cell: Cell, now: number) => boolean
  /** Every group with at least one cell, counted at `now`, and the cells of the labelled ones. */
  readonly count: (now: number) => { readonly groups: ReadonlyArray<GroupCount>; readonly labelled: Array<Cell> }
  /** The first `limit` cells, in row order, that hold no credential usable at `now`. */
  readonly invalid: (now: number, limit: number) => Array<Cell>
}

const INITIAL_ROWS = 1_024

/** @internal */
export const make = (): CellTable => {
  let groupOf = new Int32Array(INITIAL_ROWS).fill(-1)
  let usableUntil = new Float64Array(INITIAL_ROWS)
  // Rows in use are below `rows`; freed rows below it wait in `free`.
  let rows = 0
  const free: Array<number> = []
  // The cell of each row, for the few a pass lists.
  const cellAt: Array<Cell | undefined> = []
  const groups: Array<Group> = []
  const groupIds = new Map<string, Map<CredentialKind, number>>()

  const groupId = (label: string, kind: CredentialKind, labelled: boolean): number => {
    let byKind = groupIds.get(label)
    if (byKind === undefined) groupIds.set(label, byKind = new Map())
    const known = byKind.get(kind)
    if (known !== undefined) return known
    byKind.set(kind, groups.length)
    groups.push({ label, kind, labelled })
    return groups.length - 1
  }

  const grow = () => {
    const nextGroupOf = new Int32Array(groupOf.length * 2).fill(-1)
    nextGroupOf.set(groupOf)
    const nextUsableUntil = new Float64Array(usableUntil.length * 2)
    nextUsableUntil.set(usableUntil)
    groupOf = nextGroupOf
    usableUntil = nextUsableUntil
  }

  return {
    add: (cell, label, kind) => {
      let row = free.pop()
      if (row === undefined) {
        if (rows === groupOf.length) grow()
        row = rows++
      }
      groupOf[row] = groupId(label, kind, label === cell.key.appId)
      usableUntil[row] = cell.usableUntil
      cellAt[row] = cell
      cell.row = row
    },
    remove: (cell) => {
      if (cell.row < 0) return
      groupOf[cell.row] = -1
      usableUntil[cell.row] = 0
      cellAt[cell.row] = undefined
      free.push(cell.row)
      cell.row = -1
    },
    setUsableUntil: (cell, until) => {
      if (cell.row >= 0) usableUntil[cell.row] = until
    },
    isValid: (cell, now) => cell.row >= 0 && isUsableUntil(usableUntil[cell.row]!, now),
    count: (now) => {
      const valid = new Float64Array(groups.length)
      const total = new Float64Array(groups.length)
      const labelledGroup = Uint8Array.from(groups, (group) => group.labelled ? 1 : 0)
      const labelled: Array<Cell> = []
      for (let row = 0; row < rows; row++) {
        const group = groupOf[row]!
        if (group < 0) continue
        total[group] += 1
        if (isUsableUntil(usableUntil[row]!, now)) valid[group] += 1
        if (labelledGroup[group] === 1) labelled.push(cellAt[row]!)
      }
      const counts: Array<GroupCount> = []
      groups.forEach((group, id) => {
        if (total[id]! > 0) counts.push({ ...group, valid: valid[id]!, invalid: total[id]! - valid[id]! })
      })
      return { groups: counts, labelled }
    },
    invalid: (now, limit) => {
      const found: Array<Cell> = []
      for (let row = 0; row < rows && found.length < limit; row++) {
        if (groupOf[row]! >= 0 && !isUsableUntil(usableUntil[row]!, now)) found.push(cellAt[row]!)
      }
      return found
    }
  }
}
