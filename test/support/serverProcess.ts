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
}

/** `serve` with only `env` (and PATH, PORT) set: nothing configured is the demo. */
export const spawnServer = (env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.map(Effect.orDie(freePort), (port): ServerProcess => ({
      child: spawn(process.execPath, ["--import", "tsx", "src/bin.ts", "serve"], {
        cwd: ROOT,
        stdio: "ignore",
        env: { PATH: process.env.PATH ?? "", PORT: String(port), ...env }
      }),
      base: `http://127.0.0.1:${port}`
    })),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Asks `/readyz` until it answers 200; dies if the process exits or it never does. */
export const waitReady = ({ base, child }: ServerProcess) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 200; attempt++) {
      if (child.exitCode !== null) return yield* Effect.die(new Error(`server exited ${child.exitCode}`))
      const ready = yield* Effect.promise(() =>
        fetch(`${base}/readyz`).then((response) => response.status === 200, () => false)
      )
      if (ready) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.die(new Error("server never became ready"))
  })
