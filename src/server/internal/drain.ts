/**
 * The listener's shutdown: the connections of a Node server, which of them
 * carry a request the server has accepted, and the drain that lets those
 * requests finish, for a bounded time, while every other connection is closed
 * at once.
 *
 * Node's `server.close()` waits until every connection has ended, and it stops
 * the timer that enforces the header deadline: a connection that never sends a
 * whole request (a load balancer's TCP probe, a client that stopped halfway)
 * then never ends, and neither does the process, until SIGKILL.
 */
import { Deferred, Duration, Effect, Exit } from "effect"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import type { Socket } from "node:net"

// During the drain, a request body that brings no byte for this long (while
// the server is ready to read it) is a client that stopped sending, not an
// upload in progress.
const STALL = Duration.seconds(2)

interface Connection {
  readonly socket: Socket
  /** The latest answer begun on the connection, done or not. */
  latest: ServerResponse | undefined
  /**
   * Earlier answers not yet done when a later request arrived: HTTP/1.1
   * pipelining may queue several. Empty on a connection that is not pipelined.
   */
  readonly queued: Set<ServerResponse>
  /** The latest request on the connection. */
  request: IncomingMessage | undefined
  /** `socket.bytesRead` at the latest stall check. */
  bytesRead: number
}

/** The connections of one server, as `track` keeps them. */
export interface Connections {
  readonly server: Server
  readonly all: Map<Socket, Connection>
  draining: boolean
}

// The answer is out: the connection is closed once Node has written it, so
// no further request arrives on it.
const close = (socket: Socket) => socket.end(() => socket.destroy())

/**
 * Keeps track of `server`'s connections and of the requests on them. Install
 * it after any other wrapper of `emit` (the fast path answers inside one):
 * it must see every request Node parses, answered anywhere.
 */
export const track = (server: Server): Connections => {
  const connections: Connections = { server, all: new Map(), draining: false }
  server.on("connection", (socket: Socket) => {
    connections.all.set(socket, { socket, latest: undefined, queued: new Set(), request: undefined, bytesRead: 0 })
    socket.once("close", () => connections.all.delete(socket))
  })
  // Node hands each parsed request to `emit`; the casts see its overloads as
  // the plain `EventEmitter` method it is.
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: Array<unknown>) => boolean
  server.emit = ((event: string | symbol, ...args: Array<unknown>): boolean => {
    if (event === "request") accepted(connections, args[0] as IncomingMessage, args[1] as ServerResponse)
    return emit(event, ...args)
  }) as Server["emit"]
  return connections
}

// Every answer passes here, the fast path's included, so keeping it in view
// adds no listener while the server is not draining (a listener per answer
// was a measurable share of the hot route's CPU). An answer is done once its
// `close` has come (`response.closed`), whichever way it ended; the drain
// watches the answers not done when it begins, and every answer begun after.
const accepted = (connections: Connections, request: IncomingMessage, response: ServerResponse) => {
  const connection = connections.all.get(request.socket as Socket)
  if (connection === undefined) return
  const previous = connection.latest
  if (previous !== undefined && !previous.closed) {
    for (const earlier of connection.queued) if (earlier.closed) connection.queued.delete(earlier)
    connection.queued.add(previous)
  }
  connection.latest = response
  connection.request = request
  if (connections.draining) watch(connection, response)
}

// The answers of `connection` not yet done.
const open = (connection: Connection): Array<ServerResponse> => {
  const answers = [...connection.queued, ...(connection.latest === undefined ? [] : [connection.latest])]
  return answers.filter((response) => !response.closed)
}

// Once the last open answer of a draining connection is done, the connection closes.
const watch = (connection: Connection, response: ServerResponse) =>
  response.once("close", () => {
    if (open(connection).length === 0) close(connection.socket)
  })

// A connection whose request body has not moved since the last check, while
// Node reads (a paused socket is the server's back-pressure, not the client).
const cutStalled = (connections: Connections) => {
  for (const connection of connections.all.values()) {
    const read = connection.socket.bytesRead
    const receiving = connection.request !== undefined && !connection.request.complete
    if (receiving && read === connection.bytesRead && !connection.socket.isPaused()) connection.socket.destroy()
    connection.bytesRead = read
  }
}

/**
 * Stops accepting, closes every connection that carries no request the
 * server has accepted (idle keep-alive, silent, a request head not all
 * there) at once, lets the requests in flight finish (each answer then closes
 * its connection; a body that stops arriving is cut), and after `within`
 * destroys whatever is left. Completes once every connection is closed.
 */
export const drain = (connections: Connections, within: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function*() {
    const closed = yield* Deferred.make<void>()
    connections.draining = true
    connections.server.close(() => Deferred.unsafeDone(closed, Exit.void))
    let idle = 0
    for (const connection of connections.all.values()) {
      const answers = open(connection)
      if (answers.length === 0) {
        idle += 1
        connection.socket.destroy()
        continue
      }
      connection.bytesRead = connection.socket.bytesRead
      for (const response of answers) {
        // Not begun yet: the answer says `Connection: close`, so the client does not reuse it.
        if (!response.headersSent) response.shouldKeepAlive = false
        watch(connection, response)
      }
    }
    const inFlight = connections.all.size - idle
    yield* Effect.logInfo("shutting down: no longer accepting connections").pipe(
      Effect.annotateLogs({ closed_idle: idle, draining: inFlight, drain_seconds: Duration.toSeconds(within) })
    )
    const watchStalls = Effect.forever(Effect.zipRight(Effect.sleep(STALL), Effect.sync(() => cutStalled(connections))))
    // A finalizer runs uninterruptibly: the stall watch and the wait must be
    // interruptible again for the race and the deadline to end them.
    const drained = yield* Deferred.await(closed).pipe(
      Effect.raceFirst(watchStalls),
      Effect.timeoutOption(within),
      Effect.interruptible
    )
    if (drained._tag === "Some") return
    const cut = connections.all.size
    yield* Effect.logWarning("shutting down: drain time over, cutting the requests still in flight").pipe(
      Effect.annotateLogs({ cut })
    )
    for (const connection of connections.all.values()) connection.socket.destroy()
    yield* Deferred.await(closed)
  })
