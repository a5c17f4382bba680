/**
 * /docs on an isolated intranet: every request the page makes in headless
 * Chromium goes to the server that serves it (no fonts or scripts from a
 * CDN), and it shows no links out to scalar.com ("Share", "Generate SDKs").
 * The browser may reach nothing else: a request elsewhere is recorded and
 * aborted, as a firewall would.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { spawnServer, waitReady } from "../support/serverProcess.js"

describe("the /docs page", () => {
  it.scopedLive("makes requests to the server's own origin only, and links nowhere else", () =>
    Effect.gen(function*() {
      const server = yield* spawnServer()
      yield* waitReady(server)
      const browser = yield* Effect.acquireRelease(
        Effect.promise(() => chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] })),
        (browser) => Effect.promise(() => browser.close())
      )
      const { links, requested } = yield* Effect.promise(async () => {
        const page = await browser.newPage()
        const requested: Array<string> = []
        await page.route("**/*", (route) => {
          const url = route.request().url()
          requested.push(url)
          return url.startsWith(`${server.base}/`) || url.startsWith("data:")
            ? route.continue()
            : route.abort("blockedbyclient")
        })
        await page.goto(`${server.base}/docs`, { waitUntil: "load", timeout: 60_000 })
        // Rendered: the operations are listed, and the fonts and scripts they need were asked for.
        await page.waitForSelector("text=The current access token", { timeout: 60_000 })
        await page.waitForLoadState("networkidle", { timeout: 60_000 })
        const links = await page.$$eval(
          "a[href]",
          (anchors) => anchors.filter((anchor) => anchor.getClientRects().length > 0).map((anchor) => anchor.href)
        )
        return { links, requested }
      })
      expect(requested.length).toBeGreaterThan(0)
      expect(requested.filter((url) => !url.startsWith(`${server.base}/`) && !url.startsWith("data:"))).toEqual([])
      expect(links.filter((href) => /^https?:\/\/([^/]+\.)?scalar\.com\b/.test(href))).toEqual([])
    }), 120_000)
})
