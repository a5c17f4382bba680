/**
 * Client keys of the credential registry in the one key check: a key added
 * works at once, scoped as the registry says, and a revoked key is refused
 * even on a keep-alive connection that verified it before.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import { Unauthorized } from "../../../src/api/ApiError.js"
import { hashKey } from "../../../src/CredentialRegistry.js"
import * as ClientAuth from "../../../src/server/ClientAuth.js"
import * as ServerConfig from "../../../src/server/ServerConfig.js"
import type { ClientKey } from "../../../src/server/ServerConfig.js"

const CONFIGURED = "configured-client-key-0123456789"
const ADDED = "added-at-run-time-0123456789abcdefghijklmno"
const APP = "wx0123456789abcdef"

const registryOf = () => {
  const keys = new Map<string, ClientKey>()
  let epoch = 0
  return {
    add: (key: string, apps?: ReadonlyArray<string>) =>
      keys.set(hashKey(Redacted.make(key)), { key: Redacted.make("registry"), apps: apps as never }),
    revoke: (key: string) => {
      keys.delete(hashKey(Redacted.make(key)))
      epoch += 1
    },
    source: { byHash: (hash: string) => keys.get(hash), epoch: () => epoch }
  }
}

describe("ClientAuth with the registry's keys", () => {
  it("a registry key works at once, with its scope", () => {
    const registry = registryOf()
    const check = ClientAuth.check([Redacted.make(CONFIGURED)], registry.source)
    expect(check.key(`Bearer ${ADDED}`)).toBeInstanceOf(Unauthorized)
    registry.add(ADDED, [APP])
    const key = check.key(`Bearer ${ADDED}`)
    expect(key).not.toBeInstanceOf(Unauthorized)
    expect(check.allows(key as ClientKey, APP)).toBe(true)
    expect(check.allows(key as ClientKey, "wxfedcba9876543210")).toBe(false)
    // The configured keys keep working beside it.
    expect(check.key(`Bearer ${CONFIGURED}`)).not.toBeInstanceOf(Unauthorized)
  })

  it("a revoked key is refused on a connection that verified it before", () => {
    const registry = registryOf()
    const check = ClientAuth.check([Redacted.make(CONFIGURED)], registry.source)
    registry.add(ADDED)
    const socket = {}
    expect(check.keyOn(socket, `Bearer ${ADDED}`)).not.toBeInstanceOf(Unauthorized)
    expect(check.keyOn(socket, `Bearer ${ADDED}`)).not.toBeInstanceOf(Unauthorized)
    registry.revoke(ADDED)
    expect(check.keyOn(socket, `Bearer ${ADDED}`)).toBeInstanceOf(Unauthorized)
  })
})

describe("ADMIN_KEYS", () => {
  it.effect("keys of at least 32 characters; a shorter one stops start-up without echoing it", () =>
    Effect.gen(function*() {
      const read = (raw: string) =>
        Effect.withConfigProvider(
          ServerConfig.adminKeys,
          ConfigProvider.fromMap(new Map([["ADMIN_KEYS", raw]]))
        )
      const keys = yield* read(`${"a".repeat(32)}, ${"b".repeat(40)}`)
      expect(keys.map(Redacted.value)).toEqual(["a".repeat(32), "b".repeat(40)])
      const error = yield* Effect.flip(read(`${"a".repeat(32)},short-admin-key`))
      expect(ServerConfig.describe(error)).toContain("ADMIN_KEYS: key 2 is shorter than 32")
      expect(ServerConfig.describe(error)).not.toContain("short-admin-key")
      expect(ServerConfig.VARIABLES).toContain("ADMIN_KEYS_FILE")
    }))
})
