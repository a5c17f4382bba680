/**
 * The operator console at `/console`: a sign-in form for ops and admin keys,
 * then one page answering an operator's questions (which credentials fail
 * and why, when refreshes come, how much of today's quotas is burnt, how much
 * the proxy carries, which replicas are there) with a credential table that
 * works without JavaScript, plots of the last 24 hours, and two confirmed,
 * audited actions (compare-and-refresh a credential, retire an authorizer).
 * With the admin API, an admin key's session also has the registry's page
 * (`/console/registry`): the admin API's changes to apps, WeCom apps and
 * client keys as plain forms, made by the same code and in the same audit.
 *
 * Everything is served by the server itself (no CDN): the page, its script
 * and style, and uPlot for the plots (about 20 KB compressed).
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import {
  Clock,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  ParseResult,
  Random,
  type Redacted,
  Schedule,
  Schema
} from "effect"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { hostname } from "node:os"
import { failureCause } from "../../AccessToken.js"
import * as ApiError from "../../api/ApiError.js"
import * as OwnerId from "../../OwnerId.js"
import * as RefreshPolicy from "../../RefreshPolicy.js"
import { StoreDocuments } from "../../StoreDocuments.js"
import { TokenEngine, type TokenEngineShape } from "../../TokenEngine.js"
import type { StoreError, TokenStore } from "../../TokenStore.js"
import { Admin, callerId } from "../admin/Admin.js"
import * as RegistryActions from "../admin/internal/registryActions.js"
import * as CompressedPage from "../internal/compressedPage.js"
import * as Group from "./internal/group.js"
import * as History from "./internal/history.js"
import * as Leases from "./internal/leases.js"
import * as Page from "./internal/page.js"
import * as Registry from "./internal/registry.js"
import * as Rows from "./internal/rows.js"
import { SCRIPT } from "./internal/script.js"
import * as Sessions from "./internal/session.js"
import * as SignInLimit from "./internal/signInLimit.js"

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** The keys that may sign in: the server's ops keys and admin keys. Client keys never. */
  readonly keys: ReadonlyArray<Redacted.Redacted<string>>
  /** How long a session lasts without use; each request extends it. Default 15 minutes. */
  readonly sessionLifetime?: Duration.DurationInput
}

/**
 * @since 0.3.0
 * @category constants
 */
export const DEFAULT_SESSION_LIFETIME: Duration.Duration = Duration.minutes(15)

// WeChat's daily quota of the classic token endpoint, per app.
const CLASSIC_CALLS_PER_DAY = 2_000
// Budget meters shown, the busiest first.
const MAX_BUDGETS = 20

const SECURITY_HEADERS = {
  // Everything the page loads comes from this server; nothing may frame it.
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
} as const

const html = (body: string, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "text/html; charset=utf-8", headers: SECURITY_HEADERS })

const signedOut = ApiError.response(401, "unauthorized", "sign in at /console with an ops or admin key")
const csrfRefused = ApiError.response(
  403,
  "csrf_token_mismatch",
  "send the page's CSRF token in the X-CSRF-Token header (form field csrf)"
)

const cookie = (value: string, maxAgeSeconds: number, secure: boolean) =>
  `${Sessions.COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${
    secure ? "; Secure" : ""
  }`

// Behind a TLS-terminating proxy the cookie is marked `Secure`; on plain
// loopback (a test, an SSH tunnel) it could not be sent back if it were.
const isHttps = (request: HttpServerRequest.HttpServerRequest) => request.headers["x-forwarded-proto"] === "https"

const seeOther = (location: string, setCookie: string) =>
  HttpServerResponse.empty({ status: 303, headers: { location, "set-cookie": setCookie } })

const asset = (body: string | Uint8Array, contentType: string) =>
  HttpServerResponse.uint8Array(typeof body === "string" ? new TextEncoder().encode(body) : body, {
    contentType,
    headers: SECURITY_HEADERS
  })

// uPlot's files, read once from the package on their first request.
const uPlotFile = (file: string) =>
  Effect.promise(() => readFile(createRequire(import.meta.url).resolve(`uplot/dist/${file}`)))

