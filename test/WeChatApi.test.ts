import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Schema } from "effect"
import { decodeBody } from "../src/WeChatApi.js"

const Success = Schema.Struct({ access_token: Schema.String, expires_in: Schema.Number })
const decode = decodeBody(Success)
const context = { appId: "wx0123456789abcdef", site: "api-call" } as const

describe("WeChatApi.decodeBody", () => {
  it.effect("decodes a success body", () =>
    Effect.gen(function*() {
      const body = yield* decode({ access_token: "T", expires_in: 7200 }, context)
      expect(body).toEqual({ access_token: "T", expires_in: 7200 })
    }))

  it.effect("an errcode wins over anything else in the body", () =>
    Effect.gen(function*() {
      const result = yield* decode({ errcode: 40014, errmsg: "invalid access_token", access_token: "T", expires_in: 1 }, context).pipe(
        Effect.either
      )
      expect(Either.isLeft(result) && result.left._tag).toBe("InvalidCredential")
    }))

  it.effect("a body that matches neither shape is a typed malformed-body error", () =>
    Effect.gen(function*() {
      const result = yield* decode({ access_token: 123 }, context).pipe(Effect.either)
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "UpstreamUnavailable", reason: "malformed-body" })
    }))

  it.effect("arbitrary JSON never crashes decoding: success or a typed error", () =>
    Effect.gen(function*() {
      const samples = FastCheck.sample(FastCheck.jsonValue(), 500)
      for (const body of samples) {
        const exit = yield* decode(body, context).pipe(Effect.exit)
        const ok = exit._tag === "Success" ||
          (exit.cause._tag === "Fail" && typeof exit.cause.error._tag === "string")
        expect(ok).toBe(true)
      }
    }))
})
