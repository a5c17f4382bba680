import { describe, expect, it } from "@effect/vitest"
import * as Cell from "../../../src/internal/engine/cell.js"
import * as CellTable from "../../../src/internal/engine/cellTable.js"
import type { OwnerId } from "../../../src/OwnerId.js"
import { APP, families, makeIssuer, record, TOKEN } from "./fixtures.js"

const family = families(makeIssuer())[0]
const cellOf = (owner: string, fetchedAt?: number) =>
  Cell.make(
    { appId: owner as OwnerId, kind: TOKEN },
    family.kinds[0],
    family,
    owner,
    fetchedAt === undefined ? undefined : Cell.toHeld(record({ value: owner, fetchedAt }, owner))
  )
const COUNTED = "*"

describe("engine cell table", () => {
  it("counts each label and kind from its columns, and hands over the cells of owners labelled by themselves", () => {
    const table = CellTable.make()
    const held = cellOf("wx0000000000000001", 0)
    const empty = cellOf("wx0000000000000002")
    const own = cellOf(APP, 0)
    table.add(held, COUNTED, TOKEN)
    table.add(empty, COUNTED, TOKEN)
    table.add(own, APP, TOKEN)
    const { groups, labelled } = table.count(60_000)
    expect(groups).toEqual([
      { label: COUNTED, kind: TOKEN, labelled: false, valid: 1, invalid: 1 },
      { label: APP, kind: TOKEN, labelled: true, valid: 1, invalid: 0 }
    ])
    expect(labelled).toEqual([own])
    expect(table.invalid(60_000, 10)).toEqual([empty])
    // A credential held is valid from its row; two hours on, none is.
    table.setUsableUntil(empty, held.usableUntil)
    expect(table.isValid(empty, 60_000)).toBe(true)
    expect(table.invalid(60_000, 10)).toEqual([])
    expect(table.invalid(7_200_000, 2)).toEqual([held, empty])
    expect(table.count(7_200_000).groups.map(({ invalid, valid }) => [valid, invalid])).toEqual([[0, 2], [0, 1]])
  })

  it("frees the row of a removed cell for the next, and grows past its first rows", () => {
    const table = CellTable.make()
    const cells = Array.from({ length: 3_000 }, (_, index) => cellOf(`wx${index.toString(16).padStart(16, "0")}`, 0))
    for (const cell of cells) table.add(cell, COUNTED, TOKEN)
    expect(table.count(0).groups).toEqual([{ label: COUNTED, kind: TOKEN, labelled: false, valid: 3_000, invalid: 0 }])
    const gone = cells[1_500]!
    const row = gone.row
    table.remove(gone)
    expect(gone.row).toBe(-1)
    expect(table.isValid(gone, 0)).toBe(false)
    expect(table.count(0).groups[0]!.valid).toBe(2_999)
    const next = cellOf("wxffff000000000000")
    table.add(next, COUNTED, TOKEN)
    expect(next.row).toBe(row)
    expect(table.count(0).groups[0]).toMatchObject({ valid: 2_999, invalid: 1 })
    expect(table.invalid(0, 10)).toEqual([next])
  })
})
