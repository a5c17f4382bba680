/**
 * One upstream call to a WeChat-family API (WeChat, WeCom): transport
 * failures, non-2xx answers, non-JSON bodies and timeouts become
 * `UpstreamUnavailable`; the latency is recorded per endpoint. Shared by
 * every family's API module, so they differ only in paths and errcodes.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Duration, Effect, Metric, Schema } from "effect"
import * as TokenMetrics from "../TokenMetrics.js"
import { UpstreamUnavailable } from "../WeChatError.js"

/** `{"access_token","expires_in"}`, the success body of every token endpoint. */
export const TokenBody = Schema.Struct({
  access_token: Schema.String.pipe(Schema.minLength(1)),
  expires_in: Schema.Number.pipe(Schema.positive())
})

/** `{"ticket","expires_in"}`, the success body of every ticket endpoint. */
export const TicketBody = Schema.Struct({
  ticket: Schema.String.pipe(Schema.minLength(1)),
  expires_in: Schema.Number.pipe(Schema.positive())
})

/**
 * A sender over the `HttpClient` in context. Token requests carry the secret
 * in the query string: tracing is off for them, so no span's `url.full`
 * records it, and no error detail holds the URL.
 */
export const makeSend = (timeout: Duration.Duration) =>
  Effect.map(
    HttpClient.HttpClient,
    (base) => {
      const client = base.pipe(HttpClient.withTracerDisabledWhen(() => true))
      return (
        endpoint: string,
        request: HttpClientRequest.HttpClientRequest
      ): Effect.Effect<unknown, UpstreamUnavailable> =>
        client.execute(request).pipe(
          Effect.mapError((error) =>
            new UpstreamUnavailable({
              reason: "network",
              // `reason` and `description` never hold the query string (the secret).
              detail: `${endpoint}: ${error.reason}${
                "description" in error && error.description ? ` (${error.description})` : ""
              }`
            })
          ),
          Effect.flatMap((response) =>
            response.status >= 200 && response.status < 300
              ? response.json.pipe(
                Effect.mapError(() =>
                  new UpstreamUnavailable({ reason: "malformed-body", detail: `${endpoint}: the body is not JSON` })
                )
              )
              : Effect.fail(
                new UpstreamUnavailable({ reason: "http-status", detail: `${endpoint}: HTTP ${response.status}` })
              )
          ),
          Effect.scoped,
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new UpstreamUnavailable({
                reason: "timeout",
                detail: `${endpoint}: no answer within ${Duration.format(timeout)}`
              })
          }),
          Metric.trackDuration(TokenMetrics.upstreamLatency.pipe(Metric.tagged("endpoint", endpoint)))
        )
    }
  )
