/**
 * A real `redis-server` for tests: its own process on a free loopback port,
 * nothing persisted, stopped with the scope. `stop` and `start` let a test
 * take Redis away and bring it back on the same port.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

export class RedisServerError extends Data.TaggedError("RedisServerError")<{ readonly message: string }> {}

export interface RedisServerShape {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Stops the server and waits for the process to exit. Its data is gone: nothing is persisted. */
  readonly stop: Effect.Effect<void>
  /** Starts the server again on the same port and waits until it answers PING. */
  readonly start: Effect.Effect<void, RedisServerError>
}

export class RedisServer extends Context.Tag("test/RedisServer")<RedisServer, RedisServerShape>() {}

// redis-server has no `--port 0`: let the kernel pick a free port, release it, pass it on.
const freePort = Effect.async<number, RedisServerError>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.fail(new RedisServerError({ message: error.message }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** True when a server on `port` answers PING now. */
export const ping = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let reply = ""
    socket.setEncoding("utf8")
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk: string) => {
      reply += chunk
      if (reply.includes("\r\n")) {
        socket.destroy()
        resume(Effect.succeed(reply.startsWith("+PONG")))
      }
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  })

const exited = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const done = () => resume(Effect.void)
    if (child.exitCode !== null || child.signalCode !== null) done()
    else child.once("exit", done)
    return Effect.sync(() => child.off("exit", done))
  })

/**
 * Starts a `redis-server`. Fails (never skips) when the binary is missing:
 * CI installs it with `apt-get install -y redis-server`.
 *
 * Waiting runs on the live clock, so a test driving `TestClock` can still
 * start and restart a server.
 */
export const make: Effect.Effect<RedisServerShape, RedisServerError, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "redis-test-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  )
  const current = yield* Ref.make<ChildProcess | undefined>(undefined)
  // The server's own output, kept for the failure message.
  let output = ""

  const spawnServer = Effect.async<ChildProcess, RedisServerError>((resume) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4_000)
    }
    child.stdout?.on("data", keep)
    child.stderr?.on("data", keep)
    child.once("spawn", () => resume(Effect.succeed(child)))
    child.once("error", (error: NodeJS.ErrnoException) =>
      resume(Effect.fail(
        new RedisServerError({
          message: error.code === "ENOENT"
            ? "redis-server is not installed; install it with: apt-get install -y redis-server"
            : `redis-server did not start: ${error.message}`
        })
      )))
  })

  const stop = Effect.gen(function*() {
    const child = yield* Ref.getAndSet(current, undefined)
    if (child === undefined) return
    child.kill("SIGTERM")
    yield* exited(child).pipe(
      Effect.timeout(Duration.seconds(5)),
      Effect.catchTag(
        "TimeoutException",
        () => Effect.zipRight(Effect.sync(() => child.kill("SIGKILL")), exited(child))
      )
    )
  }).pipe(Effect.withClock(Clock.make()))

  const awaitPong = ping(port).pipe(
    Effect.filterOrFail((pong) => pong, () => new RedisServerError({ message: "no PONG yet" })),
    Effect.retry(Schedule.spaced(Duration.millis(20)).pipe(Schedule.upTo(Duration.seconds(10)))),
    Effect.mapError(() =>
      new RedisServerError({ message: `redis-server on port ${port} did not answer PING:\n${output}` })
    )
  )

  const start = Effect.gen(function*() {
    yield* stop
    output = ""
    const child = yield* spawnServer
    yield* Ref.set(current, child)
    // A server that dies at once (port taken, bad option) must fail the start, not time out.
    yield* Effect.raceFirst(
      awaitPong,
      Effect.zipRight(
        exited(child),
        Effect.suspend(() => Effect.fail(new RedisServerError({ message: `redis-server exited at start:\n${output}` })))
      )
    )
  }).pipe(Effect.withClock(Clock.make()))

  yield* Effect.addFinalizer(() => stop)
  yield* start
  return { port, url: `redis://127.0.0.1:${port}`, stop, start }
})

/** One server shared by the tests of a `layer(...)` block. */
export const layer: Layer.Layer<RedisServer, RedisServerError> = Layer.scoped(RedisServer, make)
