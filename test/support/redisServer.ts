/**
 * A real `redis-server` for tests: its own process on a free loopback port,
 * nothing persisted, stopped with the scope. `stop` and `start` let a test
 * take Redis away and bring it back on the same port; `kill` takes it away
 * as a crash does. `makeWith` starts it with TLS, extra options (ACL users,
 * `--replicaof`, cluster mode) or as a sentinel; `certificates` makes a CA
 * and a server certificate with `openssl`.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"

export class RedisServerError extends Data.TaggedError("RedisServerError")<{ readonly message: string }> {}

export interface RedisServerShape {
  readonly port: number
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS) */
  readonly url: string
  /** The server's own directory (its config files live there). */
  readonly dir: string
  /** Stops the server and waits for the process to exit. Its data is gone: nothing is persisted. */
  readonly stop: Effect.Effect<void>
  /** SIGKILL, as a crashed host: no goodbye to replicas or clients. */
  readonly kill: Effect.Effect<void>
  /** Starts the server again on the same port and waits until it answers PING. */
  readonly start: Effect.Effect<void, RedisServerError>
}

export class RedisServer extends Context.Tag("test/RedisServer")<RedisServer, RedisServerShape>() {}

/** PEM files (paths) of a server's TLS identity and the CA that signed it. */
export interface TlsFiles {
  readonly ca: string
  readonly cert: string
  readonly key: string
}

export interface Options {
  /** Serve TLS only (the plain port is closed). */
  readonly tls?: TlsFiles
  /** More `redis-server` options: `["--user", "alice on >pw ~k:* +@all"]`, `["--replicaof", …]`. */
  readonly args?: ReadonlyArray<string>
  /** Run as a sentinel with this configuration (sentinels rewrite their file, so it is written to `dir`). */
  readonly sentinel?: string
}

const run = (command: string, args: ReadonlyArray<string>) =>
  Effect.async<string, RedisServerError>((resume) => {
    execFile(command, args, { encoding: "utf8" }, (error, stdout, stderr) => {
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(
            new RedisServerError({ message: `${command} ${args.join(" ")} failed: ${stderr || error.message}` })
          )
      )
    })
  })

/** `redis-cli` with these arguments; its output. */
export const cli = (args: ReadonlyArray<string>) => run("redis-cli", args)

/**
 * A CA and a server certificate it signed, for `names` (IP addresses or DNS
 * names), made with `openssl` in a fresh directory removed with the scope.
 * Certificates of another CA: call it twice.
 */
export const certificates = (names: ReadonlyArray<string>): Effect.Effect<TlsFiles, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "redis-tls-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const file = (name: string) => Path.join(dir, name)
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    yield* run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.crt"),
      "-days",
      "2",
      "-subj",
      "/CN=test CA"
    ])
    yield* run("openssl", [
      "req",
      ...ec,
      "-keyout",
      file("server.key"),
      "-out",
      file("server.csr"),
      "-subj",
      "/CN=redis"
    ])
    const alt = names.map((name) => (Net.isIP(name) ? `IP:${name}` : `DNS:${name}`)).join(",")
    yield* Effect.promise(() => Fs.writeFile(file("san.ext"), `subjectAltName=${alt}\n`))
    yield* run("openssl", [
      "x509",
      "-req",
      "-in",
      file("server.csr"),
      "-CA",
      file("ca.crt"),
      "-CAkey",
      file("ca.key"),
      "-CAcreateserial",
      "-out",
      file("server.crt"),
      "-days",
      "2",
      "-extfile",
      file("san.ext")
    ])
    return { ca: file("ca.crt"), cert: file("server.crt"), key: file("server.key") }
  })

