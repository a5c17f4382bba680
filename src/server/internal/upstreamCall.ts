/**
 * The proxy's calls to WeChat, on Node's own `http`/`https` clients.
 *
 * Why not the platform's `HttpClient` (`@effect/platform-node`'s
 * `NodeHttpClient`): measured in one process against a bare `node:http`
 * server on loopback, it took 2.3–3 ms a call where `node:http`'s own client
 * took 0.6–0.9 ms (fetch and undici were no faster), and through the proxy
 * that was most of the ~6.5 ms the proxy added to a JSON call. It builds a
 * request object, a URL, header records and a scope per call, and turns
 * bodies into Effect streams and back into Node streams each way. Here a
 * call is one `http.request` on a keep-alive agent: a held body written
 * once, a streamed one piped with Node's backpressure, the answer handed
 * over as the Node stream it is, for the server to pipe on to the caller.
 *
 * Each call is an `Effect.async` whose interruption destroys the request:
 * a caller that hangs up, a deadline that passes, leaves nothing upstream.
 */
import { Data, Effect, type Scope } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"

/** Why the caller's body could not be forwarded. */
export class BodyRefused extends Data.TaggedError("BodyRefused")<{
  readonly reason: "too-large" | "timeout" | "client-closed"
}> {}

/**
 * Why WeChat gave no answer: not reached (`request`), or its answer broke
 * off (`answer`). `code` is Node's (ECONNREFUSED, ECONNRESET…), never an
 * error message: a message may hold the URL, and the URL the token.
 */
export class CallFailed extends Data.TaggedError("CallFailed")<{
  readonly stage: "request" | "answer"
  readonly code: string
}> {}

/** The caller's deadline passed before WeChat's answer (its headers, or its inspected body) was in. */
export class CallTimedOut extends Data.TaggedError("CallTimedOut") {}

/** The body of a call. */
export type Body =
  | { readonly _tag: "None" }
  /** In memory (small enough to replay): written at once, with its length. */
  | { readonly _tag: "Held"; readonly bytes: Uint8Array }
  /**
   * The caller's own request, piped as it arrives: cut once over `maxBytes`
   * (`too-large`) or not all there within `timeoutMillis` (`timeout`). The
   * source is never destroyed: the refusal still has to go out on its socket.
   */
  | {
    readonly _tag: "Piped"
    readonly source: Http.IncomingMessage
    readonly maxBytes: number
    readonly timeoutMillis: number
  }

/** One call: `path` is under the origin's base path, query included. */
export interface Call {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Body
}

/** Calls to one base URL. */
export interface Origin {
  /**
   * WeChat's answer once its headers are in, its body not yet read (paused);
   * `CallTimedOut` when they are not in by `deadlineAt` (`performance.now()` time).
   */
  readonly send: (
    call: Call,
    deadlineAt: number
  ) => Effect.Effect<Http.IncomingMessage, CallFailed | BodyRefused | CallTimedOut>
}

/** Opens origins over keep-alive agents shared per scheme, host and port. */
export interface Upstream {
  readonly origin: (baseUrl: string) => Origin
}

/**
 * Sockets open at once to one upstream origin; calls beyond wait in the
 * agent's queue (inside their deadline). WeChat is one origin for every app,
 * and the per-owner line bounds each app to its own share of these.
 */
export const SOCKETS_PER_ORIGIN = 256

/** Idle keep-alive sockets kept per origin, the most recently used first. */
const FREE_SOCKETS_PER_ORIGIN = 32

/**
 * Upstream calls over one keep-alive agent per origin, destroyed (with
 * every socket) when `scope` closes.
 */
export const make: Effect.Effect<Upstream, never, Scope.Scope> = Effect.gen(function*() {
  const agents = new Map<string, Http.Agent>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const agent of agents.values()) agent.destroy()
    })
  )
  return {
    origin: (baseUrl) => {
      const url = new URL(baseUrl)
      const secure = url.protocol === "https:"
      let agent = agents.get(url.origin)
      if (agent === undefined) {
        const options: Http.AgentOptions = {
          keepAlive: true,
          maxSockets: SOCKETS_PER_ORIGIN,
          maxFreeSockets: FREE_SOCKETS_PER_ORIGIN,
          // Reuse the warmest sockets; the rest idle out.
          scheduling: "lifo"
        }
        agent = secure ? new Https.Agent(options) : new Http.Agent(options)
        agents.set(url.origin, agent)
      }
      return makeOrigin({
        request: secure ? Https.request : Http.request,
        agent,
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
        basePath: url.pathname.replace(/\/+$/, "")
      })
    }
  }
})

interface Target {
  readonly request: typeof Http.request
  readonly agent: Http.Agent
  readonly hostname: string
  readonly port: number
  readonly basePath: string
}

const codeOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : "EUNKNOWN"

const makeOrigin = (target: Target): Origin => ({ send: (call, deadlineAt) => exchange(target, call, deadlineAt) })

