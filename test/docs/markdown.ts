/**
 * The README and the guides as the documentation tests read them: their
 * fenced blocks, headings and links, outside code.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"

export const root = new URL("../../", import.meta.url).pathname

export interface Page {
  /** The path from the repository's root: `README.md`, `docs/server.md`. */
  readonly path: string
  readonly text: string
}

/** README.md and every guide directly under docs/ (docs/api/ is generated from the JSDoc, not written). */
export const pages: ReadonlyArray<Page> = [
  join(root, "README.md"),
  ...readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) =>
    join(root, "docs", name)
  )
].map((file) => ({ path: relative(root, file), text: readFileSync(file, "utf8") }))

export interface Block {
  readonly page: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly language: string
  readonly code: string
  /** The reason of a `<!-- not run: REASON -->` comment on the line above the fence. */
  readonly notRun: string | undefined
}

export const blocks = (page: Page): Array<Block> => {
  const lines = page.text.split("\n")
  const found: Array<Block> = []
  for (let index = 0; index < lines.length; index++) {
    const opening = /^```(\S*)$/.exec(lines[index]!)
    if (opening === null) continue
    const end = lines.indexOf("```", index + 1)
    found.push({
      page: page.path,
      line: index + 1,
      language: opening[1]!,
      code: lines.slice(index + 1, end).join("\n") + "\n",
      notRun: /^<!-- not run: (.+) -->$/.exec(lines[index - 1] ?? "")?.[1]
    })
    index = end
  }
  return found
}

/** The page's lines, blank inside fenced blocks and with inline code removed: what a reader sees as prose. */
const prose = (page: Page): Array<string> => {
  let fenced = false
  return page.text.split("\n").map((line) => {
    if (line.startsWith("```")) {
      fenced = !fenced
      return ""
    }
    return fenced ? "" : line.replace(/`[^`]*`/g, "")
  })
}

/** GitHub's anchor for a heading: lower case, punctuation dropped (CJK kept), spaces to `-`, repeats numbered. */
export const anchors = (page: Page): Set<string> => {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  let fenced = false
  for (const line of page.text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line)
    if (heading === null) continue
    const base = heading[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-")
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

/** Every `[text](target)` and `![alt](target)` in the prose, with the line it is on. */
export const links = (page: Page): Array<{ readonly line: number; readonly target: string }> =>
  prose(page).flatMap((line, index) =>
    [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => ({ line: index + 1, target: match[1]! }))
  )

/**
 * TypeScript blocks that are fragments, not programs: a call shown alone, its
 * names left to the reader's code (`page:line` of the fence, and why).
 */
export const FRAGMENTS: Record<string, string> = {
  "docs/console.md:15": "one NodeServer.layer call, its host, port, keys and imports being the reader's"
}

export const isFragment = (block: Block): boolean => FRAGMENTS[`${block.page}:${block.line}`] !== undefined
