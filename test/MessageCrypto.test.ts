import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Redacted, TestClock } from "effect"
import * as internal from "../src/internal/messageCrypto.js"
import * as MessageCrypto from "../src/MessageCrypto.js"

const cryptoFor = (token: string, encodingAesKey: string, receiveId: string) =>
  Either.getOrThrow(
    MessageCrypto.make({ token: Redacted.make(token), encodingAesKey: Redacted.make(encodingAesKey), receiveId })
  )

const keyOf = (encodingAesKey: string) => Either.getOrThrow(internal.parseKey(encodingAesKey))

describe("MessageCrypto: official vectors", () => {
  it("official-account sample: fixed random bytes encrypt to the published Encrypt and back", () => {
    const key = keyOf("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    const encrypted = internal.encrypt(key, Buffer.from("aaaabbbbccccdddd"), "我是中文abcd123", "wxb11529c136998cb6")
    expect(encrypted).toBe("jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")
    expect(internal.decrypt(key, encrypted, "wxb11529c136998cb6")).toEqual(Either.right("我是中文abcd123"))
  })

  it.effect("WeCom VerifyURL sample: the signed echostr opens to 1616140317555161061", () =>
    Effect.gen(function*() {
      const crypto = cryptoFor("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
      const plain = yield* MessageCrypto.verifyUrl(crypto, {
        msgSignature: "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        timestamp: "1409659589",
        nonce: "263014780",
        echostr: "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
      })
      expect(plain).toBe("1616140317555161061")
    }))

  it.effect("official sample push (token spamtest): verifies and decrypts to the XML message", () =>
    Effect.gen(function*() {
      const crypto = cryptoFor("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
      const plain = yield* crypto.open({
        msgSignature: "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        timestamp: "1409735669",
        nonce: "1320562132",
        encrypted: officialSamplePush
      })
      expect(plain).toMatch(/^<xml>.*<\/xml>$/s)
      expect(plain).toContain("<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>")
    }))
})

describe("MessageCrypto: vectors from other SDKs' tests", () => {
  it("fixed random 1234567890123456, message test, receive id rust: 9s4gMv99…", () => {
    const key = keyOf("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")
    const encrypted = internal.encrypt(key, Buffer.from("1234567890123456"), "test", "rust")
    expect(encrypted).toBe("9s4gMv99m88kKTh/H8IdkNiFGeG9pd7vNWl50fGRWXY=")
    expect(internal.decrypt(key, encrypted, "rust")).toEqual(Either.right("test"))
  })

  it("signature of token test, timestamp 123456, nonce test, message rust", () => {
    expect(internal.signature(["test", "123456", "test", "rust"])).toBe("d6056f2bb3ad3e30f4afa5ef90cc9ddcdc7b7b27")
  })

  it.effect("WeCom echostr (token 123456): signed and addressed to wx49f0ab532d5d035a; one digit of nonce off fails", () =>
    Effect.gen(function*() {
      const crypto = cryptoFor("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a")
      const query = {
        msgSignature: "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        timestamp: "1411443780",
        nonce: "437374425",
        echostr: "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
      }
      const plain = yield* MessageCrypto.verifyUrl(crypto, query)
      expect(plain.length).toBeGreaterThan(0)
      const wrong = yield* Effect.flip(MessageCrypto.verifyUrl(crypto, { ...query, nonce: "437374424" }))
      expect(wrong._tag).toBe("InvalidSignature")
    }))
})

describe("MessageCrypto: refusals", () => {
  const crypto = cryptoFor("token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")

  it("a key that is not 43 base64 characters is InvalidAesKey, without the key in the message", () => {
    for (
      const bad of [
        "",
        "short",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"
      ]
    ) {
      const made = MessageCrypto.make({ token: Redacted.make("t"), encodingAesKey: Redacted.make(bad), receiveId: "x" })
      expect(Either.isLeft(made), bad).toBe(true)
      const error = Either.flip(made).pipe(Either.getOrThrow)
      expect(error._tag).toBe("InvalidAesKey")
      if (bad.length > 8) expect(error.message).not.toContain(bad)
    }
  })

  it.effect("a message for another receive id is ReceiveIdMismatch", () =>
    Effect.gen(function*() {
      const other = cryptoFor("token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx0000000000000000")
      const encrypted = yield* other.encrypt("hello")
      const error = yield* Effect.flip(crypto.decrypt(encrypted))
      expect(error._tag).toBe("ReceiveIdMismatch")
    }))

  it.effect("another key gives InvalidPadding or a length that does not add up, never a plaintext", () =>
    Effect.gen(function*() {
      const other = cryptoFor("token", "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj", "wxb11529c136998cb6")
      const failures = new Set<string>()
      for (let index = 0; index < 50; index++) {
        const encrypted = yield* other.encrypt(`message ${index}`)
        failures.add((yield* Effect.flip(crypto.decrypt(encrypted)))._tag)
      }
      expect(
        [...failures].every((tag) =>
          tag === "InvalidPadding" || tag === "MalformedMessage" || tag === "ReceiveIdMismatch"
        )
      ).toBe(true)
      expect(failures.has("InvalidPadding")).toBe(true)
    }))

  it.effect("not base64, or not whole AES blocks, is MalformedMessage", () =>
    Effect.gen(function*() {
      for (const bad of ["", "not base64!", "YWJj", Buffer.alloc(20).toString("base64")]) {
        expect((yield* Effect.flip(crypto.decrypt(bad)))._tag, bad).toBe("MalformedMessage")
      }
    }))

  it.effect("open checks the signature before decrypting: a bad signature on garbage is InvalidSignature", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        crypto.open({ msgSignature: "0".repeat(40), timestamp: "1", nonce: "2", encrypted: "garbage" })
      )
      expect(error._tag).toBe("InvalidSignature")
    }))
})

describe("MessageCrypto: round trips", () => {
  it.effect("seal answers a signed XML reply that open reads back; timestamp from Clock", () =>
    Effect.gen(function*() {
      const crypto = cryptoFor("token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")
      yield* TestClock.setTime(1_700_000_000_000)
      const sealed = yield* crypto.seal("<xml><Content><![CDATA[你好]]></Content></xml>")
      expect(sealed.timestamp).toBe("1700000000")
      expect(sealed.xml).toContain(`<Encrypt><![CDATA[${sealed.encrypted}]]></Encrypt>`)
      expect(sealed.xml).toContain(`<MsgSignature><![CDATA[${sealed.msgSignature}]]></MsgSignature>`)
      const opened = yield* crypto.open({ ...sealed })
      expect(opened).toBe("<xml><Content><![CDATA[你好]]></Content></xml>")
    }))

  it("any message and receive id survive encrypt/decrypt, padded to a multiple of 32 bytes", () => {
    const key = keyOf("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    FastCheck.assert(
      FastCheck.property(
        FastCheck.uint8Array({ minLength: 16, maxLength: 16 }),
        FastCheck.string({ unit: "binary", maxLength: 300 }),
        FastCheck.stringMatching(/^[a-z0-9]{1,32}$/),
        (random, message, receiveId) => {
          const encrypted = internal.encrypt(key, random, message, receiveId)
          expect(Buffer.from(encrypted, "base64").length % internal.PAD_BLOCK).toBe(0)
          expect(internal.decrypt(key, encrypted, receiveId)).toEqual(Either.right(message))
        }
      ),
      { numRuns: 300 }
    )
  })
})

// The Encrypt field of the official Python sample's incoming push.
const officialSamplePush =
  "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
