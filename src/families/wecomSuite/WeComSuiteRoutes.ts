/**
 * The handlers of the WeCom suite routes: the suite's own (suite token,
 * install links, its corps, the provider token), its corps' (corp token,
 * refresh, jsapi and agent tickets, JS-SDK config), and WeCom's pushes to a
 * suite's command URL and its URL verification, over the `WeComSuiteToken`
 * service. An unknown suite or corp, or a corp that uninstalled, is a `404`.
 * Pushes are opened by `SuiteEvents` (signature before anything is parsed,
 * the signing window, decryption for the suite, bounded XML) and acted on
 * once per signature across replicas; `success` only once stored, `503`
 * when the store refuses (WeCom pushes again).
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Clock, Effect, Layer, Option } from "effect"
import { BadRequest, detail, tokenUnavailable, Unauthorized } from "../../api/ApiError.js"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import * as FamilyRoutes from "../../FamilyRoutes.js"
import {
  answer,
  DEFAULT_PAGE,
  expiresIn,
  pageUrlError,
  toApiError,
  unknownApp
} from "../../internal/credentialAnswer.js"
import * as ProxyTarget from "../../ProxyTarget.js"
import * as SuiteEvents from "./SuiteEvents.js"
import type { SuiteCredentials } from "./WeComSuiteConfig.js"
import { WeComSuiteToken } from "./WeComSuiteToken.js"

const refusal = (error: SuiteEvents.SuiteEventRefused) =>
  error.code === "invalid_signature"
    ? new Unauthorized(detail(error.code, error.reason))
    : new BadRequest(detail(error.code, error.reason))

const suiteOf = (credentials: Option.Option<SuiteCredentials>) =>
  Option.match(credentials, {
    onNone: () =>
      Effect.fail(new Unauthorized(detail("invalid_signature", "no such suite on this server: check WECOM_SUITES"))),
    onSome: Effect.succeed
  })

const accessToken = (value: string) => ({ access_token: value })
const ticket = (value: string) => ({ ticket: value })

const SuitesLive = HttpApiBuilder.group(
  TokenServerApi,
  "suites",
  (handlers) =>
    Effect.map(WeComSuiteToken, (suites) =>
      handlers
        .handle("suiteAccessToken", ({ path }) => answer(suites.suiteToken(path.suiteId), accessToken))
        .handle("suitePreAuthCode", ({ path, payload }) =>
          suites.preAuthCode(path.suiteId, {
            ...(payload.redirect_uri === undefined ? {} : { redirectUri: payload.redirect_uri }),
            ...(payload.state === undefined ? {} : { state: payload.state }),
            ...(payload.app_ids === undefined ? {} : { appIds: payload.app_ids }),
            ...(payload.auth_type === undefined ? {} : { authType: payload.auth_type })
          }).pipe(
            Effect.mapError(toApiError),
            Effect.map((code) => ({
              pre_auth_code: code.preAuthCode,
              expires_in: code.expiresInSeconds,
              ...(code.installUrl === undefined ? {} : { install_url: code.installUrl })
            }))
          ))
        // The provider token is the service provider's, not the suite's: the
        // suite in the path only scopes who may ask for it.
        .handle("providerAccessToken", ({ path }) =>
          Option.isNone(suites.credentials(path.suiteId))
            ? Effect.fail(unknownApp(path.suiteId))
            : answer(suites.providerToken, accessToken))
        .handle("corps", ({ path, urlParams }) =>
          Effect.gen(function*() {
            const page = yield* suites.corps(path.suiteId, {
              cursor: urlParams.cursor,
              limit: urlParams.limit ?? DEFAULT_PAGE
            }).pipe(Effect.mapError(toApiError))
            const now = yield* Clock.currentTimeMillis
            return {
              corps: page.corps.map((entry) => ({
                corp_id: entry.corpId,
                valid: entry.valid,
                ...expiresIn(entry.expiresAt, now)
              })),
              ...(page.nextCursor === undefined ? {} : { next_cursor: page.nextCursor })
            }
          })))
)

const CorpsLive = HttpApiBuilder.group(
  TokenServerApi,
  "suiteCorps",
  (handlers) =>
    Effect.map(WeComSuiteToken, (suites) =>
      handlers
        .handle("accessToken", ({ path }) => answer(suites.corpToken(path.suiteId, path.corpId), accessToken))
        .handle(
          "refreshAccessToken",
          ({ path, payload }) =>
            answer(suites.refreshCorpToken(path.suiteId, path.corpId, payload.stale_token), accessToken)
        )
        .handle("jsapiTicket", ({ path }) => answer(suites.jsapiTicket(path.suiteId, path.corpId), ticket))
        .handle("agentTicket", ({ path }) => answer(suites.agentTicket(path.suiteId, path.corpId), ticket))
        .handle("jsSdkConfig", ({ path, payload }) =>
          suites.jsSdkConfig(path.suiteId, path.corpId, payload.url).pipe(
            Effect.mapError((error) => error._tag === "InvalidPageUrl" ? pageUrlError(error) : toApiError(error))
          )))
)

const EventsLive = HttpApiBuilder.group(
  TokenServerApi,
  "suiteEvents",
  (handlers) =>
    Effect.map(WeComSuiteToken, (suites) =>
      handlers
        .handle("suiteEvents", ({ path, urlParams }) =>
          Effect.gen(function*() {
            const suite = yield* suiteOf(suites.credentials(path.suiteId))
            const request = yield* HttpServerRequest.HttpServerRequest
            const body = yield* request.text.pipe(
              Effect.mapError(() => new BadRequest(detail("invalid_push", "the push body could not be read")))
            )
            const opened = yield* SuiteEvents.open(suite, urlParams, body).pipe(Effect.mapError(refusal))
            const event = opened.event
            // An event this server does not act on: acknowledged, else WeCom retries it.
            if (event.InfoType === "ignored") {
              yield* Effect.logInfo("suite push ignored").pipe(Effect.annotateLogs({ infoType: event.infoType }))
              return "success"
            }
            const accepted = yield* suites.acceptOnce(
              suite.suiteId,
              opened.replayKey,
              opened.replayTtlMillis,
              suites.accept(suite.suiteId, event)
            ).pipe(Effect.mapError(tokenUnavailable))
            if (!accepted) {
              yield* Effect.logInfo("suite push replayed: accepted already, nothing changed").pipe(
                Effect.annotateLogs({ infoType: event.InfoType })
              )
            }
            return "success"
          }).pipe(Effect.annotateLogs({ suite: path.suiteId })))
        .handle("suiteUrlVerification", ({ path, urlParams }) =>
          Effect.flatMap(
            suiteOf(suites.credentials(path.suiteId)),
            (suite) => SuiteEvents.verifyUrl(suite, urlParams).pipe(Effect.mapError(refusal))
          )))
)

/**
 * WeCom suites (企业微信第三方应用): the suite's routes, its corps'
 * (`/v1/wecom-suites/{suiteId}/corps/{corpId}/…`, proxied to WeCom with the
 * corp token, a client key scoped by the suite) and WeCom's pushes. A server
 * with no suite configured serves them all the same: every suite is unknown
 * (`404`).
 *
 * @since 0.3.0
 * @category families
 */
export const routes = FamilyRoutes.make({
  name: "wecomSuite",
  handlers: Layer.merge(SuitesLive, CorpsLive),
  intake: EventsLive,
  // The suite's routes, its corps' included, are scoped by the suite.
  scopeOf: (params) => params["suiteId"],
  proxy: (upstreams) =>
    Effect.map(WeComSuiteToken, (tokens) =>
      // A suite's corps come and go: counted under their suite.
      ProxyTarget.underParent({
        group: TokenServerApi.groups.suiteCorps,
        parent: "suiteId",
        child: "corpId",
        label: "corps",
        knows: (suiteId) => tokens.suites.includes(suiteId),
        baseUrl: upstreams.wecom,
        token: tokens.corpToken,
        replace: tokens.refreshCorpToken
      }))
})
