import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { call, startServer, startUpstream } from "../server/harness.js"

const REDOCLY = join(import.meta.dirname, "..", "..", "node_modules", ".bin", "redocly")

/** `redocly lint` (recommended rules) over a document: its exit code and its report. */
const lint = (document: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "openapi-lint-"))),
    (directory) =>
      Effect.async<{ readonly code: number; readonly report: string }>((resume) => {
        const file = join(directory, "openapi.json")
        writeFileSync(file, document)
        // No telemetry or update check: CI may have no network.
        const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" }
        execFile(
          REDOCLY,
          ["lint", file, "--format=json"],
          { timeout: 60_000, env },
          (error, stdout) =>
            resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), report: stdout }))
        )
      }),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

describe("TokenServerApi", () => {
  it.live(
    "the live /openapi.json passes redocly lint's recommended rules with no error and no warning",
    () =>
      Effect.gen(function*() {
        const base = yield* startServer({ upstream: yield* startUpstream })
        const document = (yield* call(`${base}/openapi.json`)).text
        const { code, report } = yield* lint(document)
        expect(JSON.parse(report)).toMatchObject({ totals: { errors: 0, warnings: 0 }, problems: [] })
        expect(code).toBe(0)
      }).pipe(Effect.scoped),
    90_000
  )

  it.live("the document names its schemas readably and says what the server really does", () =>
    Effect.gen(function*() {
      const base = yield* startServer({ upstream: yield* startUpstream })
      const spec = (yield* call(`${base}/openapi.json`)).json
      const names = Object.keys(spec.components.schemas)
      for (const name of names) expect(name).toMatch(/^[A-Z][A-Za-z]+$/)
      expect(JSON.stringify(spec)).not.toMatch(/maxLength\(|nonNegative|"title":"int"/)
      const schemas = spec.components.schemas
      expect(schemas.ExpiresAt.format).toBe("date-time")
      // Unknown fields in a request body are ignored; in an answer there are none.
      expect(schemas.JsSdkConfigRequest.additionalProperties).toBe(true)
      expect(schemas.RefreshRequest.additionalProperties).toBe(true)
      expect(schemas.AccessTokenResponse.additionalProperties).toBe(false)
      expect(spec.servers).toEqual([{ url: "/", description: expect.any(String) }])
      expect(spec.info.license.name).toBe("MIT")
      for (const tag of spec.tags) expect(tag.description).toEqual(expect.any(String))
      const refresh = spec.paths["/v1/apps/{appId}/access-token/refresh"].post.responses
      expect(Object.keys(refresh).sort()).toEqual(["200", "400", "401", "404", "405", "408", "413", "503"])
      expect(spec.paths["/readyz"].get.responses["503"].content["application/json"].schema).toEqual({
        $ref: "#/components/schemas/NotReady"
      })
    }).pipe(Effect.scoped))
})
