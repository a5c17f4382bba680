import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect } from "effect"
import { Agent, request as httpRequest } from "node:http"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { APP, auth, startStack } from "../support/serverStack.js"

// Short in CI; `npm run soak` runs the full minute.
const SECONDS = Number(process.env["SOAK_SECONDS"] ?? "12")
const CONNECTIONS = Number(process.env["SOAK_CONNECTIONS"] ?? "300")
// Short-lived tokens: the engine refreshes every 6–9 s (margin = half the
// lifetime, jitter up to half the margin), so even the 2 + 12 s CI run
// crosses at least one refresh point.
const TOKEN_LIFETIME = Duration.seconds(12)
const MIN_REFRESH_SECONDS = 6

// A full collection before each memory reading, so garbage does not pass for growth.
setFlagsFromString("--expose-gc")
const collect: () => void = runInNewContext("gc")
const memory = () => {
  collect()
  const usage = process.memoryUsage()
  return { heapMiB: usage.heapUsed / 2 ** 20, rssMiB: usage.rss / 2 ** 20 }
}

describe("Soak", () => {
  it.live(
    `${CONNECTIONS} keep-alive connections for ${SECONDS} s while tokens live ${
      Duration.format(TOKEN_LIFETIME)
    }: no error, every token valid when served, memory flat`,
    () =>
      Effect.gen(function*() {
        const stack = yield* startStack({ tokenLifetime: TOKEN_LIFETIME })
        const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS })
        yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
        const get = Effect.async<{ status: number; body: string }, NodeJS.ErrnoException>((resume) => {
          const req = httpRequest(
            { host: "127.0.0.1", port: stack.port, path: `/v1/apps/${APP}/access-token`, headers: auth(), agent },
            (res) => {
              let body = ""
              res.setEncoding("utf8")
              res.on("data", (chunk: string) => (body += chunk))
              res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
              res.on("error", (error) => resume(Effect.fail(error)))
            }
          )
          req.on("error", (error) => resume(Effect.fail(error)))
          req.end()
        })
        const tally = {
          requests: 0,
          errors: 0,
          invalid: 0,
          reconnects: 0,
          tokens: new Set<string>(),
          failures: new Map<string, number>()
        }
        // A keep-alive socket the server closed as idle just as a request went
        // out: every HTTP client retries an idempotent GET once on a fresh
        // socket (undici and RemoteTokenLayer's fetch do); counted, not hidden.
        const getOnce = get.pipe(
          Effect.tapError(() => Effect.sync(() => tally.reconnects++)),
          Effect.retry({ times: 1, while: (error: NodeJS.ErrnoException) => error.code === "ECONNRESET" })
        )
        const worker = (until: number) =>
          Effect.gen(function*() {
            while ((yield* Clock.currentTimeMillis) < until) {
              const answer = yield* Effect.either(getOnce)
              tally.requests++
              if (answer._tag === "Left" || answer.right.status !== 200) {
                tally.errors++
                const kind = answer._tag === "Left"
                  ? answer.left.message
                  : `${answer.right.status} ${answer.right.body.slice(0, 200)}`
                tally.failures.set(kind, (tally.failures.get(kind) ?? 0) + 1)
                continue
              }
              const { access_token, expires_in } = JSON.parse(answer.right.body) as {
                access_token: string
                expires_in: number
              }
              // Valid at the time it arrived: WeChat (the emulator) still accepts it, and the server promised time left.
              if (!(yield* stack.emulator.isValidToken(access_token)) || expires_in <= 0) tally.invalid++
              tally.tokens.add(access_token)
            }
          })
        const run = (seconds: number) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.forEach(Array.from({ length: CONNECTIONS }), () =>
              worker(now + seconds * 1000), {
              concurrency: "unbounded",
              discard: true
            }))
        // Warm-up: connections open, code paths compiled, before the first reading.
        yield* run(2)
        const start = memory()
        const warmRequests = tally.requests
        yield* run(SECONDS)
        const end = memory()
        const fetches = (yield* stack.emulator.stats).apps[APP]!.classicCalls
        console.info(
          `soak: ${tally.requests - warmRequests} requests in ${SECONDS} s over ${CONNECTIONS} connections, ` +
            `${tally.errors} errors, ${tally.invalid} invalid, ${tally.reconnects} keep-alive reconnects, ${tally.tokens.size} tokens, ${fetches} upstream fetches, ` +
            `heap ${start.heapMiB.toFixed(1)} → ${end.heapMiB.toFixed(1)} MiB, RSS ${start.rssMiB.toFixed(1)} → ${
              end.rssMiB.toFixed(1)
            } MiB`
        )
        expect(Object.fromEntries(tally.failures)).toEqual({})
        expect(tally.errors).toBe(0)
        expect(tally.invalid).toBe(0)
        expect(tally.requests - warmRequests).toBeGreaterThan(CONNECTIONS)
        // The run crossed refresh points, and the herd did not cause extra fetches.
        expect(tally.tokens.size).toBeGreaterThanOrEqual(2)
        expect(fetches).toBeLessThanOrEqual(Math.ceil((SECONDS + 2) / MIN_REFRESH_SECONDS) + 1)
        // Flat: what a request leaves behind is collected; allow for caches and JIT code.
        expect(end.heapMiB - start.heapMiB).toBeLessThan(32)
      }).pipe(Effect.scoped),
    60_000 + SECONDS * 3_000
  )
})
