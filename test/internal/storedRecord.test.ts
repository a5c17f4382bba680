import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as StoredRecord from "../../src/internal/storedRecord.js"
import { TokenRecord } from "../../src/Token.js"

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
})
