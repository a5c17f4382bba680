/**
 * Small durable documents beside the token records, in the same store: the
 * credential registry (apps, client keys and the audit trail an operator
 * changes at run time). Each document is a string under a name, replaced
 * whole by compare-and-set on its version, so two replicas changing the
 * registry at once cannot lose either change; every replica learns of a
 * change through `changed`.
 *
 * The memory store keeps them in the process, the file store in a directory
 * beside its file (`PATH.documents/NAME.json`), Redis under
 * `wechat-token:{doc:NAME}` with a channel announcing each write.
 *
 * @since 0.3.0
 */
import { Context, Effect, Layer, Option, PubSub, Ref, Stream } from "effect"
import { StoreError } from "./TokenStore.js"

/**
 * A document as stored: its body and how many times it has been written.
 *
 * @since 0.3.0
 * @category models
 */
export interface StoredDocument {
  readonly version: number
  readonly body: string
}

/**
 * @since 0.3.0
 * @category models
 */
export interface StoreDocumentsShape {
  readonly get: (name: string) => Effect.Effect<Option.Option<StoredDocument>, StoreError>
  /**
   * Writes `body` as version `expected + 1` if the document is at version
   * `expected` (0: absent) and answers whether it did.
   */
  readonly swap: (name: string, expected: number, body: string) => Effect.Effect<boolean, StoreError>
  /**
   * Names of documents another instance wrote, as they are written; `ALL`
   * after a gap in which announcements may have been missed (a reconnect).
   */
  readonly changed: Stream.Stream<string>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class StoreDocuments extends Context.Tag("effect-wechat-token/StoreDocuments")<
  StoreDocuments,
  StoreDocumentsShape
>() {}

/**
 * What `changed` says when every document may have changed.
 *
 * @since 0.3.0
 * @category constants
 */
export const ALL = "*"

/**
 * Document names are file names and Redis key segments: a short word.
 *
 * @since 0.3.0
 * @category validation
 */
export const NAME = /^[a-z][a-z0-9_-]{0,63}$/

/**
 * Fails with a `StoreError` naming `operation` unless `name` is a valid document name.
 *
 * @since 0.3.0
 * @category validation
 */
export const checkName = (operation: string, name: string): Effect.Effect<void, StoreError> =>
  NAME.test(name)
    ? Effect.void
    : Effect.fail(new StoreError({ operation, detail: `document name must match ${NAME.source}` }))

/**
 * Documents in this process only: for tests and a single-process memory store.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<StoreDocumentsShape> = Effect.gen(function*() {
  const documents = yield* Ref.make(new Map<string, StoredDocument>())
  // One process: its own writes are the only ones, so nothing is announced.
  const hub = yield* PubSub.unbounded<string>()
  return {
    get: (name) =>
      Effect.zipRight(
        checkName("get", name),
        Effect.map(Ref.get(documents), (held) => Option.fromNullable(held.get(name)))
      ),
    swap: (name, expected, body) =>
      Effect.zipRight(
        checkName("swap", name),
        Ref.modify(documents, (held) => {
          if ((held.get(name)?.version ?? 0) !== expected) return [false, held]
          return [true, new Map(held).set(name, { version: expected + 1, body })]
        })
      ),
    changed: Stream.fromPubSub(hub)
  }
})

/**
 * @since 0.3.0
 * @category layers
 */
export const layerMemory: Layer.Layer<StoreDocuments> = Layer.effect(StoreDocuments, makeMemory)
