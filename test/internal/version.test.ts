import * as OpenApi from "@effect/platform/OpenApi"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { TokenServerApi } from "../../src/api/TokenServerApi.js"

const root = new URL("../../", import.meta.url).pathname
const packageVersion = (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string }).version

describe("version", () => {
  it("the CLI and the OpenAPI document give package.json's version", () => {
    const printed = execFileSync(process.execPath, ["--import", "tsx", "src/bin.ts", "--version"], {
      cwd: root,
      encoding: "utf8"
    })
    expect(printed.trim()).toBe(packageVersion)
    expect(OpenApi.fromApi(TokenServerApi).info.version).toBe(packageVersion)
  })
})
