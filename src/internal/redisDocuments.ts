/**
 * `StoreDocuments` over the Redis store's connections: each document under
 * `wechat-token:{doc:NAME}` as `{"version":n,"body":"…"}`, replaced by a
 * script that compares the version and announces the name on
 * `DOCUMENTS_CHANNEL` in the same step.
 */
import { Effect, Option, Stream } from "effect"
import type { Cluster, Redis } from "ioredis"
import { ALL, checkName, type StoredDocument, type StoreDocumentsShape } from "../StoreDocuments.js"
import type { StoreError } from "../TokenStore.js"
import { decodeStored, encodeStored } from "./storedDocument.js"

/** Each document write is announced here with the document's name. */
export const DOCUMENTS_CHANNEL = "wechat-token:documents"

/** The key of a document: its own hash tag, so the script touches one slot. */
export const documentKey = (name: string): string => `wechat-token:{doc:${name}}`

// A held value that is not a document counts as version 0 only when absent;
// anything else unreadable blocks the write (someone else's key).
const SWAP = `
local held = redis.call('GET', KEYS[1])
local version = 0
if held then
  local ok, document = pcall(cjson.decode, held)
  if not ok or type(document) ~= 'table' or type(document.version) ~= 'number' then
    return -1
  end
  version = document.version
end
if version ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`

/** What the Redis store hands over: its connections and how it runs commands. */
export interface Connection {
  readonly client: Redis | Cluster
  readonly subscriber: Redis | Cluster
  readonly command: <A>(operation: string, run: () => Promise<A>) => Effect.Effect<A, StoreError>
  readonly write: <A>(operation: string, run: () => Promise<A>) => Effect.Effect<A, StoreError>
  readonly fail: (operation: string, detail: string) => StoreError
}

/** Documents over `connection`; the subscriber must be subscribed to `DOCUMENTS_CHANNEL`. */
export const make = (connection: Connection): StoreDocumentsShape => {
  const { client, command, fail, subscriber, write } = connection
  const get: StoreDocumentsShape["get"] = (name) =>
    Effect.zipRight(
      checkName("get", name),
      Effect.flatMap(command("get", () => client.get(documentKey(name))), (held): Effect.Effect<
        Option.Option<StoredDocument>,
        StoreError
      > => {
        if (held === null) return Effect.succeed(Option.none())
        const document = decodeStored(held)
        return Option.isSome(document)
          ? Effect.succeed(document)
          : Effect.fail(fail("get", `${documentKey(name)} does not hold a document; delete the key`))
      })
    )
  const swap: StoreDocumentsShape["swap"] = (name, expected, body) =>
    Effect.zipRight(
      checkName("swap", name),
      Effect.flatMap(
        write("swap", () =>
          client.eval(
            SWAP,
            1,
            documentKey(name),
            expected,
            encodeStored({ version: expected + 1, body }),
            DOCUMENTS_CHANNEL,
            name
          )),
        (reply) =>
          reply === -1
            ? Effect.fail(fail("swap", `${documentKey(name)} does not hold a document; delete the key`))
            : Effect.succeed(reply === 1)
      )
    )
  // A reconnected subscriber may have missed announcements: everything is
  // said to have changed, and readers read again.
  const changed = Stream.asyncPush<string>((emit) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const message = (channel: string, name: string) => {
          if (channel === DOCUMENTS_CHANNEL) emit.single(name)
        }
        const ready = () => emit.single(ALL)
        subscriber.on("message", message).on("ready", ready)
        return { message, ready }
      }),
      ({ message, ready }) => Effect.sync(() => subscriber.off("message", message).off("ready", ready))
    ), { bufferSize: "unbounded" })
  return { get, swap, changed }
}
