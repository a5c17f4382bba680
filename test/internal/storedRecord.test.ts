import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import * as StoredRecord from "../../src/internal/storedRecord.js"
import { TokenRecord } from "../../src/Token.js"
import { storedRecords } from "../support/fixtures.js"

const schemaDecode = Schema.decodeUnknownEither(Schema.parseJson(TokenRecord))
const encoded = Schema.encodeSync(TokenRecord)

const valid = encoded(
  new TokenRecord({
    appId: "wx0123456789abcdef:wxfedcba9876543210" as TokenRecord["appId"],
    kind: "authorizer_access_token",
    value: "token",
    mode: "classic",
    fetchedAt: 1,
    expiresAt: 7_200_001,
    refreshAt: 6_900_001,
    generation: 3
  })
)

describe("StoredRecord", () => {
  it("decodes what the schema decodes, and refuses what it refuses", () => {
    const texts = [
      JSON.stringify(valid),
      JSON.stringify({ ...valid, retired: true }),
      JSON.stringify({ ...valid, extra: "ignored" }),
      JSON.stringify({ ...valid, kind: "Not A Kind" }),
      JSON.stringify({ ...valid, kind: 7 }),
      JSON.stringify({ ...valid, mode: "eternal" }),
      JSON.stringify({ ...valid, appId: "wx-not-an-owner" }),
      JSON.stringify({ ...valid, generation: -1 }),
      JSON.stringify([valid]),
      JSON.stringify("a string"),
      "null",
      "{ not json"
    ]
    for (const text of texts) {
      const ours = StoredRecord.decodeJson(text)
      const schema = schemaDecode(text)
      expect(Either.isRight(ours), text).toBe(Either.isRight(schema))
      if (Either.isRight(ours) && Either.isRight(schema)) {
        expect(encoded(ours.right), text).toEqual(encoded(schema.right))
        expect(ours.right).toBeInstanceOf(TokenRecord)
      }
    }
  })

  it("decodes a parsed value as the schema does", () => {
    const decoded = StoredRecord.decodeValue(JSON.parse(JSON.stringify(valid)))
    expect(Either.map(decoded, encoded)).toEqual(Either.right(valid))
    expect(Either.isLeft(StoredRecord.decodeValue({ ...valid, value: "" }))).toBe(true)
  })

  // The direct path must never decide otherwise than the schema: on records
  // the schema built, on each of them with one field spoiled, dropped or
  // added, it takes only what the schema takes and builds the same record.
  const records = storedRecords
  const FIELDS = Object.keys(TokenRecord.fields)
  const odd = FastCheck.oneof(
    FastCheck.constant(undefined),
    FastCheck.constant(null),
    FastCheck.constant(""),
    FastCheck.constant("classic"),
    FastCheck.constant("access_token"),
    FastCheck.constant("wx0123456789abcdef"),
    FastCheck.constant(Number.NaN),
    FastCheck.constant(Number.POSITIVE_INFINITY),
    FastCheck.constant(-0),
    FastCheck.constant(2 ** 53),
    FastCheck.boolean(),
    FastCheck.double(),
    FastCheck.integer({ min: -3, max: 3 }),
    FastCheck.string({ maxLength: 70 }),
    FastCheck.constant({}),
    FastCheck.constant([])
  )
  const spoiled = FastCheck.tuple(records, FastCheck.constantFrom(...FIELDS, "extra"), odd, FastCheck.boolean()).map(
    ([fields, name, value, drop]) => {
      const copy = { ...fields }
      if (drop) delete copy[name]
      else copy[name] = value
      return copy
    }
  )

  it("takes every record the schema builds the direct way, built alike", () => {
    FastCheck.assert(
      FastCheck.property(records, (fields) => {
        const direct = StoredRecord.decodeDirect({ ...fields })
        const schema = Schema.decodeUnknownSync(TokenRecord)(fields)
        expect(direct).toBeInstanceOf(TokenRecord)
        expect(direct).toStrictEqual(schema)
        expect(Object.keys(direct!)).toEqual(Object.keys(schema))
      }),
      { numRuns: 2_000 }
    )
  })

  it("takes nothing the schema refuses, and builds what it builds", () => {
    FastCheck.assert(
      FastCheck.property(spoiled, (fields) => {
        const direct = StoredRecord.decodeDirect({ ...fields })
        const schema = Schema.decodeUnknownEither(TokenRecord)(fields)
        if (direct !== undefined) {
          expect(Either.isRight(schema)).toBe(true)
          expect(direct).toStrictEqual(Either.getOrThrow(schema))
          expect(Object.keys(direct)).toEqual(Object.keys(Either.getOrThrow(schema)))
        }
        const decoded = StoredRecord.decodeValue({ ...fields })
        expect(Either.isRight(decoded)).toBe(Either.isRight(schema))
        if (Either.isRight(decoded)) expect(decoded.right).toStrictEqual(Either.getOrThrow(schema))
      }),
      { numRuns: 5_000 }
    )
  })

  it("encodes every record as the schema encodes it", () => {
    const schemaEncode = Schema.encodeSync(Schema.parseJson(TokenRecord))
    FastCheck.assert(
      FastCheck.property(records, (fields) => {
        const record = Schema.decodeUnknownSync(TokenRecord)(fields)
        expect(StoredRecord.encodeJson(record)).toBe(schemaEncode(record))
        expect(Either.getOrThrow(StoredRecord.decodeJson(StoredRecord.encodeJson(record)))).toStrictEqual(record)
      }),
      { numRuns: 2_000 }
    )
  })
})
