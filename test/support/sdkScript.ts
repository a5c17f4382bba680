/**
 * Runs one of the gateway's SDK scripts (test/gateway/sdk/*.mjs) in a
 * process of its own, with `env` and nothing else of the test's
 * environment but PATH, and reads the one JSON line it prints.
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"

/** Where .ci/gateway-sdks.sh installs the SDKs from npm. */
export const sdkDir = new URL("../gateway/sdk/", import.meta.url).pathname

/** Dies naming the install step when `sdk` is not installed. */
export const requireSdk = (sdk: string): Effect.Effect<void> =>
  existsSync(join(sdkDir, "node_modules", sdk))
    ? Effect.void
    : Effect.dieMessage(`${sdk} is not installed: run bash .ci/gateway-sdks.sh (npm test does)`)

/** Runs `script` (a file in `sdkDir`) with `env`; its printed JSON, or why it failed. */
export const runSdkScript = (script: string, env: Record<string, string>) =>
  Effect.async<Record<string, unknown>, Error>((resume) => {
    const child = execFile(process.execPath, [join(sdkDir, script)], {
      cwd: sdkDir,
      env: { PATH: process.env["PATH"] ?? "", ...env },
      timeout: 120_000
    }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(JSON.parse(stdout) as Record<string, unknown>)
          : Effect.fail(new Error(`${script} failed: ${error.message}\n${stderr}`))
      ))
    return Effect.sync(() => child.kill("SIGKILL"))
  })
