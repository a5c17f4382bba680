/**
 * The streaming scrubber on its own: whatever the chunking, what comes out is
 * the whole answer with every token masked, byte for byte.
 */
import { describe, expect, it } from "@effect/vitest"
import * as TokenScrubber from "../../src/server/internal/tokenScrubber.js"

const TOKEN = "86_AbCdEf-GhIjKlMnOpQrStUvWxYz0123456789_abcdefghij"
const OTHER = "86_ZyXwVu-TsRqPoNmLkJiHgFeDcBa9876543210_jihgfedcba"

/** `text` fed to a scrubber in pieces of `sizes` (cycled), what came out. */
const streamed = (text: string, secrets: ReadonlyArray<string>, sizes: ReadonlyArray<number>): string => {
  const scrubber = TokenScrubber.make(secrets)
  const bytes = Buffer.from(text, "latin1")
  const out: Array<Buffer> = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!
    out.push(...scrubber.push(bytes.subarray(at, at + size)))
    at += size
  }
  out.push(...scrubber.end())
  return Buffer.concat(out).toString("latin1")
}

const masked = (text: string, secrets: ReadonlyArray<string>) =>
  secrets.reduce((acc, secret) => acc.split(secret).join("*".repeat(secret.length)), text)

describe("TokenScrubber", () => {
  it("masks every token wherever the chunks are cut, and keeps every other byte and the length", () => {
    const text = `${TOKEN}{"errmsg":"request /x?access_token=${TOKEN} rid"}\u00ff\u0000${OTHER}${TOKEN}${TOKEN}tail${
      TOKEN.slice(0, -1)
    }`
    const expected = masked(text, [TOKEN, OTHER])
    for (
      const sizes of [[1], [2], [3, 1], [7], [TOKEN.length - 1], [TOKEN.length], [TOKEN.length + 1], [64, 5], [1e6]]
    ) {
      const out = streamed(text, [TOKEN, OTHER], sizes)
      expect({ sizes, out }).toEqual({ sizes, out: expected })
    }
    // Chunks longer than what is held back between them, a token across each boundary.
    const long = `${"y".repeat(560)}${text}${"z".repeat(900)}${text}`
    for (const sizes of [[600], [530, 1], [1000], [560, 700, 3]]) {
      const out = streamed(long, [TOKEN, OTHER], sizes)
      expect({ sizes, out }).toEqual({ sizes, out: masked(long, [TOKEN, OTHER]) })
    }
    // A token cut short at the very end is not a token: its bytes go out as they came.
    expect(expected.endsWith(`tail${TOKEN.slice(0, -1)}`)).toBe(true)
  })

  it("masks overlapping occurrences whole, and the token as it is percent-encoded", () => {
    const periodic = "abcab"
    expect(streamed("xabcabcabx", [periodic], [1])).toBe("x********x")
    const odd = "a/b+c"
    expect(streamed(`[${encodeURIComponent(odd)}][${odd}]`, [odd], [2])).toBe(`[*********][*****]`)
  })

  it("masks the value after any access_token=, whichever token it is, wherever the chunks are cut", () => {
    // `openapi/rid/get` answers with the query of an earlier call, made with a token since replaced.
    const earlier = "85_OlderTokenOlderTokenOlderToken-0123456789"
    const text = `{"request_url":"access_token=${earlier}&openid=x","other":"access_token%3D${earlier}"}` +
      `${"x".repeat(600)}access_token=${TOKEN}`
    const expected = text.split(earlier).join("*".repeat(earlier.length)).split(TOKEN).join(
      "*".repeat(TOKEN.length)
    )
    for (const sizes of [[1], [5], [13], [14], [600], [1e6]]) {
      expect({ sizes, out: streamed(text, [], sizes) }).toEqual({ sizes, out: expected })
    }
    expect(streamed("access_token=&x=1", [], [1])).toBe("access_token=&x=1")
  })

  it("whole bodies and header values", () => {
    expect(TokenScrubber.whole(Buffer.from(`a${TOKEN}b`), [TOKEN]).toString()).toBe(`a${"*".repeat(TOKEN.length)}b`)
    const untouched = Buffer.from("nothing here")
    expect(TokenScrubber.whole(untouched, [TOKEN])).toBe(untouched)
    expect(TokenScrubber.text(`attachment; filename="${OTHER}.jpg"`, [TOKEN, OTHER])).toBe(
      `attachment; filename="${"*".repeat(OTHER.length)}.jpg"`
    )
  })
})
