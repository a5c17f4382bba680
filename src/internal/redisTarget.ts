/**
 * The Redis a `TOKEN_STORE` URL names: one server (`redis://`, `rediss://`),
 * a master found through Sentinel (`redis+sentinel://`) or a Redis Cluster
 * (`redis+cluster://`). Parsing only: no client is loaded here, so
 * `StoreSpec` can check the URL on a program that never opens Redis.
 */
import { Either, Option, Redacted } from "effect"

export interface RedisNode {
  readonly host: string
  readonly port: number
}

export interface RedisTarget {
  readonly mode: "standalone" | "sentinel" | "cluster"
  /** The server, the sentinels, or the cluster's seed nodes. */
  readonly nodes: ReadonlyArray<RedisNode>
  /** Sentinel only: the master's name as the sentinels know it. */
  readonly masterName: string | undefined
  readonly db: number
  /** `rediss://`: TLS to every node. */
  readonly tls: boolean
  readonly username: string | undefined
  readonly password: Option.Option<Redacted.Redacted<string>>
}

const SCHEMES = {
  "redis:": { mode: "standalone", tls: false, port: 6379 },
  "rediss:": { mode: "standalone", tls: true, port: 6379 },
  "redis+sentinel:": { mode: "sentinel", tls: false, port: 26379 },
  "redis+cluster:": { mode: "cluster", tls: false, port: 6379 }
} as const

/** The forms `TOKEN_STORE` accepts for Redis, for error messages. */
export const FORMS = "\"redis[s]://[user:password@]HOST:PORT[/DB]\", " +
  "\"redis+sentinel://[user:password@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]\" or " +
  "\"redis+cluster://[user:password@]HOST:PORT[,HOST:PORT...]\""

/** Whether `value` starts with one of the Redis schemes. */
export const isRedisUrl = (value: string): boolean =>
  Object.keys(SCHEMES).some((scheme) => value.startsWith(`${scheme}//`))

const decode = (part: string): string | undefined => {
  try {
    return decodeURIComponent(part)
  } catch {
    return undefined
  }
}

const parseNode = (text: string, defaultPort: number): RedisNode | undefined => {
  // `URL` validates the host (including `[::1]`) and the port.
  const url = URL.canParse(`redis://${text}`) ? new URL(`redis://${text}`) : undefined
  if (url === undefined || url.hostname === "" || url.username !== "" || url.pathname !== "") return undefined
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  return { host, port: url.port === "" ? defaultPort : Number(url.port) }
}

const database = (text: string | undefined): Either.Either<number, string> =>
  text === undefined || text === "" ? Either.right(0) : /^\d{1,5}$/.test(text)
    ? Either.right(Number(text))
    : Either.left("the Redis database must be a number")

/**
 * Parses a Redis URL. The failure says what is wrong and never quotes the
 * URL: it may carry a password.
 */
export const parse = (raw: string): Either.Either<RedisTarget, string> => {
  const colon = raw.indexOf("://")
  const scheme = colon < 0 ? "" : raw.slice(0, colon + 1)
  if (!(scheme in SCHEMES)) return Either.left("unknown store")
  const form = SCHEMES[scheme as keyof typeof SCHEMES]
  const rest = raw.slice(colon + 3)
  if (rest.includes("?") || rest.includes("#")) return Either.left("the Redis URL takes no query or fragment")
  const slash = rest.indexOf("/")
  const authority = slash < 0 ? rest : rest.slice(0, slash)
  const path = slash < 0 ? [] : rest.slice(slash + 1).split("/")
  const at = authority.lastIndexOf("@")
  const userInfo = at < 0 ? undefined : authority.slice(0, at)
  const hosts = (at < 0 ? authority : authority.slice(at + 1)).split(",")

  const nodes: Array<RedisNode> = []
  for (const host of hosts) {
    const node = parseNode(host.trim(), form.port)
    if (node === undefined) return Either.left("the Redis URL has no host, or a malformed HOST:PORT")
    nodes.push(node)
  }
  if (form.mode === "standalone" && nodes.length > 1) return Either.left(`${scheme}// takes one HOST:PORT`)

  let username: string | undefined
  let password = Option.none<Redacted.Redacted<string>>()
  if (userInfo !== undefined) {
    const split = userInfo.indexOf(":")
    const user = decode(split < 0 ? userInfo : userInfo.slice(0, split))
    const secret = split < 0 ? "" : decode(userInfo.slice(split + 1))
    if (user === undefined || secret === undefined) return Either.left("the Redis user or password is not URL-encoded")
    username = user === "" ? undefined : user
    password = secret === "" ? Option.none() : Option.some(Redacted.make(secret))
  }

  let masterName: string | undefined
  let db: Either.Either<number, string>
  switch (form.mode) {
    case "standalone":
      if (path.length > 1) return Either.left("the Redis database must be a number")
      db = database(path[0])
      break
    case "sentinel":
      masterName = decode(path[0] ?? "")
      if (masterName === undefined || masterName === "" || path.length > 2) {
        return Either.left("redis+sentinel:// needs the master's name: HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]")
      }
      db = database(path[1])
      break
    case "cluster":
      // A cluster has database 0 only.
      if (path.some((part) => part !== "")) return Either.left("redis+cluster:// takes no database")
      db = Either.right(0)
      break
  }
  return Either.map(db, (db) => ({ mode: form.mode, nodes, masterName, db, tls: form.tls, username, password }))
}
