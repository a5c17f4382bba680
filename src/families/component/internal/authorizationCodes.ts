/**
 * Pushed authorization codes, one per authorizer, as one `StoreDocuments`
 * document (`authorization-codes`): what the intake journals before it
 * answers WeChat's push, so a code outlives a crash between the push and its
 * exchange. An exchanged code is marked so (`exchangedAt`) and kept until it
 * expires: the gateway's `api_query_auth`, called by an SDK with the code the
 * push has already exchanged, finds its authorizer there. A code past its
 * expiry is dropped at the next write.
 *
 * 0.2.0 journaled them in the credential store, as records of the kind
 * `authorization_code`: `migrate` moves those into the document once and
 * tombstones them (the store keeps no deletes; a retired record is its "gone").
 */
import { Clock, Duration, Effect, Either, Option, Random, Schema } from "effect"
import { AuthorizerId } from "../../../OwnerId.js"
import type { StoreDocumentsShape } from "../../../StoreDocuments.js"
import { TokenRecord } from "../../../Token.js"
import { StoreError, type TokenStoreShape } from "../../../TokenStore.js"

export const NAME = "authorization-codes"
export const FORMAT = "effect-wechat-token/authorization-codes/v1"

/** The kind 0.2.0 journaled codes under in the credential store. */
export const LEGACY_KIND = "authorization_code"

const Millis = Schema.NonNegativeInt

const PendingCode = Schema.Struct({
  code: Schema.String.pipe(Schema.minLength(1)),
  /** When the push was taken (epoch ms): an authorization known at that moment. */
  receivedAt: Millis,
  expiresAt: Millis,
  /** When the code was exchanged (epoch ms); absent while it waits. */
  exchangedAt: Schema.optional(Millis)
})

export type PendingCode = typeof PendingCode.Type

const Stored = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(FORMAT),
  codes: Schema.Record({ key: AuthorizerId, value: PendingCode })
}))

const decodeStored = Schema.decodeEither(Stored)
const encodeStored = Schema.encodeSync(Stored)

export type Codes = ReadonlyMap<AuthorizerId, PendingCode>

// Concurrent writers (replicas taking pushes at once) each cost one more
// read; past this many in a row, something keeps writing.
const MAX_ATTEMPTS = 16

const invalid = (detail: string) => new StoreError({ operation: NAME, detail })

const read = (documents: StoreDocumentsShape) =>
  Effect.flatMap(
    documents.get(NAME),
    Option.match({
      onNone: () => Effect.succeed({ version: 0, codes: new Map() as Codes }),
      onSome: (document) =>
        Either.match(decodeStored(document.body), {
          // Refused whole: a document this version cannot read is never overwritten.
          onLeft: (error) => Effect.fail(invalid(`the stored codes are not valid: ${error.message.split("\n")[0]}`)),
          onRight: (stored) =>
            Effect.succeed({
              version: document.version,
              codes: new Map(Object.entries(stored.codes)) as Map<AuthorizerId, PendingCode>
            })
        })
    })
  )

/** The pending codes, by authorizer. */
export const list = (documents: StoreDocumentsShape): Effect.Effect<Codes, StoreError> =>
  Effect.map(read(documents), (held) => held.codes)

/**
 * Applies `change` to the latest codes and stores the result (without the
 * expired ones), reading again on a concurrent write. `change` answers what
 * the caller gets and the codes to store; the same map stores nothing.
 */
export const update = <A>(
  documents: StoreDocumentsShape,
  change: (codes: Codes) => readonly [A, Codes]
): Effect.Effect<A, StoreError> =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(1, 10 * attempt)))
      const held = yield* read(documents)
      const [result, next] = change(held.codes)
      if (next === held.codes) return result
      const now = yield* Clock.currentTimeMillis
      const codes = Object.fromEntries(Array.from(next).filter(([, pending]) => pending.expiresAt > now))
      if (yield* documents.swap(NAME, held.version, encodeStored({ format: FORMAT, codes }))) return result
    }
    return yield* invalid(`the codes changed under ${MAX_ATTEMPTS} attempts in a row; try again`)
  })

/**
 * Journals `pending` for `owner` (a newer authorization replaces the older
 * code) and answers what is held: the code already journaled when a
 * duplicate push brings the same one.
 */
export const put = (
  documents: StoreDocumentsShape,
  owner: AuthorizerId,
  pending: PendingCode
): Effect.Effect<PendingCode, StoreError> =>
  update(documents, (codes) => {
    const held = codes.get(owner)
    return held?.code === pending.code ? [held, codes] : [pending, new Map(codes).set(owner, pending)]
  })

/** Marks `owner`'s code exchanged at `at`, unless a newer one replaced it meanwhile. */
export const markExchanged = (
  documents: StoreDocumentsShape,
  owner: AuthorizerId,
  code: string,
  at: number
): Effect.Effect<void, StoreError> =>
  update(documents, (codes) => {
    const held = codes.get(owner)
    if (held?.code !== code || held.exchangedAt !== undefined) return [undefined, codes]
    return [undefined, new Map(codes).set(owner, { ...held, exchangedAt: at })]
  })

/**
 * Moves the codes 0.2.0 journaled in `store` into the document (the newer
 * one per authorizer wins), then tombstones their records. Run again after a
 * crash between the two, it merges the same codes again: nothing is lost or
 * doubled.
 */
export const migrate = (
  store: TokenStoreShape,
  documents: StoreDocumentsShape
): Effect.Effect<number, StoreError> =>
  Effect.gen(function*() {
    const legacy = (yield* store.list(LEGACY_KIND)).filter((record) =>
      record.retired !== true && Schema.is(AuthorizerId)(record.appId)
    )
    if (legacy.length === 0) return 0
    yield* update(documents, (codes) => {
      const merged = new Map(codes)
      for (const record of legacy) {
        const owner = record.appId as AuthorizerId
        const held = merged.get(owner)
        if (held !== undefined && held.receivedAt >= record.fetchedAt) continue
        merged.set(owner, { code: record.value, receivedAt: record.fetchedAt, expiresAt: record.expiresAt })
      }
      return [undefined, merged]
    })
    yield* Effect.forEach(
      legacy,
      (record) => store.set(new TokenRecord({ ...record, generation: record.generation + 1, retired: true })),
      { discard: true }
    )
    return legacy.length
  })
