/**
 * Several replicas of the central server as real child processes
 * (`node --import tsx src/bin.ts serve`), and the WeChat emulator in front
 * of them over loopback HTTP, one listener per replica so a test knows which
 * replica made each upstream call.
 *
 * Every replica is killed with SIGKILL when the scope closes if it is still
 * running, so a failing test leaves no orphan process behind. All waiting
 * runs on the live clock.
 */
import { Clock, Data, Deferred, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import { APP, STORE_KEY, WECOM_SUITES } from "./fixtures.js"

const root = new URL("../../", import.meta.url).pathname

export { APP }
export const SECRET = "replica-test-secret-never-logged"
export const CLIENT_KEY = "replica-client-key-0123456789abcdef"

export class ReplicaError extends Data.TaggedError("ReplicaError")<{ readonly message: string }> {}

export type Signal = "SIGTERM" | "SIGINT" | "SIGKILL"

export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Replica {
  readonly index: number
  readonly pid: number
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Everything the process printed so far (JSON logs), for failure messages. */
  readonly output: () => string
  readonly alive: () => boolean
  /** How the process ended (`code` null when a signal ended it); undefined while it runs. */
  readonly exitStatus: () => ExitStatus | undefined
  /** Sends `signal` and waits until the process has exited. */
  readonly kill: (signal: Signal) => Effect.Effect<void>
}

// The variables of the developer's shell must not leak into a replica.
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (
      /^(WECHAT_|CLIENT_KEYS|TOKEN_STORE|HOST$|PORT$|LOG_|REFRESH_MARGIN|UPSTREAM_TIMEOUT|NODE_OPTIONS|VITEST)/.test(
        key
      )
    ) continue
    env[key] = value
  }
  return env
}

const exited = (child: ChildProcessWithoutNullStreams): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const done = () => resume(Effect.void)
    if (child.exitCode !== null || child.signalCode !== null) done()
    else child.once("exit", done)
    return Effect.sync(() => child.off("exit", done))
  })

const live = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.withClock(effect, Clock.make())

/** GET `url` and its status; a refused or reset connection is status 0. */
export const statusOf = (url: string, init?: RequestInit): Effect.Effect<number> =>
  Effect.promise(() =>
    fetch(url, init).then(
      async (response) => {
        await response.arrayBuffer()
        return response.status
      },
      () => 0
    )
  )

/** A replica process that may not be listening yet. */
export interface Launched {
  readonly index: number
  readonly pid: number
  readonly output: () => string
  readonly alive: () => boolean
  readonly exitStatus: () => ExitStatus | undefined
  readonly kill: (signal: Signal) => Effect.Effect<void>
  /** Waits for its "Listening on" log line, then for `/healthz`. */
  readonly ready: Effect.Effect<Replica, ReplicaError>
}

/**
 * Launches one replica with `env` on a port of its own choosing (PORT=0; the
 * address is read from its "Listening on" log line). Start-up under a loaded
 * machine takes several seconds, up to minutes; the engine starts fetching before the HTTP
 * server listens.
 */
export const launchReplica = (
  index: number,
  env: Record<string, string>
): Effect.Effect<Launched, never, Scope.Scope> =>
  Effect.gen(function*() {
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "serve"], {
          cwd: root,
          env: { ...baseEnv(), HOST: "127.0.0.1", PORT: "0", LOG_FORMAT: "json", ...env }
        })
      ),
      (child) =>
        child.exitCode === null && child.signalCode === null
          ? Effect.zipRight(Effect.sync(() => child.kill("SIGKILL")), exited(child))
          : Effect.void
    )
    const listening = yield* Deferred.make<string, ReplicaError>()
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-200_000)
      const match = /"Listening on (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)
      if (match !== null) Deferred.unsafeDone(listening, Effect.succeed(match[1]!))
    }
    child.stdout.on("data", keep)
    child.stderr.on("data", keep)
    child.once("exit", (code, signal) =>
      Deferred.unsafeDone(
        listening,
        Effect.fail(
          new ReplicaError({ message: `replica ${index} exited (${code ?? signal}) before listening:\n${output}` })
        )
      ))
    const alive = () => child.exitCode === null && child.signalCode === null
    const exitStatus = () => alive() ? undefined : { code: child.exitCode, signal: child.signalCode }
    const kill = (signal: Signal) => Effect.zipRight(Effect.sync(() => child.kill(signal)), exited(child))
    const ready = Effect.gen(function*() {
      const url = yield* Deferred.await(listening).pipe(
        Effect.timeoutFail({
          // A full test run on a small machine can starve a start-up for a long time.
          duration: Duration.seconds(180),
          onTimeout: () => new ReplicaError({ message: `replica ${index} did not listen within 180 s:\n${output}` })
        })
      )
      yield* statusOf(`${url}/healthz`).pipe(
        Effect.filterOrFail(
          (status) => status === 200,
          () => new ReplicaError({ message: `replica ${index}: /healthz not ready` })
        ),
        Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(20))))
      )
      const replica: Replica = { index, pid: child.pid!, url, output: () => output, alive, exitStatus, kill }
      return replica
    }).pipe(live)
    const launched: Launched = { index, pid: child.pid!, output: () => output, alive, exitStatus, kill, ready }
    return launched
  })

