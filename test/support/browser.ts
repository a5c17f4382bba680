/**
 * Headless Chromium for the tests that look at a page as people do:
 * Debian's `chromium` (installed by `.ci/ensure-tools.sh`) driven by
 * playwright-core. Every page records each request it makes, so a test can
 * say where the page went for its files; everything is closed with the scope.
 */
import { Effect, type Scope } from "effect"
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core"

/** Where Chromium is; `CHROMIUM_PATH` overrides Debian's place. */
export const CHROMIUM_PATH = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

/** A browser for the scope. */
export const launch: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      // Containers have neither a user namespace for the sandbox nor a large /dev/shm.
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    })
  ),
  (browser) => Effect.promise(() => browser.close())
)

export interface OpenPage {
  readonly page: Page
  /** The URL of every request the page made, in order. */
  readonly requests: ReadonlyArray<string>
}

/** A page in a context of its own (cookies, viewport, JavaScript on or off), closed with the scope. */
export const open = (
  browser: Browser,
  options: BrowserContextOptions = {}
): Effect.Effect<OpenPage, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const context = await browser.newContext(options)
      const page = await context.newPage()
      const requests: Array<string> = []
      page.on("request", (request) => requests.push(request.url()))
      return { context, page, requests }
    }),
    ({ context }) => Effect.promise(() => context.close())
  )

/** Runs a step of the page's script (playwright's promises) inside Effect; a failed step fails the test. */
export const step = <A>(run: () => Promise<A>): Effect.Effect<A> => Effect.promise(run)
