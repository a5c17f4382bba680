/**
 * Replicas of the central server that take their owners and client keys
 * from the admin API (`ADMIN_KEYS`, `STORE_ENCRYPTION_KEY`), started as real
 * processes with `test/support/replicas.ts`, and the probes the registry's
 * tests and the propagation bench share: an admin call, a client call, and
 * every value a Redis holds (to scan it for secrets).
 */
import { Effect } from "effect"
import { Redis } from "ioredis"
import { CLIENT_KEY, type Replica } from "./replicas.js"

export const ADMIN_KEY = "replica-admin-key-0123456789abcdef-0123"
export const ENCRYPTION_KEY = "fedcba9876543210".repeat(4)
export const OPS_KEY = "replica-ops-key-0123456789abcdef"

/** The environment of a replica whose owners all come through the admin API. */
export const adminEnv = (options: { readonly upstream: string; readonly store: string }): Record<string, string> => ({
  WECHAT_API_BASE_URL: options.upstream,
  WECHAT_TOKEN_MODE: "classic",
  TOKEN_STORE: options.store,
  ADMIN_KEYS: ADMIN_KEY,
  STORE_ENCRYPTION_KEY: ENCRYPTION_KEY,
  CLIENT_KEYS: CLIENT_KEY,
  OPS_KEYS: OPS_KEY,
  UPSTREAM_TIMEOUT_SECONDS: "10",
  LOG_LEVEL: "info"
})

export interface Answer {
  readonly status: number
  readonly text: string
}

/** Any request to a replica; a refused or reset connection is status 0. */
export const call = (
  replica: Replica,
  method: string,
  path: string,
  key: string,
  body?: unknown
): Effect.Effect<Answer> =>
  Effect.promise(() =>
    fetch(`${replica.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    }).then(
      async (response) => ({ status: response.status, text: await response.text() }),
      () => ({ status: 0, text: "" })
    )
  )

/** `GET /v1/apps/{appId}/access-token` with `key` (default the environment's client key). */
export const tokenOf = (replica: Replica, appId: string, key: string = CLIENT_KEY) =>
  call(replica, "GET", `/v1/apps/${appId}/access-token`, key)

/** `PUT /v1/admin/apps/{appId}`. */
export const putApp = (replica: Replica, appId: string, secret: string) =>
  call(replica, "PUT", `/v1/admin/apps/${appId}`, ADMIN_KEY, { secret })

/** Every key of a Redis and what it holds, read as its type requires (SCAN, then GET, HGETALL, …). */
export const redisDump = (url: string): Effect.Effect<string> =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Redis(url)),
    (client) =>
      Effect.promise(async () => {
        const parts: Array<string> = []
        let cursor = "0"
        do {
          const [next, keys] = await client.scan(cursor, "COUNT", 1_000)
          cursor = next
          for (const key of keys) {
            const type = await client.type(key)
            const value = type === "string"
              ? await client.get(key)
              : type === "hash"
              ? await client.hgetall(key)
              : type === "list"
              ? await client.lrange(key, 0, -1)
              : type === "set"
              ? await client.smembers(key)
              : type === "zset"
              ? await client.zrange(key, 0, -1, "WITHSCORES")
              : type === "stream"
              ? await client.xrange(key, "-", "+")
              : `<${type}>`
            parts.push(`${key} ${JSON.stringify(value)}`)
          }
        } while (cursor !== "0")
        return parts.join("\n")
      }),
    (client) => Effect.sync(() => client.disconnect())
  )