/** Launches one replica and waits until it serves. */
export const spawnReplica = (
  index: number,
  env: Record<string, string>
): Effect.Effect<Replica, ReplicaError, Scope.Scope> =>
  Effect.flatMap(launchReplica(index, env), (launched) => launched.ready)

/** Starts `count` replicas at once; `envOf(index)` gives each its environment. */
export const startReplicas = (
  count: number,
  envOf: (index: number) => Record<string, string>
): Effect.Effect<ReadonlyArray<Replica>, ReplicaError, Scope.Scope> =>
  Effect.forEach(Array.from({ length: count }, (_, index) => index), (index) => spawnReplica(index, envOf(index)), {
    concurrency: "unbounded"
  })

/** The environment shared by every replica of a group; `upstream` is that replica's WeChat. */
export const replicaEnv = (options: {
  readonly upstream: string
  readonly redisUrl: string
  readonly mode: "classic" | "stable"
  readonly refreshMarginSeconds?: number
  readonly upstreamTimeoutSeconds?: number
}): Record<string, string> => ({
  WECHAT_APPS: `${APP}:${SECRET}`,
  WECHAT_API_BASE_URL: options.upstream,
  WECHAT_TOKEN_MODE: options.mode,
  TOKEN_STORE: options.redisUrl,
  CLIENT_KEYS: CLIENT_KEY,
  REFRESH_MARGIN_SECONDS: String(options.refreshMarginSeconds ?? 300),
  UPSTREAM_TIMEOUT_SECONDS: String(options.upstreamTimeoutSeconds ?? 10),
  LOG_LEVEL: "info"
})

/** The environment of a replica serving the fixtures' WeCom suite on `redisUrl`, WeCom at `wecomUrl`. */
export const suiteReplicaEnv = (wecomUrl: string, redisUrl: string): Record<string, string> => ({
  WECOM_SUITES,
  WECOM_API_BASE_URL: wecomUrl,
  TOKEN_STORE: redisUrl,
  STORE_ENCRYPTION_KEY: STORE_KEY,
  CLIENT_KEYS: CLIENT_KEY,
  LOG_LEVEL: "info"
})

export interface TokenAnswer {
  readonly status: number
  readonly token: string | undefined
  /** Live wall-clock milliseconds when the answer arrived. */
  readonly at: number
}

/** `GET /v1/apps/{APP}/access-token` on a replica. A refused or reset connection is status 0. */
export const getToken = (replica: Replica): Effect.Effect<TokenAnswer> =>
  Effect.promise(() =>
    fetch(`${replica.url}/v1/apps/${APP}/access-token`, { headers: { authorization: `Bearer ${CLIENT_KEY}` } }).then(
      async (response) => {
        const body = (await response.json().catch(() => undefined)) as { access_token?: unknown } | undefined
        const token = typeof body?.access_token === "string" ? body.access_token : undefined
        return { status: response.status, token, at: Date.now() }
      },
      () => ({ status: 0, token: undefined, at: Date.now() })
    )
  )

/** `GET url` with the client key: its status and JSON body (`{}` when none). A refused connection is status 0. */
export const getJson = (
  url: string
): Effect.Effect<{ readonly status: number; readonly body: Record<string, unknown> }> =>
  Effect.promise(() =>
    fetch(url, { headers: { authorization: `Bearer ${CLIENT_KEY}` } }).then(
      async (response) => ({
        status: response.status,
        body: ((await response.json().catch(() => undefined)) ?? {}) as Record<string, unknown>
      }),
      () => ({ status: 0, body: {} })
    )
  )

export interface Readiness {
  readonly status: number
  readonly storeHealthy: boolean | undefined
}

/** `GET /readyz`: its status and what it says about the store. */
export const readiness = (replica: Replica): Effect.Effect<Readiness> =>
  Effect.promise(() =>
    fetch(`${replica.url}/readyz`).then(
      async (response) => {
        const body = (await response.json().catch(() => undefined)) as { store?: { healthy?: unknown } } | undefined
        const healthy = body?.store?.healthy
        return { status: response.status, storeHealthy: typeof healthy === "boolean" ? healthy : undefined }
      },
      () => ({ status: 0, storeHealthy: undefined })
    )
  )