const decodeQuery = Schema.decodeUnknownEither(Rows.Query, { errors: "all" })

const ActionBody = Schema.Struct({
  owner: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  kind: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)))
})
const decodeAction = Schema.decodeUnknownEither(ActionBody)

// Each issue's own message (the field's rule), never the value sent.
const issues = (error: ParseResult.ParseError) =>
  Array.from(new Set(ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => issue.message))).join("; ")

/** Why an action did not happen, as its JSON error body says. */
class ActionFailed extends Data.TaggedError("ActionFailed")<{
  readonly status: number
  readonly code: string
  readonly reason: string
}> {}

interface Budget {
  readonly owner: string
  /** `null` for an app that does not fetch classic tokens (or is not counted one by one). */
  readonly classicFetchesToday: number | null
  /** `null` for an app without stable tokens. */
  readonly forceRefreshesToday: number | null
}

// The busiest configured apps' meters: classic token-endpoint calls today
// (counted per app while apps are labelled one by one in metrics) and
// stable force refreshes spent today.
const budgets = (engine: TokenEngineShape, history: History.View) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const candidates: Array<{ owner: string; label: string; stable: boolean }> = []
    let overdue = 0
    yield* engine.eachStatus((status) => {
      const record = Option.getOrUndefined(status.record)
      if (record !== undefined && !status.retired && record.refreshAt <= now) overdue += 1
      if (status.kind !== "access_token" || OwnerId.isAuthorizer(status.appId) || record === undefined) return
      candidates.push({ owner: status.appId, label: status.metricsLabel, stable: record.mode === "stable" })
    })
    const apps = yield* Effect.forEach(candidates, ({ label, owner, stable }): Effect.Effect<Budget> =>
      stable
        ? engine.forceRefreshBudget(owner).pipe(
          Effect.map((budget) => ({ owner, classicFetchesToday: null, forceRefreshesToday: budget.usedToday })),
          Effect.orElseSucceed(() => ({ owner, classicFetchesToday: null, forceRefreshesToday: 0 }))
        )
        : Effect.succeed({
          owner,
          classicFetchesToday: label === owner ? history.callsToday(label, now) : null,
          forceRefreshesToday: null
        }))
    const usage = (app: Budget) =>
      (app.classicFetchesToday ?? 0) / CLASSIC_CALLS_PER_DAY +
      (app.forceRefreshesToday ?? 0) / RefreshPolicy.STABLE_FORCE_REFRESH.perDay
    const shown = apps.sort((a, b) => usage(b) - usage(a)).slice(0, MAX_BUDGETS)
    return {
      classicPerDay: CLASSIC_CALLS_PER_DAY,
      forcePerDay: RefreshPolicy.STABLE_FORCE_REFRESH.perDay,
      overdue,
      apps: shown,
      more: apps.length - shown.length
    }
  })