// redis-server has no `--port 0`: let the kernel pick a free port, release it, pass it on.
export const freePort = Effect.async<number, RedisServerError>((resume) => {
  const server = Net.createServer()
  server.once("error", (error) => resume(Effect.fail(new RedisServerError({ message: error.message }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * True when a server on `port` answers PING now (or asks for a password
 * first: it is up). With `tls`, over TLS, the certificate not checked.
 */
export const ping = (port: number, tls = false): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = tls
      ? Tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false })
      : Net.connect(port, "127.0.0.1")
    let reply = ""
    socket.setEncoding("utf8")
    socket.once(tls ? "secureConnect" : "connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk: string) => {
      reply += chunk
      if (reply.includes("\r\n")) {
        socket.destroy()
        resume(Effect.succeed(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH")))
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
export const makeWith = (
  options: Options
): Effect.Effect<RedisServerShape, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "redis-test-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const current = yield* Ref.make<ChildProcess | undefined>(undefined)
    // The server's own output, kept for the failure message.
    let output = ""

    const spawnServer = Effect.async<ChildProcess, RedisServerError>((resume) => {
      const ports = options.tls === undefined ? ["--port", String(port)] : [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        options.tls.cert,
        "--tls-key-file",
        options.tls.key,
        "--tls-ca-cert-file",
        options.tls.ca,
        "--tls-auth-clients",
        "optional",
        "--tls-replication",
        "yes"
      ]
      const child = spawn(
        "redis-server",
        [
          ...(options.sentinel !== undefined ? [Path.join(dir, "sentinel.conf"), "--sentinel"] : []),
          ...ports,
          "--bind",
          "127.0.0.1",
          ...(options.sentinel !== undefined ? [] : ["--save", "", "--appendonly", "no"]),
          "--dir",
          dir,
          ...(options.args ?? [])
        ],
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

    const kill = Effect.gen(function*() {
      const child = yield* Ref.getAndSet(current, undefined)
      if (child === undefined) return
      child.kill("SIGKILL")
      yield* exited(child)
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

    const awaitPong = ping(port, options.tls !== undefined).pipe(
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
          Effect.suspend(() =>
            Effect.fail(new RedisServerError({ message: `redis-server exited at start:\n${output}` }))
          )
        )
      )
    }).pipe(Effect.withClock(Clock.make()))

    if (options.sentinel !== undefined) {
      yield* Effect.promise(() => Fs.writeFile(Path.join(dir, "sentinel.conf"), options.sentinel ?? ""))
    }
    yield* Effect.addFinalizer(() => stop)
    yield* start
    const url = `${options.tls === undefined ? "redis" : "rediss"}://127.0.0.1:${port}`
    return { port, url, dir, stop, kill, start }
  })

/** A plain server, as `makeWith({})`. */
export const make: Effect.Effect<RedisServerShape, RedisServerError, Scope.Scope> = makeWith({})

/** One server shared by the tests of a `layer(...)` block. */
export const layer: Layer.Layer<RedisServer, RedisServerError> = Layer.scoped(RedisServer, make)

/** Retries `check` on the live clock every 100 ms until it holds, for at most `within`. */
const until = <E>(check: Effect.Effect<boolean, E>, what: string, within = Duration.seconds(30)) =>
  check.pipe(
    Effect.catchAll(() => Effect.succeed(false)),
    Effect.filterOrFail((ok) => ok, () => new RedisServerError({ message: `never happened: ${what}` })),
    Effect.retry(Schedule.spaced(Duration.millis(100)).pipe(Schedule.upTo(within))),
    Effect.asVoid,
    Effect.withClock(Clock.make())
  )

export interface SentinelTopology {
  readonly master: RedisServerShape
  readonly replica: RedisServerShape
  readonly sentinels: ReadonlyArray<RedisServerShape>
  /** `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/<name>` */
  readonly url: string
  /** The master's port as the sentinels name it now. */
  readonly masterPort: Effect.Effect<number, RedisServerError>
}

export const MASTER_NAME = "tokens"

/**
 * One master, one replica and three sentinels (quorum 2) that declare the
 * master down after 1 s without an answer and promote the replica.
 */
export const sentinelTopology: Effect.Effect<SentinelTopology, RedisServerError, Scope.Scope> = Effect.gen(
  function*() {
    const master = yield* make
    const replica = yield* makeWith({ args: ["--replicaof", "127.0.0.1", String(master.port)] })
    const conf = [
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      ""
    ].join("\n")
    const sentinels = yield* Effect.forEach([0, 1, 2], () => makeWith({ sentinel: conf }), { concurrency: 3 })
    const masterPort = Effect.map(
      cli(["-p", String(sentinels[0]!.port), "SENTINEL", "get-master-addr-by-name", MASTER_NAME]),
      (reply) => Number(reply.trim().split("\n")[1])
    )
    // Ready when the replica has synced and every sentinel knows both servers and its peers.
    yield* until(
      Effect.map(
        cli(["-p", String(replica.port), "INFO", "replication"]),
        (info) => info.includes("master_link_status:up")
      ),
      "the replica syncs"
    )
    yield* until(
      Effect.map(
        Effect.forEach(sentinels, (sentinel) => cli(["-p", String(sentinel.port), "SENTINEL", "master", MASTER_NAME])),
        (replies) => replies.every((reply) => /num-slaves\n1\n/.test(reply) && /num-other-sentinels\n2\n/.test(reply))
      ),
      "every sentinel sees the replica and two peers"
    )
    const url = `redis+sentinel://${sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(",")}/${MASTER_NAME}`
    return { master, replica, sentinels, url, masterPort }
  }
)

export interface ClusterTopology {
  /** Three masters then their three replicas, in the order `--cluster create` was given them. */
  readonly nodes: ReadonlyArray<RedisServerShape>
  /** `redis+cluster://` with every node as a seed. */
  readonly url: string
  /** The node serving `key`'s slot as master now. */
  readonly masterOf: (key: string) => Effect.Effect<RedisServerShape, RedisServerError>
}

/**
 * Three masters with a replica each (`redis-cli --cluster create`), a node
 * declared failed after 1 s without an answer.
 */
export const clusterTopology: Effect.Effect<ClusterTopology, RedisServerError, Scope.Scope> = Effect.gen(function*() {
  const nodes = yield* Effect.forEach(
    [0, 1, 2, 3, 4, 5],
    () =>
      makeWith({
        args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"]
      }),
    { concurrency: 6 }
  )
  yield* cli([
    "--cluster",
    "create",
    ...nodes.map((node) => `127.0.0.1:${node.port}`),
    "--cluster-replicas",
    "1",
    "--cluster-yes"
  ])
  yield* until(
    Effect.map(
      Effect.forEach(nodes, (node) => cli(["-p", String(node.port), "CLUSTER", "INFO"])),
      (infos) => infos.every((info) => info.includes("cluster_state:ok"))
    ),
    "every node reports cluster_state:ok"
  )
  // Asked of every live node in turn: the one killed last no longer answers.
  const ask = (args: ReadonlyArray<string>) =>
    Effect.firstSuccessOf(nodes.map((node) => cli(["-p", String(node.port), ...args])))
  const masterOf = (key: string) =>
    Effect.gen(function*() {
      const slot = Number((yield* ask(["CLUSTER", "KEYSLOT", key])).trim())
      // CLUSTER NODES: `id ip:port@bus flags master ping pong epoch state slot-range…` per node.
      for (const line of (yield* ask(["CLUSTER", "NODES"])).trim().split("\n")) {
        const [, address, flags, , , , , state, ...ranges] = line.split(" ")
        if (!flags?.includes("master") || flags.includes("fail") || state !== "connected") continue
        const serves = ranges.some((range) => {
          const [start, end = start] = range.split("-").map(Number)
          return start! <= slot && slot <= end!
        })
        const node = nodes.find((node) => address?.startsWith(`127.0.0.1:${node.port}@`))
        if (serves && node !== undefined) return node
      }
      return yield* new RedisServerError({ message: `no master serves the slot of ${key}` })
    })
  const url = `redis+cluster://${nodes.map((node) => `127.0.0.1:${node.port}`).join(",")}`
  return { nodes, url, masterOf }
})
