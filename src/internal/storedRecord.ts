/**
 * Decoding the records a store holds. `JSON.parse` gives every record its
 * own copy of the strings all records repeat: at 100,000 authorizers the
 * two kind names alone are 200,000 strings of ~40 bytes, about 5 % of an
 * authorizer's live heap. Those fields are shared here before the schema
 * decodes the record (which keeps the strings it is given).
 *
 * @internal
 */
import { Either, Schema } from "effect"
import { TokenRecord } from "../Token.js"

const decode = Schema.decodeUnknownEither(TokenRecord)

// Kinds and modes are a handful of literals; the bound keeps a store full of
// junk from growing the table.
const MAX_SHARED = 256
const shared = new Map<string, string>()

const share = (value: unknown): unknown => {
  if (typeof value !== "string") return value
  const known = shared.get(value)
  if (known !== undefined) return known
  if (shared.size < MAX_SHARED) shared.set(value, value)
  return value
}

/** A record from a parsed JSON value (which it may update in place). */
export const decodeValue = (value: unknown): Either.Either<TokenRecord, unknown> => {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const fields = value as Record<string, unknown>
    if ("kind" in fields) fields["kind"] = share(fields["kind"])
    if ("mode" in fields) fields["mode"] = share(fields["mode"])
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
