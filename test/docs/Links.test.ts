/**
 * Every relative link of the README and the guides resolves: the file or
 * folder exists, and a `#anchor` names a heading of the page it points at.
 * Moving a section from one page to another cannot leave a link behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { anchors, links, type Page, pages, root } from "./markdown.js"

const anchorsOf = (path: string): Set<string> => anchors({ path, text: readFileSync(join(root, path), "utf8") })

const brokenLinks = (page: Page): Array<string> =>
  links(page).flatMap(({ line, target }) => {
    if (/^[a-z][a-z+.-]*:/i.test(target)) return []
    const [file, anchor] = target.split("#") as [string, string | undefined]
    const path = file === "" ? page.path : relative(root, join(root, dirname(page.path), file))
    const where = `${page.path}:${line} ${target}`
    if (path !== page.path && !existsSync(join(root, path))) return [`${where}: no such file`]
    if (anchor === undefined) return []
    if (!path.endsWith(".md")) return [`${where}: an anchor into a file that is not Markdown`]
    const headings = path === page.path ? anchors(page) : anchorsOf(path)
    return headings.has(decodeURIComponent(anchor)) ? [] : [`${where}: no such heading`]
  })

describe("the README and docs/*.md", () => {
  it("link only files that exist, and only headings that exist", () => {
    expect(pages.map((page) => page.path)).toContain("docs/server.md")
    expect(pages.flatMap(links).length).toBeGreaterThan(100)
    expect(pages.flatMap(brokenLinks)).toEqual([])
  })

  it("the checker reports a missing file, a missing heading and an anchor into code, and passes the rest", () => {
    const page = {
      path: "docs/x.md",
      text: [
        "# Here",
        "[a](server.md#no-such-heading) [b](nowhere.md) [c](../deploy/Dockerfile#top) `[d](inline-code.md)`",
        "[e](server.md#shutdown) ![f](console.png) [g](#here) [h](wecom.md#wecom-企业微信) [i](https://example.com)",
        "```sh",
        "[j](in-a-block.md)",
        "```",
        "[k](#nowhere)"
      ].join("\n")
    }
    expect(brokenLinks(page)).toEqual([
      "docs/x.md:2 server.md#no-such-heading: no such heading",
      "docs/x.md:2 nowhere.md: no such file",
      "docs/x.md:2 ../deploy/Dockerfile#top: an anchor into a file that is not Markdown",
      "docs/x.md:7 #nowhere: no such heading"
    ])
  })

  it("every guide is reachable from the README", () => {
    const readme = pages.find((page) => page.path === "README.md")!
    const linked = new Set(links(readme).map(({ target }) => target.split("#")[0]))
    expect(pages.filter((page) => page.path !== "README.md" && !linked.has(page.path)).map((page) => page.path))
      .toEqual([])
  })
})