/**
 * `self` with the last lines `replica` logged added to a `ReplicaError` it
 * fails with: a wait that times out in a full run is then explained by the
 * replica's own account instead of by its silence.
 */
export const explainedBy =
  (replica: { readonly index: number; readonly output: () => string }) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.mapError(self, (error) =>
      error instanceof ReplicaError
        ? new ReplicaError({
          message: `${error.message}\nreplica ${replica.index}'s log, its end:\n${replica.output().slice(-12_000)}`
        }) as E
        : error)

/** Retries `check` on the live clock until it holds, for at most `within`. */
export const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  within: Duration.DurationInput = Duration.seconds(20)
): Effect.Effect<void, E | ReplicaError, R> =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () =>
      new ReplicaError({ message: `never happened within ${Duration.format(within)}: ${what}` })),
    Effect.retry({
      schedule: Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(within)),
      while: (error) =>
        error instanceof ReplicaError
    }),
    Effect.asVoid,
    live
  )

/** One upstream call as the emulator saw it. */
export interface UpstreamCall {
  readonly replica: number
  readonly path: string
  /** Live wall-clock milliseconds on arrival. */
  readonly at: number
}

export interface Upstreams {
  readonly emulator: Emulator.WeChatEmulatorShape
  /** The base URL replica `index` must use as `WECHAT_API_BASE_URL`. */
  readonly urlOf: (index: number) => string
  /** Token calls (`/cgi-bin/token`, `/cgi-bin/stable_token`) received so far, oldest first. */
  readonly tokenCalls: Effect.Effect<ReadonlyArray<UpstreamCall>>
  /** The next token call that arrives. */
  readonly nextTokenCall: Effect.Effect<Deferred.Deferred<UpstreamCall>>
  /** While closed, token calls wait at the door (their replica's upstream timeout still runs). */
  readonly closeGate: Effect.Effect<void>
  readonly openGate: Effect.Effect<void>
}

const isTokenPath = (path: string) => path === "/cgi-bin/token" || path === "/cgi-bin/stable_token"

/**
 * One emulator (live clock) with a listener per replica, each recording the
 * calls it receives before the emulator answers them.
 */
export const upstreams = (
  count: number,
  options: { readonly tokenLifetime?: Duration.DurationInput } = {}
): Effect.Effect<Upstreams, never, Scope.Scope> =>
  Effect.gen(function*() {
    const emulator = yield* Emulator.make({
      apps: [{ appId: APP, secret: SECRET }],
      ...(options.tokenLifetime === undefined ? {} : { tokenLifetime: options.tokenLifetime })
    })
    const calls = yield* Ref.make<ReadonlyArray<UpstreamCall>>([])
    const watchers = yield* Ref.make<ReadonlyArray<Deferred.Deferred<UpstreamCall>>>([])
    // An open gate is a completed Deferred; closing replaces it with a pending one.
    const gate = yield* Ref.make(yield* Deferred.make<void>())
    yield* Deferred.succeed(yield* Ref.get(gate), undefined)

    const urls = yield* Effect.forEach(Array.from({ length: count }, (_, index) => index), (replica) => {
      const recording: Emulator.WeChatEmulatorShape = {
        ...emulator,
        handle: (request) =>
          Effect.gen(function*() {
            if (isTokenPath(request.path)) {
              const call: UpstreamCall = { replica, path: request.path, at: Date.now() }
              yield* Ref.update(calls, (all) => [...all, call])
              const waiting = yield* Ref.getAndSet(watchers, [])
              yield* Effect.forEach(waiting, (watcher) => Deferred.succeed(watcher, call), { discard: true })
              yield* Deferred.await(yield* Ref.get(gate))
            }
            return yield* emulator.handle(request)
          })
      }
      return Emulator.listen().pipe(
        Effect.provide(Layer.succeed(Emulator.WeChatEmulator, recording)),
        Effect.map((served) => served.url),
        Effect.orDie
      )
    })

    const served: Upstreams = {
      emulator,
      urlOf: (index) => urls[index]!,
      tokenCalls: Ref.get(calls),
      nextTokenCall: Effect.gen(function*() {
        const watcher = yield* Deferred.make<UpstreamCall>()
        yield* Ref.update(watchers, (all) => [...all, watcher])
        return watcher
      }),
      closeGate: Effect.gen(function*() {
        if (yield* Deferred.isDone(yield* Ref.get(gate))) yield* Ref.set(gate, yield* Deferred.make<void>())
      }),
      openGate: Effect.flatMap(Ref.get(gate), (current) => Deferred.succeed(current, undefined))
    }
    return served
  }).pipe(live)
