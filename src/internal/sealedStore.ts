/**
 * A `TokenStore` that seals the values of secret kinds (a refresh token, a
 * permanent code: values that mint tokens for months) with
 * `STORE_ENCRYPTION_KEY` before they reach the store, and opens them on the
 * way back. Tokens and tickets live two hours and every replica must read
 * them fast: they stay as they are.
 *
 * Each value is bound to its record's key (`owner/kind`), so a sealed
 * value copied to another owner's record does not open there. A value
 * stored in clear by an earlier version is read as it is and sealed by its
 * next write.
 */
import { Effect, Either, Option, Redacted, Stream } from "effect"
import { TokenRecord } from "../Token.js"
import { isSameRecord, keyString, type RecordKey, StoreError, type TokenStoreShape } from "../TokenStore.js"
import type { SecretBox } from "./secretBox.js"

const SEALED = "enc1:"

export const make = (
  store: TokenStoreShape,
  box: SecretBox,
  kinds: ReadonlySet<string>
): TokenStoreShape => {
  // Sealing and opening swap the value of a record validated when it was
  // built (a sealed value is non-empty base64, an opened one what was
  // sealed): the rest is not checked again.
  const seal = (record: TokenRecord): TokenRecord =>
    kinds.has(record.kind) && !record.value.startsWith(SEALED)
      ? new TokenRecord({ ...record, value: box.seal(Redacted.make(record.value), keyString(record)) }, true)
      : record
  const open = (operation: string) => (record: TokenRecord): Effect.Effect<TokenRecord, StoreError> => {
    if (!kinds.has(record.kind) || !record.value.startsWith(SEALED)) return Effect.succeed(record)
    return Either.match(box.open(record.value, keyString(record)), {
      onLeft: (reason) => Effect.fail(new StoreError({ operation, detail: `${keyString(record)}: ${reason}` })),
      onRight: (value) => Effect.succeed(new TokenRecord({ ...record, value: Redacted.value(value) }, true))
    })
  }
  const openHeld = Option.match({
    onNone: () => Effect.succeedNone,
    onSome: (record: TokenRecord) => Effect.map(open("get")(record), Option.some)
  })
  const getMany = store.getMany
  return {
    ...store,
    get: (key) => Effect.flatMap(store.get(key), openHeld),
    // Spread from `store` above it would answer sealed values: here each is opened.
    ...(getMany === undefined ? {} : {
      getMany: (keys: ReadonlyArray<RecordKey>) =>
        Effect.flatMap(getMany(keys), (records) => Effect.forEach(records, openHeld))
    }),
    list: (kind) => Effect.flatMap(store.list(kind), (records) => Effect.forEach(records, open("list"))),
    set: (record) => {
      const sealed = seal(record)
      // The store answers our own record when it wrote it, else the one it holds.
      return Effect.flatMap(
        store.set(sealed),
        (held) => isSameRecord(held, sealed) ? Effect.succeed(record) : open("set")(held)
      )
    },
    changes: store.changes.pipe(
      Stream.mapEffect((record) => Effect.option(open("changes")(record))),
      Stream.filterMap((record) => record)
    )
  }
}

/**
 * Seals what an earlier version stored in clear: each such record is
 * written again, its value unchanged, one generation on (so every store's
 * compare-and-set takes it). A store that cannot be listed now is left for
 * the next start; reads work either way.
 */
export const sealStored = (sealed: TokenStoreShape, kinds: Iterable<string>): Effect.Effect<void> =>
  Effect.forEach(kinds, (kind) =>
    sealed.list(kind).pipe(
      Effect.flatMap((records) =>
        Effect.forEach(
          records.filter((record) => !record.value.startsWith(SEALED)),
          (record) => sealed.set(new TokenRecord({ ...record, generation: record.generation + 1 })),
          { discard: true }
        )
      ),
      Effect.catchAll((error) => Effect.logWarning(`cannot seal stored ${kind} values yet`, error.detail))
    ), { discard: true })
