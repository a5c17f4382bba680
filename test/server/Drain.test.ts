/**
 * The drain over a bare Node server: which connections it closes at once and
 * which it lets finish, whatever answered the requests on them (here a plain
 * listener, as the fast path answers: no listener of the drain's own on the
 * answer until the drain begins).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { createServer, type ServerResponse } from "node:http"
import { connect, type Socket } from "node:net"
import * as Drain from "../../src/server/internal/drain.js"

const BODY = "done"

// A server whose `/slow` answers only when `release` is called; any other path at once.
const serve = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly connections: Drain.Connections; readonly release: () => void }>(
    (resume) => {
      const held: Array<ServerResponse> = []
      const server = createServer((request, response) => {
        if (request.url === "/slow") held.push(response)
        else response.end(BODY)
      })
      const connections = Drain.track(server)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({
          port: typeof address === "object" && address !== null ? address.port : 0,
          connections,
          release: () => {
            for (const response of held.splice(0)) response.end(BODY)
          }
        }))
      })
    }
  ),
  ({ connections }) => Effect.sync(() => connections.server.closeAllConnections())
)

interface Client {
  readonly socket: Socket
  /** Everything the server has sent so far. */
  readonly received: () => string
  /** Completes once the server has closed the connection. */
  readonly closed: Effect.Effect<void>
}

const client = (port: number, requests: ReadonlyArray<string>) =>
  Effect.async<Client>((resume) => {
    let received = ""
    let ended = false
    const waiters: Array<() => void> = []
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(requests.map((path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(""))
      resume(Effect.succeed({
        socket,
        received: () => received,
        closed: Effect.async<void>((done) => {
          if (ended) return done(Effect.void)
          waiters.push(() => done(Effect.void))
        })
      }))
    })
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      received += chunk
    })
    socket.on("error", () => undefined)
    socket.on("close", () => {
      ended = true
      for (const waiter of waiters.splice(0)) waiter()
    })
  })

const answers = (text: string) => text.split("HTTP/1.1 200 OK").length - 1

const until = (condition: () => boolean) =>
  Effect.gen(function*() {
    while (!condition()) yield* Effect.sleep(Duration.millis(5))
  })

describe("drain", () => {
  it.live("closes at once a keep-alive connection whose answers are all done", () =>
    Effect.gen(function*() {
      const { connections, port } = yield* serve
      const idle = yield* client(port, ["/fast", "/fast"])
      yield* until(() => answers(idle.received()) === 2)

      yield* Drain.drain(connections, Duration.seconds(30))

      yield* idle.closed.pipe(Effect.timeout(Duration.seconds(5)))
      expect(answers(idle.received())).toBe(2)
    }).pipe(Effect.scoped))

  it.live("lets an answer in flight finish, then closes its connection; a finished neighbour closes at once", () =>
    Effect.gen(function*() {
      const { connections, port, release } = yield* serve
      const idle = yield* client(port, ["/fast"])
      const busy = yield* client(port, ["/fast", "/slow"])
      yield* until(() => answers(idle.received()) === 1 && answers(busy.received()) === 1)
      // The slow request has reached the server: the connection carries one answer not yet done.
      yield* until(() => [...connections.all.values()].some((connection) => connection.request?.url === "/slow"))

      const drained = yield* Effect.fork(Drain.drain(connections, Duration.seconds(30)))
      yield* idle.closed.pipe(Effect.timeout(Duration.seconds(5)))
      expect(busy.socket.destroyed).toBe(false)

      release()
      yield* busy.closed.pipe(Effect.timeout(Duration.seconds(5)))
      yield* Fiber.join(drained)
      expect(answers(busy.received())).toBe(2)
      // The answer begun during the drain said so.
      expect(busy.received().split("\r\n\r\n").at(-2)).toMatch(/connection: close/i)
    }).pipe(Effect.scoped))

  // Node ends a connection after an answer that says `Connection: close`,
  // so of pipelined requests only the first answer goes out: what the drain
  // owes them is not to cut that answer.
  it.live("with pipelined requests, does not cut the connection while an answer is queued on it", () =>
    Effect.gen(function*() {
      const { connections, port, release } = yield* serve
      const pipelined = yield* client(port, ["/slow", "/fast", "/slow"])
      yield* until(() => [...connections.all.values()].some((connection) => connection.request?.url === "/slow"))

      const drained = yield* Effect.fork(Drain.drain(connections, Duration.seconds(30)))
      yield* Effect.sleep(Duration.millis(100))
      expect(pipelined.socket.destroyed).toBe(false)
      expect(answers(pipelined.received())).toBe(0)

      release()
      yield* pipelined.closed.pipe(Effect.timeout(Duration.seconds(5)))
      yield* Fiber.join(drained)
      expect(pipelined.received()).toMatch(/connection: close\r\n[\s\S]*\r\n\r\ndone$/i)
    }).pipe(Effect.scoped))
})
