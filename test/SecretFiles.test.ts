import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Effect, Either, Redacted } from "effect"
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ComponentConfig from "../src/families/component/ComponentConfig.js"
import * as WeComConfig from "../src/families/wecom/WeComConfig.js"
import * as ServerConfig from "../src/server/ServerConfig.js"
import * as StoreSpec from "../src/StoreSpec.js"
import * as TokenConfig from "../src/TokenConfig.js"

const dir = mkdtempSync(join(tmpdir(), "secret-files-"))
let files = 0
/** A secret file as an orchestrator writes it: the value and a trailing newline. */
const secretFile = (content: string): string => {
  const path = join(dir, `secret-${++files}`)
  writeFileSync(path, content, { mode: 0o600 })
  return path
}

const read = <A>(config: Effect.Effect<A, ConfigError.ConfigError>, env: Record<string, string>) =>
  config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))), Effect.either)

/** What start-up prints for a config error. */
const line = <A>(result: Either.Either<A, ConfigError.ConfigError>): string =>
  Either.match(result, { onLeft: ServerConfig.describe, onRight: () => "no error" })

const SECRET = "TopSecretValue0123456789abcdef"
const APP = "wx0123456789abcdef"
const COMPONENT = `${APP}:${SECRET}:MsgToken123:${"a".repeat(43)}`

// Every secret variable, what it holds, and what reads it (with the variables it needs besides).
const cases: ReadonlyArray<{
  readonly name: string
  readonly value: string
  readonly config: Effect.Effect<unknown, ConfigError.ConfigError>
  readonly env: Record<string, string>
}> = [
  { name: "CLIENT_KEYS", value: SECRET, config: ServerConfig.clientKeys, env: {} },
  { name: "WECHAT_APPS", value: `${APP}:${SECRET}`, config: TokenConfig.apps, env: {} },
  { name: "WECHAT_APP_SECRET", value: SECRET, config: TokenConfig.apps, env: { WECHAT_APP_ID: APP } },
  { name: "WECOM_APPS", value: `ww0123456789abcdef/1000002:${SECRET}`, config: WeComConfig.apps, env: {} },
  { name: "WECHAT_COMPONENTS", value: COMPONENT, config: ComponentConfig.components, env: {} },
  { name: "REDIS_PASSWORD", value: SECRET, config: StoreSpec.config, env: { TOKEN_STORE: "redis://127.0.0.1:6379" } }
]

// Secrets compared by value: `Redacted` values are equal only to themselves.
const reveal = (value: unknown): unknown =>
  Redacted.isRedacted(value)
    ? `revealed:${Redacted.value(value)}`
    : Array.isArray(value)
    ? value.map(reveal)
    : typeof value === "object" && value !== null
    ? Object.fromEntries(Object.entries(value).map(([key, field]) => [key, reveal(field)]))
    : value

describe("secrets from files (NAME_FILE)", () => {
  for (const { config, env, name, value } of cases) {
    it.effect(`${name}_FILE reads the same as ${name}, trailing newline trimmed`, () =>
      Effect.gen(function*() {
        const direct = yield* read(config, { ...env, [name]: value })
        const fromFile = yield* read(config, {
          ...env,
          [`${name}_FILE`]: secretFile(`${value}\n`)
        })
        expect(Either.isRight(direct)).toBe(true)
        expect(reveal(Either.getOrThrow(fromFile))).toEqual(reveal(Either.getOrThrow(direct)))
        expect(JSON.stringify(reveal(Either.getOrThrow(fromFile)))).toContain(`revealed:${SECRET}`)
      }))

    it.effect(`${name} and ${name}_FILE both set, or an unreadable ${name}_FILE, stop with one line naming it`, () =>
      Effect.gen(function*() {
        const both = line(yield* read(config, { ...env, [name]: value, [`${name}_FILE`]: secretFile(value) }))
        expect(both).toBe(`configuration error: ${name}: set ${name} or ${name}_FILE, not both`)

        const missing = line(yield* read(config, { ...env, [`${name}_FILE`]: join(dir, "no-such-file") }))
        expect(missing).toBe(`configuration error: ${name}_FILE: cannot read the file it names (ENOENT)`)

        const directory = line(yield* read(config, { ...env, [`${name}_FILE`]: dir }))
        expect(directory).toBe(`configuration error: ${name}_FILE: cannot read the file it names (EISDIR)`)
        for (const message of [both, missing, directory]) expect(message).not.toContain(SECRET)
      }))
  }

  it.effect("a file the process may not read is named, never quoted", () =>
    Effect.gen(function*() {
      const path = secretFile(`${APP}:${SECRET}\n`)
      chmodSync(path, 0o000)
      const result = line(yield* read(TokenConfig.apps, { WECHAT_APPS_FILE: path }))
      // root reads any file: then the content is read and parsed as usual.
      expect(result).toMatch(
        process.getuid?.() === 0
          ? /^no error$/
          : /^configuration error: WECHAT_APPS_FILE: cannot read the file it names \(EACCES\)$/
      )
      expect(result).not.toContain(SECRET)
    }))

  it.effect("a malformed list read from a file is reported like the variable, never quoting the file", () =>
    Effect.gen(function*() {
      const result = line(yield* read(TokenConfig.apps, { WECHAT_APPS_FILE: secretFile(`wxNOPE:${SECRET}\n`) }))
      expect(result).toContain("WECHAT_APPS: entry 1")
      expect(result).not.toContain(SECRET)
    }))
})
