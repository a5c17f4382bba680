/**
 * docs/production.md against what the repository ships: every file it links
 * exists, the production command it names is the one the systemd unit and the
 * Dockerfile run, and the paths it tells an operator to create are the ones
 * the unit reads.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"

const root = new URL("../../", import.meta.url).pathname
const guidePath = join(root, "docs", "production.md")
const guide = readFileSync(guidePath, "utf8")
const unit = readFileSync(join(root, "deploy", "systemd", "effect-wechat-token.service"), "utf8")
const dockerfile = readFileSync(join(root, "deploy", "Dockerfile"), "utf8")

describe("docs/production.md", () => {
  it("links only files that exist", () => {
    const links = [...guide.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)].map((match) => match[1]!)
      .filter((link) => !/^[a-z]+:/.test(link))
    expect(links.length).toBeGreaterThan(5)
    expect(links.filter((link) => !existsSync(join(dirname(guidePath), link)))).toEqual([])
  })

  it("names the compiled bin as the production command, as the unit and the Dockerfile run it", () => {
    expect(guide).toContain("node node_modules/effect-wechat-token/dist/bin.js serve")
    expect(unit).toMatch(
      /^ExecStart=\/usr\/bin\/node \/opt\/effect-wechat-token\/node_modules\/effect-wechat-token\/dist\/bin\.js serve$/m
    )
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "/app/node_modules/effect-wechat-token/dist/bin.js"]`)
    expect(dockerfile).toMatch(/^USER node$/m)
  })

  it("tells the operator the paths the unit reads", () => {
    const paths = [...guide.matchAll(/^\| `(\/(?:etc|var)\/[^`]+)` \|/gm)].map((match) => match[1]!)
    expect(paths.length).toBeGreaterThanOrEqual(4)
    expect(paths.filter((path) => !unit.includes(path))).toEqual([])
  })
})
