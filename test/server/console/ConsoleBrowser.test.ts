/**
 * The console in headless Chromium against a real server (the WeChat
 * emulator behind it, 100,000 synthetic authorizers beside its real app):
 * sign in, the table and the plots, search and page, an action confirmed in
 * the page and seen upstream, at desktop and phone widths, without
 * JavaScript, and under axe-core. Screenshots and the measured figures go
 * to `.artifacts/console/` (not committed).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { launch, open, step } from "../../support/browser.js"
import { APP, KEY, OTHER, SECRET, serveUpstream } from "../../support/serverStack.js"
import { ADMIN_KEY, serve as serveAdmin, ServedConsole } from "../admin/adminServer.js"
import { authorizerOf, OPS_KEY, serveConsole } from "./support.js"

const ARTIFACTS = join(process.cwd(), ".artifacts", "console")
const DESKTOP = { width: 1280, height: 900 }
const PHONE = { width: 390, height: 844 }
const TIMEOUT = 60_000

const signIn = (page: Page, base: string, key: string = OPS_KEY) =>
  step(async () => {
    await page.goto(`${base}/console`)
    await page.getByLabel("Ops or admin key").fill(key)
    await Promise.all([page.waitForURL(`${base}/console`), page.getByRole("button", { name: "Sign in" }).click()])
  })

const summary = (page: Page) => step(() => page.locator("#table-summary").innerText())

interface Figures {
  readonly documentBytes: number
  readonly assetBytes: number
  readonly firstContentfulPaintMs: number
  readonly responseEndMs: number
}

// Run in the page, as text: the tests compile without the DOM's types.
// What the page loaded by the time its plots were drawn: bytes over the wire and time to first paint.
const FIGURES = `(() => {
  const resources = performance.getEntriesByType("resource")
  const navigation = performance.getEntriesByType("navigation")[0]
  const paint = performance.getEntriesByName("first-contentful-paint")[0]
  return {
    documentBytes: navigation.transferSize,
    assetBytes: resources.filter((entry) => entry.name.includes("/console/assets/"))
      .reduce((total, entry) => total + entry.transferSize, 0),
    firstContentfulPaintMs: Math.round(paint ? paint.startTime : -1),
    responseEndMs: Math.round(navigation.responseEnd)
  }
})()`
const AXE = `axe.run().then((result) => result.violations
  .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
  .map((violation) => violation.id + " (" + violation.nodes.length + ")"))`

// axe is injected into the page, which the console's CSP would refuse: open the page with `bypassCSP`.
const axeAudit = (page: Page) =>
  step(async () => {
    await page.addScriptTag({ path: createRequire(import.meta.url).resolve("axe-core/axe.min.js") })
    return page.evaluate<Array<string>>(AXE)
  })

const figures = (page: Page) => step(() => page.evaluate<Figures>(FIGURES))

describe("Console in Chromium", () => {
  it.live(
    "signs in, shows the table and plots, searches, pages, and runs a confirmed action",
    () =>
      Effect.gen(function*() {
        mkdirSync(ARTIFACTS, { recursive: true })
        const upstream = yield* serveUpstream()
        const { base } = yield* serveConsole({ upstream, authorizers: 100_000 })
        const browser = yield* launch
        const { page, requests } = yield* open(browser, { viewport: DESKTOP })
        yield* signIn(page, base)
        yield* step(() => page.locator("#timeline canvas").first().waitFor())
        yield* step(() => page.locator("#traffic-chart canvas").first().waitFor())
        yield* step(() => page.locator("#budgets meter").first().waitFor())
        const measured = yield* figures(page)
        expect(yield* step(() => page.locator("#credentials tbody tr").count())).toBe(50)
        expect(yield* summary(page)).toMatch(
          /^Showing 1–50 of 100,001 matching · 100,001 credentials · [\d,]+ overdue$/
        )
        expect(yield* step(() => page.locator("#timeline-summary").innerText())).toMatch(/^Last 24 h: \d+ fetches/)
        const replicas = yield* step(() => page.locator("#replicas").innerText())
        expect(replicas).toContain("(this one)")
        expect(replicas).toMatch(/alive\s+none/)
        yield* step(() => page.screenshot({ path: join(ARTIFACTS, "console-desktop.png") }))

        yield* step(() => page.getByRole("searchbox").fill(authorizerOf(4_321)))
        yield* step(() => page.getByRole("button", { name: "Apply" }).click())
        yield* step(() => page.getByText("Showing 1–1 of 1 matching").waitFor())
        expect(yield* step(() => page.locator("#credentials tbody th").innerText())).toBe(authorizerOf(4_321))

        yield* step(() => page.getByRole("searchbox").fill(""))
        yield* step(() => page.getByLabel("State").selectOption("invalid"))
        yield* step(() => page.getByRole("button", { name: "Apply" }).click())
        yield* step(() => page.getByText("Showing 1–50 of 10,000 matching").waitFor())
        yield* step(() => page.getByRole("link", { name: "Next" }).click())
        yield* step(() => page.getByText("Showing 51–100 of 10,000 matching").waitFor())
        expect(page.url()).toBe(`${base}/console?state=invalid&size=50&page=2`)
        expect(yield* step(() => page.locator("#credentials tbody th").first().innerText())).toBe(authorizerOf(503))

        const before = yield* upstream.tokenFetches
        yield* step(() => page.getByRole("searchbox").fill(APP))
        yield* step(() => page.getByLabel("State").selectOption(""))
        yield* step(() => page.getByRole("button", { name: "Apply" }).click())
        yield* step(() => page.getByText("Showing 1–1 of 1 matching").waitFor())
        const dialogs: Array<string> = []
        page.once("dialog", (dialog) => {
          dialogs.push(dialog.message())
          void dialog.accept()
        })
        yield* step(() => page.getByRole("button", { name: "Refresh" }).click())
        yield* step(() => page.getByRole("status").getByText(`Refreshed the access_token of ${APP}`).waitFor())
        expect(dialogs).toEqual([
          `Refresh the access_token of ${APP} now? WeChat is asked for a new value; the current one is replaced.`
        ])
        expect(yield* upstream.tokenFetches).toBe(before + 1)

        // Nothing outside the server: every request went to its origin.
        expect(requests.filter((url) => new URL(url).origin !== base)).toEqual([])
        expect(requests).toContain(`${base}/console/assets/uplot.js`)

        const phone = yield* open(browser, { viewport: PHONE, isMobile: true, hasTouch: true })
        yield* signIn(phone.page, base)
        yield* step(() => phone.page.locator("#timeline canvas").first().waitFor())
        yield* step(() => phone.page.screenshot({ path: join(ARTIFACTS, "console-phone.png"), fullPage: true }))
        // The page fits the phone; only the table scrolls sideways, inside its own region.
        expect(yield* step(() => phone.page.evaluate<number>("document.documentElement.scrollWidth")))
          .toBeLessThanOrEqual(
            PHONE.width
          )
        expect(phone.requests.filter((url) => new URL(url).origin !== base)).toEqual([])
        // The page as served (the first 50 of 100,001 rows), for its compressed weight.
        const served = yield* step(() => page.request.get(`${base}/console`).then((answer) => answer.text()))
        writeFileSync(join(ARTIFACTS, "console.html"), served)
        writeFileSync(join(ARTIFACTS, "figures.json"), JSON.stringify({ credentials: 100_001, ...measured }, null, 2))
      }).pipe(Effect.scoped),
    TIMEOUT
  )

  it.live("the table works without JavaScript: sign in, filter, page", () =>
    Effect.gen(function*() {
      const upstream = yield* serveUpstream()
      const { base } = yield* serveConsole({ upstream, authorizers: 1_000 })
      const browser = yield* launch
      const { page } = yield* open(browser, { viewport: DESKTOP, javaScriptEnabled: false })
      yield* signIn(page, base)
      expect(yield* summary(page)).toBe("Showing 1–50 of 1,001 matching · 1,001 credentials · 0 overdue")
      yield* step(() => page.getByLabel("Family").selectOption("authorizer"))
      yield* step(() =>
        Promise.all([page.waitForURL(/family=authorizer/), page.getByRole("button", { name: "Apply" }).click()])
      )
      expect(yield* summary(page)).toBe("Showing 1–50 of 1,000 matching · 1,001 credentials · 0 overdue")
      yield* step(() => Promise.all([page.waitForURL(/page=2/), page.getByRole("link", { name: "Next" }).click()]))
      expect(yield* summary(page)).toBe("Showing 51–100 of 1,000 matching · 1,001 credentials · 0 overdue")
      expect(yield* step(() => page.getByRole("button", { name: "Refresh" }).first().isVisible())).toBe(false)
    }).pipe(Effect.scoped), TIMEOUT)

  it.live(
    "an admin key adds an app from the registry's page, without JavaScript, and sees its row",
    () =>
      Effect.gen(function*() {
        const server = yield* serveAdmin.pipe(
          Effect.provideService(ServedConsole, { keys: [Redacted.make(OPS_KEY), Redacted.make(ADMIN_KEY)] })
        )
        const { base } = server
        mkdirSync(ARTIFACTS, { recursive: true })
        const browser = yield* launch
        const { page, requests } = yield* open(browser, { viewport: DESKTOP, javaScriptEnabled: false })
        yield* signIn(page, base, ADMIN_KEY)
        yield* step(() =>
          Promise.all([
            page.waitForURL(`${base}/console/registry`),
            page.getByRole("link", { name: "Apps, WeCom apps and client keys" }).click()
          ])
        )
        const apps = page.getByRole("region", { name: "Apps" })
        expect(yield* step(() => apps.getByRole("row", { name: OTHER }).count())).toBe(0)
        yield* step(() => page.getByLabel("App ID").fill(OTHER))
        yield* step(() => page.getByLabel("AppSecret").fill(SECRET))
        yield* step(() => page.getByLabel("Confirm adding or replacing this app").check())
        yield* step(() =>
          Promise.all([
            page.waitForURL(`${base}/console/registry/apps`),
            page.getByRole("button", { name: "Add app" }).click()
          ])
        )
        expect(yield* step(() => page.getByRole("status").innerText())).toBe(`Added ${OTHER}; its secret works.`)
        const row = apps.getByRole("row", { name: OTHER })
        expect(yield* step(() => row.getByRole("cell").first().innerText())).toBe("classic")
        expect(yield* step(() => row.getByRole("button", { name: "Remove" }).isVisible())).toBe(true)
        // The secret is never put back into the page, not even into its field.
        expect(yield* step(() => page.content())).not.toContain(SECRET)
        expect(yield* step(() => page.getByLabel("AppSecret").inputValue())).toBe("")
        yield* step(() => page.screenshot({ path: join(ARTIFACTS, "console-registry.png"), fullPage: true }))
        // Served at once to a client key.
        expect((yield* server.call("GET", `/v1/apps/${OTHER}/access-token`, KEY)).status).toBe(200)
        expect(requests.filter((url) => new URL(url).origin !== base)).toEqual([])

        const checked = yield* open(browser, { viewport: DESKTOP, bypassCSP: true })
        yield* signIn(checked.page, base, ADMIN_KEY)
        yield* step(() => checked.page.goto(`${base}/console/registry`))
        expect(yield* axeAudit(checked.page)).toEqual([])
      }).pipe(Effect.scoped),
    TIMEOUT
  )

  it.live(
    "axe-core finds no serious or critical violation on the sign-in form or the console",
    () =>
      Effect.gen(function*() {
        const upstream = yield* serveUpstream()
        const { base } = yield* serveConsole({ upstream, authorizers: 200 })
        const browser = yield* launch
        // axe is injected into the page, which the console's CSP would refuse.
        const { page } = yield* open(browser, { viewport: DESKTOP, bypassCSP: true })
        const audit = axeAudit(page)
        yield* step(() => page.goto(`${base}/console`))
        expect(yield* audit).toEqual([])
        yield* signIn(page, base)
        yield* step(() => page.locator("#timeline canvas").first().waitFor())
        yield* step(() => page.locator("#budgets meter").first().waitFor())
        expect(yield* audit).toEqual([])
      }).pipe(Effect.scoped),
    TIMEOUT
  )
})
