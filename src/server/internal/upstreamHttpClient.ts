/**
 * The `HttpClient` the server gives the engine for its calls to WeChat:
 * `@effect/platform-node`'s client over Node's own `http`/`https`, on
 * keep-alive agents. The platform's `fetch` client adds undici, web streams
 * and an `AbortController` to every call: CPU that a cold start's herd pays
 * once per fetch, thousands of times. Like every `node:http` client it
 * never follows a redirect (a 3xx is answered as the error it is, the secret
 * in the query string never sent to the host it names); timeouts and error
 * details come from `internal/upstream.ts`, whatever the client. Library
 * users provide their own `HttpClient` as before.
 *
 * @internal
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { Layer } from "effect"

/** The client, its agents closed with the layer's scope. */
export const layer: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerWithoutAgent.pipe(
  // A new `Agent`'s default is a connection per call; WeChat's calls reuse theirs.
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true }))
)
