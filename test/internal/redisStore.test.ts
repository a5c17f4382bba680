import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import { readChange } from "../../src/internal/redisStore.js"
import { TokenRecord } from "../../src/Token.js"
import { storedRecords } from "../support/fixtures.js"

// What a change message means by the schema alone: the judge `readChange` must agree with.
const ChangeJson = Schema.parseJson(
  Schema.Struct({ origin: Schema.String, record: TokenRecord, mark: Schema.optional(Schema.Number) })
)
const bySchema = (message: string, self: string) =>
  Either.map(Schema.decodeUnknownEither(ChangeJson)(message), ({ mark, origin, record }) => ({
    mark,
    record: origin === self ? undefined : record
  }))

const SELF = "replica-self"

describe("redisStore change messages", () => {
  // Messages as the write script publishes them (the mark spliced in front),
  // with one field spoiled now and then: the direct reading decides as the
  // schema does on every one, except that this instance's own writes are
  // not read further than their origin and mark.
  const origins = FastCheck.constantFrom(SELF, "replica-other")
  const odd = FastCheck.oneof(
    FastCheck.constant(undefined),
    FastCheck.constant(null),
    FastCheck.constant("x"),
    FastCheck.constant(7),
    FastCheck.constant({})
  )
  const messages = FastCheck.tuple(
    storedRecords,
    origins,
    FastCheck.option(FastCheck.integer({ min: 0 }), { nil: undefined }),
    FastCheck.constantFrom("none", "origin", "mark", "record", "record.value", "text"),
    odd
  ).map(([record, origin, mark, spoil, value]) => {
    const change: Record<string, unknown> = { ...(mark === undefined ? {} : { mark }), origin, record }
    if (spoil === "text") return "{\"origin\":"
    if (spoil === "record.value") change["record"] = { ...record, value }
    else if (spoil !== "none") change[spoil] = value
    return JSON.stringify(change)
  })

  it("reads every message as the schema does (its own writes only as far as their mark)", () => {
    FastCheck.assert(
      FastCheck.property(messages, (message) => {
        const direct = readChange(message, SELF)
        const judged = bySchema(message, SELF)
        const own = Either.isRight(direct) && direct.right.record === undefined
        if (own) {
          expect(JSON.parse(message).origin).toBe(SELF)
          if (Either.isRight(judged)) expect(direct).toStrictEqual(judged)
        } else {
          expect(Either.isRight(direct)).toBe(Either.isRight(judged))
          if (Either.isRight(direct)) expect(direct).toStrictEqual(judged)
        }
      }),
      { numRuns: 3_000 }
    )
  })
})
