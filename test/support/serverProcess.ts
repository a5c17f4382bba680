/**
 * The bin's `serve` as a child process on a free loopback port, killed with
 * the scope: the server as an operator starts it.
 */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { freePort } from "./redisServer.js"

const ROOT = NodePath.join(import.meta.dirname, "..", "..")

export interface ServerProcess {
  readonly child: ChildProcess
  /** `http://127.0.0.1:<port>` */
  readonly base: string
  /** What the process printed so far (its last 20,000 characters), for failure messages. */
  readonly output: () => string
}

const launch = (env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.map(Effect.orDie(freePort), (port): ServerProcess => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "serve"], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "", PORT: String(port), ...env }
      })
      let output = ""
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString("utf8")).slice(-20_000)
      }
      child.stdout.on("data", keep)
      child.stderr.on("data", keep)
      return { child, base: `http://127.0.0.1:${port}`, output: () => output }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const answers = (base: string) =>
  Effect.promise(() =>
    fetch(`${base}/healthz`).then(async (response) => (await response.arrayBuffer(), true), () => false)
  )

/**
 * `serve` with only `env` (and PATH, PORT) set: nothing configured is the
 * demo. Returns once the server answers HTTP. `freePort` closes the port it
 * found before the server takes it, so in a full parallel run another
 * process can take it first: a server that exits saying its port is in use
 * is started again on another.
 */
export const spawnServer = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    for (let attempt = 1;; attempt++) {
      const server = yield* launch(env)
      for (let look = 0; look < 1_200 && server.child.exitCode === null; look++) {
        if (yield* answers(server.base)) return server
        yield* Effect.sleep("100 millis")
      }
      if (server.child.exitCode === null) {
        return yield* Effect.die(new Error(`server never answered within 2 minutes:\n${server.output()}`))
      }
      if (attempt < 5 && server.output().includes("already in use")) continue
      return yield* Effect.die(new Error(`server exited ${server.child.exitCode}:\n${server.output()}`))
    }
  })

/** Asks `/readyz` until it answers 200; dies if the process exits or it never does. */
export const waitReady = ({ base, child, output }: ServerProcess) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (child.exitCode !== null) return yield* Effect.die(new Error(`server exited ${child.exitCode}:\n${output()}`))
      const ready = yield* Effect.promise(() =>
        fetch(`${base}/readyz`).then((response) => response.status === 200, () => false)
      )
      if (ready) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.die(new Error(`server never became ready:\n${output()}`))
  })
