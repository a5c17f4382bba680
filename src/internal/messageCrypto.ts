/**
 * The byte-level mechanics of WeChat's message encryption: pure functions
 * over buffers, so the official vectors can pin them with fixed random bytes.
 */
import { Either } from "effect"
import { createCipheriv, createDecipheriv, createHash, timingSafeEqual } from "node:crypto"

/** WeChat pads to a multiple of 32 bytes, not AES's 16 (PKCS#7 with k = 32). */
export const PAD_BLOCK = 32

const KEY_PATTERN = /^[A-Za-z0-9+/]{43}$/
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Why a key was refused; the public module turns it into `InvalidAesKey`. */
export interface BadKey {
  readonly _tag: "BadKey"
  readonly detail: string
}

/** Why a message was refused; the public module turns these into tagged errors. */
export type Failure =
  | { readonly _tag: "Malformed"; readonly detail: string }
  | { readonly _tag: "BadPadding" }
  | { readonly _tag: "WrongReceiveId" }

/**
 * `base64decode(EncodingAESKey + "=")`. Many official keys have non-zero
 * trailing bits in their last character; like WeChat's own samples, the
 * decoder ignores them instead of refusing the key.
 */
export const parseKey = (encodingAesKey: string): Either.Either<Buffer, BadKey> =>
  KEY_PATTERN.test(encodingAesKey)
    ? Either.right(Buffer.from(`${encodingAesKey}=`, "base64"))
    : Either.left({ _tag: "BadKey", detail: "an EncodingAESKey is 43 characters of A-Z, a-z, 0-9, + and /" })

/** `sha1(sort([token, timestamp, nonce, encrypted]).join(""))`, hex. */
export const signature = (parts: ReadonlyArray<string>): string =>
  createHash("sha1").update([...parts].sort().join("")).digest("hex")

/** Constant time for equal lengths; a length mismatch is not secret. */
export const equalHex = (expected: string, actual: string): boolean => {
  const a = Buffer.from(expected, "utf8")
  const b = Buffer.from(actual.toLowerCase(), "utf8")
  return a.length === b.length && timingSafeEqual(a, b)
}

const pad = (plain: Buffer): Buffer => {
  const amount = PAD_BLOCK - (plain.length % PAD_BLOCK)
  return Buffer.concat([plain, Buffer.alloc(amount, amount)])
}

/** 16 random bytes, the message length (4 bytes, big-endian), the message, the receive id; padded, AES-256-CBC, base64. */
export const encrypt = (key: Buffer, random: Uint8Array, message: string, receiveId: string): string => {
  const body = Buffer.from(message, "utf8")
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.length, 0)
  const plain = pad(Buffer.concat([Buffer.from(random), length, body, Buffer.from(receiveId, "utf8")]))
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false)
  return Buffer.concat([cipher.update(plain), cipher.final()]).toString("base64")
}

/** The inverse of `encrypt`, checking the padding, the lengths and the receive id. */
export const decrypt = (key: Buffer, encrypted: string, receiveId: string): Either.Either<string, Failure> => {
  if (!BASE64_PATTERN.test(encrypted)) return Either.left({ _tag: "Malformed", detail: "not base64" })
  const bytes = Buffer.from(encrypted, "base64")
  if (bytes.length === 0 || bytes.length % 16 !== 0) {
    return Either.left({ _tag: "Malformed", detail: "not a whole number of AES blocks" })
  }
  const decipher = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false)
  const plain = Buffer.concat([decipher.update(bytes), decipher.final()])
  const amount = plain[plain.length - 1]!
  let padOk = amount >= 1 && amount <= PAD_BLOCK && amount <= plain.length
  for (let index = plain.length - Math.min(amount, plain.length); index < plain.length; index++) {
    padOk = padOk && plain[index] === amount
  }
  if (!padOk) return Either.left({ _tag: "BadPadding" })
  const content = plain.subarray(0, plain.length - amount)
  if (content.length < 20) return Either.left({ _tag: "Malformed", detail: "shorter than its header" })
  const length = content.readUInt32BE(16)
  if (20 + length > content.length) {
    return Either.left({ _tag: "Malformed", detail: "the length field runs past the end" })
  }
  const from = content.subarray(20 + length)
  const expected = Buffer.from(receiveId, "utf8")
  if (from.length !== expected.length || !timingSafeEqual(from, expected)) {
    return Either.left({ _tag: "WrongReceiveId" })
  }
  return Either.right(content.subarray(20, 20 + length).toString("utf8"))
}
