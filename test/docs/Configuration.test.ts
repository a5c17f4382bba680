/**
 * docs/configuration.md's table, the list behind it (and behind `--help`)
 * and the variables the config code reads are one and the same: a variable
 * added to the code without a row, a row for a variable nothing reads, or a
 * default or meaning edited in one place only fails here.
 */
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { groups, variables } from "../../src/internal/environment.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"

const root = new URL("../../", import.meta.url).pathname
const srcDir = join(root, "src")

// The emulator reads no configuration, and the list itself names every variable.
const readers = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === "testing" ? [] : readers(path)
    return path.endsWith(".ts") && path !== join(srcDir, "internal", "environment.ts") ? [path] : []
  })

// A variable is read by a `Config` constructor (`Config.string("HOST")`,
// `Config.literal(…)("LOG_FORMAT")`) or by the helpers built on them.
const READ = /(?:\bConfig\.[a-zA-Z]+|\bsecret|\bsecretList|\bseconds|\))\(\s*"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)"/g
const READ_AS_SECRET = /\b(?:secret|secretList)\(\s*"([A-Z][A-Z0-9_]*)"/g

const source = readers(srcDir).map((file) => ({ file: relative(root, file), text: readFileSync(file, "utf8") }))
const namesMatching = (pattern: RegExp) =>
  new Set(source.flatMap(({ text }) => [...text.matchAll(pattern)].map((match) => match[1]!)))

const rowsOf = (markdown: string): Array<string> => markdown.split("\n").filter((line) => /^\| (`|\*\*)/.test(line))

const expectedRows = groups.flatMap((group) => [
  `| **${group.title}** | | |`,
  ...group.variables.map((variable) =>
    `| \`${variable.name}\`${
      variable.file === true ? ` (or \`${variable.name}_FILE\`)` : ""
    } | ${variable.default} | ${variable.meaning} |`
  )
])

describe("docs/configuration.md", () => {
  it("has one table row per variable of the list, with its default and meaning, in the list's order", () => {
    const rows = rowsOf(readFileSync(join(root, "docs", "configuration.md"), "utf8"))
    expect(rows.join("\n")).toBe(expectedRows.join("\n"))
  })

  it("lists every variable the config code reads, and nothing it does not read", () => {
    const read = namesMatching(READ)
    const listed = new Set(variables.map((variable) => variable.name))
    expect([...read].filter((name) => !listed.has(name)).sort()).toEqual([])
    expect([...listed].filter((name) => !read.has(name)).sort()).toEqual([])
    expect(listed.size).toBe(variables.length)
  })

  it("is the list start-up checks typos against, each secret also as NAME_FILE", () => {
    expect([...ServerConfig.VARIABLES].sort()).toEqual(
      variables.flatMap((variable) =>
        variable.file === true ? [variable.name, `${variable.name}_FILE`] : [variable.name]
      )
        .sort()
    )
    expect(ServerConfig.unknownVariables(["WECOM_SUITE"])).toEqual([{
      name: "WECOM_SUITE",
      suggestion: "WECOM_SUITES"
    }])
  })

  it("marks exactly the secrets (read as NAME or NAME_FILE) as accepted from a file", () => {
    const secrets = namesMatching(READ_AS_SECRET)
    const fromFile = variables.filter((variable) => variable.file === true).map((variable) => variable.name)
    expect(fromFile.filter((name) => !secrets.has(name)).sort()).toEqual([])
    expect([...secrets].filter((name) => !fromFile.includes(name)).sort()).toEqual([])
  })
})
