/**
 * Server processes the benches start and measure: the token server as it runs
 * in production (compiled JS, `node dist/bin.js serve`), the comparison
 * servers under tsx, and what /proc says about each (CPU seconds, RSS).
 */
import { Effect, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { CLIENT_KEY } from "./Figure.js"

const root = new URL("../", import.meta.url).pathname

export interface ServerProcess {
  readonly url: string
  readonly pid: number
  /** What the process has printed: stdout up to its "Listening on" line, all of stderr. */
  readonly output: () => string
}

/**
 * The token server from `npm run build`. `npm start` runs the same code under
 * tsx, whose compiler stays resident (about 90 MB more RSS); a production
 * deployment runs the compiled JS, so that is what the benches measure.
 */
export const tokenServer = ["dist/bin.js", "serve"] as const

/** A bench-side script (TypeScript) run under tsx. */
export const tsxScript = (script: string) => ["--import", "tsx", script] as const

// `BENCH_PROFILE=DIR npm run bench -- serving` writes a CPU profile of each
// server process into DIR (node --cpu-prof), for finding what a figure costs.
const profile = process.env["BENCH_PROFILE"]
const nodeArgs = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]

// SIGTERM first, so a profiled child writes its profile; SIGKILL if it lingers.
const stop = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill("SIGTERM")
  })

/**
 * Starts `node <argv>` in the repository root and waits for its
 * "Listening on <url>" line; the process stops when the scope closes.
 */
export const start = (argv: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess; readonly url: string; readonly output: () => string }, Error>(
      (resume) => {
        const entry = argv.find((arg) => /\.[jt]s$/.test(arg))
        if (entry !== undefined && !existsSync(new URL(entry, `file://${root}`))) {
          return resume(
            Effect.fail(new Error(`${entry} does not exist; run \`npm run build\` first (npm run bench does)`))
          )
        }
        const child = spawn(process.execPath, [...nodeArgs, ...argv], {
          cwd: root,
          env: { PATH: process.env["PATH"] ?? "", ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        const onData = (chunk: Buffer) => {
          output += chunk.toString()
          const match = /Listening on (http:\/\/[0-9.]+:\d+)/.exec(output)
          if (match !== null) {
            child.stdout.off("data", onData)
            // Keep draining stdout so a chatty child never blocks on a full pipe.
            child.stdout.resume()
            resume(Effect.succeed({ child, url: match[1]!, output: () => output }))
          }
        }
        child.stdout.on("data", onData)
        child.stderr.on("data", (chunk: Buffer) => {
          output += chunk.toString()
        })
        child.once("exit", (code) => resume(Effect.fail(new Error(`${argv.join(" ")} exited with ${code}: ${output}`))))
        return Effect.sync(() => child.kill("SIGKILL"))
      }
    ),
    ({ child }) => stop(child)
  ).pipe(
    // The line comes at info level: a server started with a quieter LOG_LEVEL never says it.
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error(`${argv.join(" ")} did not say where it listens within 60 s`)
    }),
    Effect.map(({ child, output, url }): ServerProcess => ({ url, pid: child.pid!, output }))
  )

export const headers = { authorization: `Bearer ${CLIENT_KEY}` }

/** GETs `url` until it answers 200 (a server fetches its tokens at start-up). */
export const fetchWhenReady = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, { headers })
    if (response.status !== 200) throw new Error(`${url}: status ${response.status}`)
    return response.text()
  }).pipe(Effect.retry({ times: 600, schedule: Schedule.spaced("100 millis") }))

// /proc/<pid>/stat and status exist on Linux only; elsewhere these figures are left out.
const procFile = (pid: number, name: string): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "utf8")
  } catch {
    return undefined
  }
}

/** CPU seconds a process has used so far (user + system); ticks are 1/100 s on every Linux we run on. */
export const cpuSeconds = (pid: number): number | undefined => {
  const fields = procFile(pid, "stat")?.split(") ")[1]?.split(" ")
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / 100
}

/** Resident set size of a process in MB. */
export const rssMb = (pid: number): number | undefined => {
  const kb = /VmRSS:\s+(\d+)/.exec(procFile(pid, "status") ?? "")?.[1]
  return kb === undefined ? undefined : Number(kb) / 1024
}
