/**
 * The handlers of the WeCom suite routes: WeCom's pushes to a suite's
 * command URL and its URL verification, over the `WeComSuiteToken` service.
 * Pushes are opened by `SuiteEvents` (signature before anything is parsed,
 * the signing window, decryption for the suite, bounded XML) and acted on
 * once per signature across replicas; `success` only once stored, `503`
 * when the store refuses (WeCom pushes again).
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Effect, Layer, Option } from "effect"
import { BadRequest, detail, tokenUnavailable, Unauthorized } from "../api/ApiError.js"
import { TokenServerApi } from "../api/TokenServerApi.js"
import * as SuiteEvents from "../families/wecomSuite/SuiteEvents.js"
import type { SuiteCredentials } from "../families/wecomSuite/WeComSuiteConfig.js"
import { WeComSuiteToken } from "../families/wecomSuite/WeComSuiteToken.js"
import * as WeComSuiteTokenModule from "../families/wecomSuite/WeComSuiteToken.js"

// A server without `WeComSuiteToken` in context serves no suite: every one is unknown.
const suites = Effect.map(
  Effect.serviceOption(WeComSuiteToken),
  Option.getOrElse(() => WeComSuiteTokenModule.none)
)

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

const EventsLive = HttpApiBuilder.group(
  TokenServerApi,
  "suiteEvents",
  (handlers) =>
    Effect.map(suites, (suites) =>
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
 * Every WeCom suite handler group.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = Layer.mergeAll(EventsLive)
