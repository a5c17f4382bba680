/**
 * Encoding and decoding the records a store holds. A `TokenRecord`'s own
 * properties are exactly its encoded fields (strings, numbers, a boolean),
 * so `JSON.stringify` of a record writes what the schema's encoding would,
 * without re-validating a record that was validated when it was built.
 *
 * Decoding: `JSON.parse` gives every record its own copy of the strings
 * all records repeat: at 100,000 authorizers the two kind names alone are
 * 200,000 strings of ~40 bytes, about 5 % of an authorizer's live heap. Those fields are shared here before the record is
 * built (which keeps the strings it is given).
 *
 * A warm start decodes every stored record (two million at a million
 * authorizers), so a well-formed record takes a direct path: its fields
 * checked by hand, the owner id by its schema, the record built without a
 * second validation. Anything that path does not take goes through the
 * `TokenRecord` schema, which stays the one judge of what a record is
 * (the path takes nothing the schema refuses, and builds what it builds:
 * test/internal/storedRecord.test.ts).
 *
 * @internal
 */
import { Either, Schema } from "effect"
import { TokenRecord } from "../Token.js"

const decode = Schema.decodeUnknownEither(TokenRecord)
const isOwner = Schema.is(TokenRecord.fields.appId)
const isKind = Schema.is(TokenRecord.fields.kind)
const isMode = Schema.is(TokenRecord.fields.mode)

// Kinds and modes are a handful of literals; the bound keeps a store full of
// junk from growing the table.
const MAX_SHARED = 256
const shared = new Map<string, string>()
// The shared strings the schema accepts as a kind, and as a mode.
const kinds = new Set<string>()
const modes = new Set<string>()

const share = (value: unknown): unknown => {
  if (typeof value !== "string") return value
  const known = shared.get(value)
  if (known !== undefined) return known
  if (shared.size < MAX_SHARED) shared.set(value, value)
  return value
}

const known = (value: unknown, accepted: Set<string>, is: (value: unknown) => boolean): value is string => {
  if (typeof value !== "string") return false
  if (accepted.has(value)) return true
  if (!is(value)) return false
  if (accepted.size < MAX_SHARED) accepted.add(value)
  return true
}

const optional = (fields: Record<string, unknown>, name: string, type: "string" | "boolean"): boolean =>
  !(name in fields) || typeof fields[name] === type

/**
 * The record `fields` hold when they are plainly well formed; `undefined`
 * leaves them to the schema (which also says what is wrong).
 */
export const decodeDirect = (fields: Record<string, unknown>): TokenRecord | undefined => {
  const { appId, expiresAt, fetchedAt, generation, kind, lineage, mode, refreshAt, retired, value } = fields
  if (
    typeof value !== "string" || value.length === 0 || typeof fetchedAt !== "number" ||
    typeof expiresAt !== "number" || typeof refreshAt !== "number" ||
    typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0 ||
    !optional(fields, "lineage", "string") || !optional(fields, "retired", "boolean") ||
    (typeof lineage === "string" && (lineage.length === 0 || lineage.length > 64)) ||
    !known(kind, kinds, isKind) || !known(mode, modes, isMode) || !isOwner(appId)
  ) return undefined
  // The fields in the schema's order, the optional ones only when present, as its decoding builds them.
  return new TokenRecord(
    {
      appId,
      kind,
      value,
      mode: mode as TokenRecord["mode"],
      fetchedAt,
      expiresAt,
      refreshAt,
      generation,
      ...(typeof lineage === "string" ? { lineage } : {}),
      ...(typeof retired === "boolean" ? { retired } : {})
    },
    true
  )
}

/** A record from a parsed JSON value (which it may update in place). */
export const decodeValue = (value: unknown): Either.Either<TokenRecord, unknown> => {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const fields = value as Record<string, unknown>
    if ("kind" in fields) fields["kind"] = share(fields["kind"])
    if ("mode" in fields) fields["mode"] = share(fields["mode"])
    const direct = decodeDirect(fields)
    if (direct !== undefined) return Either.right(direct)
  }
  return decode(value)
}

/** A record from its JSON text; text that is not JSON is a failure like any malformed record. */
export const decodeJson = (text: string): Either.Either<TokenRecord, unknown> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left(error)
  }
  return decodeValue(value)
}

/** The JSON text a store keeps for `record`, as `Schema.parseJson(TokenRecord)` encodes it. */
export const encodeJson = (record: TokenRecord): string => JSON.stringify(record)
