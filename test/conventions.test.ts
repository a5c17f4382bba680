/**
 * Conventions the API reference relies on: every export of a public module
 * (anything outside `internal/`) carries `@since` and `@category`, and the
 * root index re-exports each public module as a namespace named after its file.
 */
import { describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { basename, join, relative } from "node:path"
import ts from "typescript"

const srcDir = new URL("../src/", import.meta.url).pathname

const publicModules = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === "internal" ? [] : publicModules(path)
    return path.endsWith(".ts") && name !== "bin.ts" ? [path] : []
  })

const tagsOf = (node: ts.Node): Set<string> =>
  new Set(
    ts.getJSDocCommentsAndTags(node).flatMap((doc) =>
      ts.isJSDoc(doc) ? (doc.tags ?? []).map((tag) => tag.tagName.text) : [doc.tagName.text]
    )
  )

const nameOf = (statement: ts.Statement): string =>
  ts.isVariableStatement(statement)
    ? statement.declarationList.declarations.map((declaration) => declaration.name.getText()).join(", ")
    : ts.isExportDeclaration(statement)
    ? statement.getText().replace(/\s+/g, " ")
    : (statement as ts.Statement & { readonly name?: ts.Node }).name?.getText() ?? statement.getText().slice(0, 40)

describe("conventions", () => {
  it("every export of a public module has @since and @category", () => {
    const missing: Array<string> = []
    for (const file of publicModules(srcDir)) {
      const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
      for (const statement of source.statements) {
        const exported = ts.isExportDeclaration(statement) ||
          (ts.canHaveModifiers(statement) &&
            (ts.getModifiers(statement) ?? []).some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword))
        if (!exported) continue
        const node = ts.isVariableStatement(statement) ? statement.declarationList.declarations[0]! : statement
        const tags = new Set([...tagsOf(statement), ...tagsOf(node)])
        for (const tag of ["since", "category"]) {
          if (!tags.has(tag)) missing.push(`${relative(srcDir, file)}: ${nameOf(statement)} has no @${tag}`)
        }
      }
    }
    expect(missing).toEqual([])
  })

  it("the root index re-exports public modules as namespaces named after their files", () => {
    const index = readFileSync(join(srcDir, "index.ts"), "utf8")
    const exports = [...index.matchAll(/^export (.*) from "(.*)"$/gm)]
    expect(exports.length).toBeGreaterThan(0)
    for (const [line, clause, path] of exports) {
      expect(clause, line).toBe(`* as ${basename(path!, ".js")}`)
    }
  })
})