const routes = (options: Options) => (router: HttpApiBuilder.Router["Type"]) =>
  Effect.gen(function*() {
    const engine = yield* TokenEngine
    // Host and process, and a tag telling apart two servers in one process (tests).
    const replica = `${hostname()}:${process.pid}:${(yield* Random.nextIntBetween(0, 0x10000)).toString(16)}`
    // Replicas sharing a store show each other: the group's history and
    // heartbeats live in the store's documents (one replica alone, or a
    // server without documents, shows its own).
    const started = yield* Clock.currentTimeMillis
    const group = Option.map(
      yield* Effect.serviceOption(StoreDocuments),
      (documents) => Group.make(documents, replica, started)
    )
    const book = yield* Effect.serviceOption(Leases.LeaseBook)
    const held = () => Option.match(book, { onNone: () => [], onSome: (leases) => leases.held() })
    const history = yield* History.make({ share: Option.isSome(group) })
    const storeTrouble = (what: string) => (error: StoreError) =>
      Effect.logWarning(`console: cannot ${what} through the store; showing this replica's own`, error.detail)
    // The counters' growth into this replica's rings, then into the group's history.
    const sample = Effect.zipRight(
      history.sample,
      Option.match(group, {
        onNone: () => Effect.void,
        onSome: (shared) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => shared.share(history, now)).pipe(
            Effect.catchAll(storeTrouble("share the history"))
          )
      })
    )
    const beat = Option.match(group, {
      onNone: () => Effect.void,
      onSome: (shared) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => shared.beat(now, held())).pipe(
          Effect.catchAll(storeTrouble("send the heartbeat"))
        )
    })
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(Duration.minutes(1))))
    yield* Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(Group.BEAT)))
    // What the plots and meters read: the group's history when shared, else this replica's rings.
    const current: Effect.Effect<{ readonly view: History.View; readonly scope: "group" | "replica" }> = Effect
      .zipRight(
        sample,
        Option.match(group, {
          onNone: () => Effect.succeed({ view: history, scope: "replica" as const }),
          onSome: (shared) =>
            shared.history.pipe(
              Effect.map((snapshot) => ({ view: History.view(snapshot), scope: "group" as const })),
              Effect.catchAll((error) =>
                Effect.as(storeTrouble("read the group's history")(error), { view: history, scope: "replica" as const })
              )
            )
        })
      )
    const lifetime = Duration.decode(options.sessionLifetime ?? DEFAULT_SESSION_LIFETIME)
    const maxAge = Math.max(1, Math.floor(Duration.toSeconds(lifetime)))
    // With the admin API, an admin key's session also changes the registry, through the API's own actions.
    const admin = yield* Effect.serviceOption(Admin)
    const sessions = Sessions.make(options.keys, Duration.toMillis(lifetime), {
      keys: Option.match(admin, { onNone: () => [], onSome: (admin) => admin.options.adminKeys }),
      actor: callerId
    })
    const limit = SignInLimit.make()
    const uPlotScript = yield* Effect.cached(
      Effect.map(uPlotFile("uPlot.iife.min.js"), (body) => asset(body, "text/javascript; charset=utf-8"))
    )
    const uPlotStyle = yield* Effect.cached(
      Effect.map(uPlotFile("uPlot.min.css"), (body) => asset(body, "text/css; charset=utf-8"))
    )
    const script = asset(SCRIPT, "text/javascript; charset=utf-8")
    const style = asset(Page.CSS, "text/css; charset=utf-8")

    // Constant files: compressed once, revalidated with an `ETag`, like `/docs`.
    const compressed = <E>(file: Effect.Effect<HttpServerResponse.HttpServerResponse, E>) =>
      Effect.flatMap(
        Effect.zip(HttpServerRequest.HttpServerRequest, file),
        ([request, response]) => CompressedPage.serve(request, response)
      )

    const session = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      sessions.current(request.headers.cookie))

    // Every API route: the session, or 401 before anything is read.
    const withSession = <E, R>(
      handler: (session: Sessions.Session) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
    ) =>
      Effect.flatMap(session, (live) => live === undefined ? Effect.succeed(signedOut) : handler(live))

    // Every action: the session and its CSRF token, then the audit line whatever the outcome.
    const action = (
      name: "refresh" | "retire",
      run: (body: typeof ActionBody.Type) => Effect.Effect<string, ActionFailed>
    ) =>
      withSession((live) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          if (!sessions.csrfMatches(live, request.headers["x-csrf-token"])) return csrfRefused
          const decoded = decodeAction(yield* Effect.orElseSucceed(request.json, () => undefined))
          if (Either.isLeft(decoded)) {
            return ApiError.response(400, "invalid_request", "send {\"owner\": \"…\", \"kind\": \"…\"} as JSON")
          }
          const body = decoded.right
          const outcome = yield* Effect.either(run(body))
          yield* Effect.logInfo("console action").pipe(Effect.annotateLogs({
            action: name,
            owner: body.owner,
            kind: body.kind ?? "",
            by: live.who,
            outcome: Either.isRight(outcome) ? "done" : outcome.left.code
          }))
          return Either.match(outcome, {
            onLeft: (error) => ApiError.response(error.status, error.code, error.reason),
            onRight: (message) => HttpServerResponse.unsafeJson({ message })
          })
        })
      )

    const failed = (status: number, code: string, reason: string) => new ActionFailed({ status, code, reason })

    const refresh = (body: typeof ActionBody.Type) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // Compare-and-refresh of the value held now: the engine replaces it
        // once, however many operators click at the same moment.
        const held = engine.peek(body.owner, now, body.kind)
        const fresh = yield* engine.refresh(body.owner, held?.value, body.kind).pipe(
          Effect.mapError((error) =>
            error._tag === "UnknownApp"
              ? failed(404, "unknown_owner", `${body.owner} has no ${body.kind ?? "such"} credential here`)
              : failed(502, failureCause(error), error.message)
          )
        )
        const seconds = Math.max(0, Math.floor((fresh.expiresAt - (yield* Clock.currentTimeMillis)) / 1_000))
        return `Refreshed the ${body.kind ?? "credential"} of ${body.owner}: the value held now expires in ${
          Page.duration(seconds)
        }.`
      })

    const retire = (body: typeof ActionBody.Type) =>
      OwnerId.isAuthorizer(body.owner)
        ? Effect.as(
          Effect.mapError(engine.retire(body.owner), (error) => failed(502, failureCause(error), error.message)),
          `Retired ${body.owner}: its credentials are no longer refreshed or served.`
        )
        : Effect.fail(failed(400, "not_an_authorizer", "only an authorizer (componentAppId:authorizerAppId) retires"))

    const consolePage = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const live = yield* sessions.current(request.headers.cookie)
      if (live === undefined) return html(Page.signIn())
      const params = new URLSearchParams(request.url.slice(request.url.indexOf("?") + 1 || request.url.length))
      const decoded = decodeQuery(Object.fromEntries(params))
      const query = Either.getOrElse(decoded, () => ({}))
      const page = yield* Rows.page(engine, query)
      return html(
        Page.consolePage(live, query, page, Either.isLeft(decoded) ? issues(decoded.left) : undefined),
        Either.isLeft(decoded) ? 400 : 200
      )
    })

    const api = <R>(handler: (url: URL) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) =>
      withSession(() =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) => handler(new URL(request.url, "http://console"))
        )
      )

    yield* Effect.all([
      router.get("/console", consolePage),
      router.post(
        "/console/session",
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const address = Option.getOrElse(request.remoteAddress, () => "unknown")
          const retryAfter = yield* limit.retryAfter(address)
          if (retryAfter !== undefined) {
            yield* Effect.logWarning("console sign-in limited").pipe(Effect.annotateLogs({ address }))
            return html(Page.signIn("limited"), 429).pipe(
              HttpServerResponse.setHeader("retry-after", String(retryAfter))
            )
          }
          const form = yield* Effect.orElseSucceed(request.urlParamsBody, () => [])
          const key = form.find(([name]) => name === "key")?.[1] ?? ""
          const live = yield* sessions.signIn(key)
          if (live === undefined) {
            yield* limit.refused(address)
            yield* Effect.logWarning("console sign-in refused").pipe(Effect.annotateLogs({ address }))
            return html(Page.signIn("refused"), 401)
          }
          yield* Effect.logInfo("console sign-in").pipe(Effect.annotateLogs({ by: live.who }))
          return seeOther("/console", cookie(live.id, maxAge, isHttps(request)))
        })
      ),
      router.post(
        "/console/session/end",
        withSession((live) =>
          Effect.gen(function*() {
            const request = yield* HttpServerRequest.HttpServerRequest
            const form = yield* Effect.orElseSucceed(request.urlParamsBody, () => [])
            if (!sessions.csrfMatches(live, form.find(([name]) => name === "csrf")?.[1])) return csrfRefused
            yield* sessions.end(live)
            return seeOther("/console", cookie("", 0, isHttps(request)))
          })
        )
      ),
      router.get("/console/assets/console.js", compressed(Effect.succeed(script))),
      router.get("/console/assets/console.css", compressed(Effect.succeed(style))),
      router.get("/console/assets/uplot.js", compressed(uPlotScript)),
      router.get("/console/assets/uplot.css", compressed(uPlotStyle)),
      router.get(
        "/console/api/credentials",
        api((url) =>
          Either.match(decodeQuery(Object.fromEntries(url.searchParams)), {
            onLeft: (error) => Effect.succeed(ApiError.response(400, "invalid_request", issues(error))),
            onRight: (query) => Effect.map(Rows.page(engine, query), (page) => HttpServerResponse.unsafeJson(page))
          })
        )
      ),
      router.get(
        "/console/api/timeline",
        api((url) =>
          Effect.gen(function*() {
            const { scope, view } = yield* current
            const now = yield* Clock.currentTimeMillis
            const owner = url.searchParams.get("owner")
            const timeline = owner === null ? view.group(now) : view.owner(owner, now)
            if (timeline === undefined) {
              return ApiError.response(404, "unknown_owner", "no history for that owner; see owners")
            }
            return HttpServerResponse.unsafeJson({ timeline, owners: view.owners(), scope, bytes: history.bytes() })
          })
        )
      ),
      router.get(
        "/console/api/budgets",
        api(() =>
          Effect.flatMap(current, ({ scope, view }) =>
            Effect.map(budgets(engine, view), (body) =>
              HttpServerResponse.unsafeJson({ ...body, scope })))
        )
      ),
      router.get(
        "/console/api/traffic",
        api(() =>
          Effect.gen(function*() {
            const { scope, view } = yield* current
            const now = yield* Clock.currentTimeMillis
            const { series, times } = view.group(now)
            return HttpServerResponse.unsafeJson({
              scope,
              totals: view.traffic(),
              timeline: {
                times,
                series: {
                  proxyCalls: series["proxyCalls"],
                  proxyReplays: series["proxyReplays"],
                  proxyRefusals: series["proxyRefusals"]
                }
              }
            })
          })
        )
      ),
      router.get(
        "/console/api/replicas",
        api(() =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const alone = (): ReadonlyArray<Group.Replica> => [
              { id: replica, alive: true, self: true, seen: now, started: now, leases: held() }
            ]
            const replicas = yield* Option.match(group, {
              onNone: () =>
                Effect.succeed({ replicas: alone(), scope: "replica" }),
              onSome: (shared) =>
                Effect.zipRight(beat, shared.replicas(now)).pipe(
                  Effect.map((replicas) => ({ replicas, scope: "group" })),
                  Effect.catchAll((error) =>
                    Effect.as(storeTrouble("read the heartbeats")(error), { replicas: alone(), scope: "replica" })
                  )
                )
            })
            return HttpServerResponse.unsafeJson(replicas)
          })
        )
      ),
      router.post("/console/api/refresh", action("refresh", refresh)),
      router.post("/console/api/retire", action("retire", retire)),
      Option.match(admin, {
        onNone: () =>
          Effect.void,
        onSome: (admin) =>
          Registry.routes(router, {
            actions: RegistryActions.make(admin, engine),
            sessions,
            html,
            signIn: Effect.succeed(html(Page.signIn(), 401))
          })
      })
    ])
  })

/**
 * The console's routes on the server's router, with the history sampler
 * running for as long as the layer lives. Its pages are compressed and
 * revalidated with an `ETag` like `/docs`.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never, never, TokenEngine> =>
  HttpApiBuilder.Router.use(routes(options))

/**
 * Where the replicas panel learns which refresh leases this replica holds:
 * provide it to the server, and `layerWatchLeases` to its store. Both use
 * this one layer, so they share one book when built together.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerLeaseBook: Layer.Layer<Leases.LeaseBook> = Leases.layer

/**
 * The store it is provided with, the leases it grants noted in the console's
 * lease book (`layerLeaseBook`). Without it the replicas panel lists no leases.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerWatchLeases: Layer.Layer<TokenStore, never, TokenStore> = Layer.provide(
  Leases.layerWatch,
  layerLeaseBook
)
