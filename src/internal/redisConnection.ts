/**
 * The ioredis clients for a `RedisTarget`: one server, a Sentinel-managed
 * master, or a Redis Cluster, each with or without TLS and an ACL user.
 */
import { Option, Redacted } from "effect"
import { Cluster, Redis, type RedisOptions } from "ioredis"
import type { ConnectionOptions } from "node:tls"
import type { Settings } from "../TokenStoreRedis.js"
import type { RedisTarget } from "./redisTarget.js"

/** What the URL does not say: secrets and TLS material from their own variables. */
export type RedisSettings = Settings

export interface RedisConnection {
  /** Commands. */
  readonly client: Redis | Cluster
  /** Subscribed to the changes channel (a subscribed connection accepts no other command). */
  readonly subscriber: Redis | Cluster
  /** The servers holding the key space now: the one server or master, or every cluster master. */
  readonly masters: () => ReadonlyArray<Redis>
  /** Whether the topology fails over (Sentinel, Cluster): writes then wait for the new master. */
  readonly failsOver: boolean
  /** The password, to scrub from any message before it is logged. */
  readonly secrets: ReadonlyArray<string>
}

const commandOptions: RedisOptions = {
  // While Redis is unreachable a command fails at once instead of queueing:
  // the engine then serves the token it holds rather than waiting.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  // A Redis that accepts connections but does not answer must not hang callers either.
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  // Commands sent in one turn of the event loop go out in one socket write:
  // a cold start's herd sends several per fetch from many fibers at once,
  // and a write each was a fifth of its CPU.
  enableAutoPipelining: true
}

// The subscription waits offline for the connection (no timeout) and is
// renewed by ioredis after every reconnect.
const subscriberOptions: RedisOptions = {
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  connectTimeout: 2_000
}

// A demoted master answers writes with READONLY until the client finds the
// promoted one: reconnect (through the sentinels) and send the command again.
const reconnectOnReadOnly = (error: Error): 2 | false => error.message.startsWith("READONLY") ? 2 : false

/** Opens nothing yet (`lazyConnect`): the store connects and reports. */
export const make = (target: RedisTarget, settings: RedisSettings): RedisConnection => {
  const password = Option.getOrUndefined(Option.orElse(target.password, () => Option.fromNullable(settings.password)))
  const tls: ConnectionOptions | undefined = target.tls || settings.tls === true
    ? {
      ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
      ...(settings.cert !== undefined ? { cert: settings.cert } : {}),
      ...(settings.key !== undefined ? { key: Redacted.value(settings.key) } : {})
    }
    : undefined
  const auth: RedisOptions = {
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(password !== undefined ? { password: Redacted.value(password) } : {}),
    ...(tls !== undefined ? { tls } : {})
  }
  const secrets = [password, settings.sentinelPassword].flatMap((secret) =>
    secret === undefined ? [] : [Redacted.value(secret)]
  )

  // One master at a time (a single server, or the one the sentinels name):
  // a command client and a subscriber with the same options.
  const single = (options: RedisOptions, failsOver: boolean) => {
    const client = new Redis({ ...options, ...commandOptions })
    return {
      client,
      subscriber: new Redis({ ...options, ...subscriberOptions }),
      masters: () => [client],
      failsOver,
      secrets
    }
  }

  switch (target.mode) {
    case "standalone": {
      const [node] = target.nodes
      return single({ ...node, ...auth, db: target.db, lazyConnect: true }, false)
    }
    case "sentinel": {
      const options: RedisOptions = {
        ...auth,
        sentinels: target.nodes.map((node) => ({ ...node })),
        name: target.masterName ?? "",
        role: "master",
        db: target.db,
        ...(settings.sentinelPassword !== undefined
          ? { sentinelPassword: Redacted.value(settings.sentinelPassword) }
          : {}),
        ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        reconnectOnError: reconnectOnReadOnly,
        lazyConnect: true
      }
      return single(options, true)
    }
    case "cluster": {
      const nodes = target.nodes.map((node) => ({ ...node }))
      const cluster = (redisOptions: RedisOptions) =>
        new Cluster(nodes, {
          redisOptions: { ...auth, ...redisOptions },
          lazyConnect: true,
          enableOfflineQueue: redisOptions.enableOfflineQueue ?? false,
          // A master that died takes `cluster-node-timeout` to be replaced:
          // meanwhile its slots answer CLUSTERDOWN or not at all; the
          // slot map is reloaded and the command retried.
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          retryDelayOnTryAgain: 100,
          slotsRefreshTimeout: 2_000,
          // Reads and writes go to masters: a replica may lag behind a compare-and-set.
          scaleReads: "master"
        })
      const client = cluster(commandOptions)
      return {
        client,
        subscriber: cluster(subscriberOptions),
        masters: () => client.nodes("master"),
        failsOver: true,
        secrets
      }
    }
  }
}