// The deadlines of a call are Node timers set where the sockets are, not
// `Effect.timeout`: that forks a fiber and races it (~80 µs of CPU each,
// measured), and a proxied call has up to three.
const exchange = (
  target: Target,
  call: Call,
  deadlineAt: number
): Effect.Effect<Http.IncomingMessage, CallFailed | BodyRefused | CallTimedOut> =>
  Effect.async<Http.IncomingMessage, CallFailed | BodyRefused | CallTimedOut>((resume) => {
    let settled = false
    let detachBody = () => {}
    const settle = (effect: Effect.Effect<Http.IncomingMessage, CallFailed | BodyRefused | CallTimedOut>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(effect)
    }
    const timer = setTimeout(() => {
      abort()
      settle(Effect.fail(new CallTimedOut()))
    }, Math.max(0, deadlineAt - performance.now()))
    // Stops the call, however far it got: the body no longer read, the request and its socket destroyed.
    const abort = () => {
      detachBody()
      request.destroy()
    }
    const headers: Record<string, string> = { ...call.headers }
    if (call.body._tag === "Held") headers["content-length"] = String(call.body.bytes.length)

    let request: Http.ClientRequest
    try {
      request = target.request({
        agent: target.agent,
        method: call.method,
        hostname: target.hostname,
        port: target.port,
        path: target.basePath + call.path,
        headers
      }, (answer) => settle(Effect.succeed(answer)))
    } catch (error) {
      // Node refuses what it would not send (a header value it finds invalid): nothing left for WeChat.
      settle(Effect.fail(new CallFailed({ stage: "request", code: codeOf(error) })))
      return
    }
    request.on("error", (error) => {
      detachBody()
      settle(Effect.fail(new CallFailed({ stage: "request", code: codeOf(error) })))
    })
    switch (call.body._tag) {
      case "None":
        request.end()
        break
      case "Held":
        request.end(call.body.bytes)
        break
      case "Piped":
        detachBody = pipeBody(call.body, request, (reason) => {
          abort()
          settle(Effect.fail(new BodyRefused({ reason })))
        })
    }
    return Effect.sync(() => {
      clearTimeout(timer)
      abort()
    })
  })

// Pipes the caller's body into `request` as it arrives, with Node's
// backpressure, and goes on after WeChat's answer has begun (the upstream
// socket is reused only once the request is complete). Returns what stops it
// early: from then on the rest of the body is read into the void, since left
// unread it would stay in the socket and the refusal sent on it would meet a
// reset.
const pipeBody = (
  body: Extract<Body, { readonly _tag: "Piped" }>,
  request: Http.ClientRequest,
  refuse: (reason: BodyRefused["reason"]) => void
): () => void => {
  const { maxBytes, source } = body
  let bytes = 0
  let draining = false
  // Only the body's own arrival: the wait for WeChat's answer after it is the call's deadline.
  const timer = setTimeout(() => refuse("timeout"), body.timeoutMillis)
  const onDrain = () => {
    draining = false
    source.resume()
  }
  const detach = () => {
    clearTimeout(timer)
    source.off("data", onData)
    source.off("end", onEnd)
    source.off("close", onClose)
    source.off("error", onError)
    request.off("drain", onDrain)
    source.resume()
  }
  const onData = (chunk: Buffer) => {
    bytes += chunk.length
    if (bytes > maxBytes) return refuse("too-large")
    if (!request.write(chunk) && !draining) {
      draining = true
      source.pause()
      request.once("drain", onDrain)
    }
  }
  const onEnd = () => {
    clearTimeout(timer)
    request.end()
  }
  // 'close' without 'end' first: the caller went away mid-body.
  const onClose = () => {
    if (!source.readableEnded) refuse("client-closed")
  }
  // Reported again by 'close'; listened to so that it is not thrown.
  const onError = () => {}
  if (source.destroyed) {
    clearTimeout(timer)
    refuse("client-closed")
    return () => {}
  }
  source.on("data", onData)
  source.once("end", onEnd)
  source.once("close", onClose)
  source.on("error", onError)
  return detach
}

/**
 * At most `limit` bytes of an answer: `Whole` when it ended within them,
 * else `Partial`, with what was read put back in front of the rest, still
 * to stream.
 */
export const peek = (
  answer: Http.IncomingMessage,
  limit: number,
  deadlineAt: number
): Effect.Effect<
  { readonly _tag: "Whole"; readonly body: Uint8Array } | { readonly _tag: "Partial" },
  CallFailed | CallTimedOut
> =>
  Effect.async((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const timer = setTimeout(() => {
      detach()
      answer.destroy()
      resume(Effect.fail(new CallTimedOut()))
    }, Math.max(0, deadlineAt - performance.now()))
    const detach = () => {
      clearTimeout(timer)
      answer.off("data", onData)
      answer.off("end", onEnd)
      answer.off("error", onError)
      answer.off("close", onClose)
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      bytes += chunk.length
      if (bytes > limit) {
        detach()
        answer.pause()
        answer.unshift(Buffer.concat(chunks, bytes))
        resume(Effect.succeed({ _tag: "Partial" as const }))
      }
    }
    const onEnd = () => {
      detach()
      resume(Effect.succeed({ _tag: "Whole" as const, body: Buffer.concat(chunks, bytes) }))
    }
    const onError = (error: unknown) => {
      detach()
      resume(Effect.fail(new CallFailed({ stage: "answer", code: codeOf(error) })))
    }
    const onClose = () => {
      detach()
      resume(Effect.fail(new CallFailed({ stage: "answer", code: "ECONNRESET" })))
    }
    answer.on("data", onData)
    answer.once("end", onEnd)
    answer.on("error", onError)
    answer.once("close", onClose)
    return Effect.sync(() => {
      detach()
      answer.destroy()
    })
  })
