/**
 * Secrets at rest: AES-256-GCM under `STORE_ENCRYPTION_KEY`, so a store
 * (a file on a disk, a Redis snapshot, a backup) holds ciphertext only.
 *
 * A sealed value is `enc1:` + base64url(iv ‖ tag ‖ ciphertext). The
 * additional data binds it to where it is stored (`app:wx…:secret`): a
 * ciphertext copied into another entry does not open there, so someone
 * with write access to the store cannot swap one app's secret for
 * another's.
 */
import { Either, Redacted } from "effect"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"

const PREFIX = "enc1:"
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_PATTERN = /^[0-9a-fA-F]{64}$/

/**
 * Seals and opens secrets with one key.
 */
export interface SecretBox {
  readonly seal: (plain: Redacted.Redacted<string>, context: string) => string
  /** `Left` with a reason that never holds the value: a wrong key and a tampered value read the same. */
  readonly open: (sealed: string, context: string) => Either.Either<Redacted.Redacted<string>, string>
}

/**
 * A box over `key`, 32 bytes given as 64 hex characters; `Left` with the
 * reason otherwise (never quoting the key).
 */
export const make = (key: Redacted.Redacted<string>): Either.Either<SecretBox, string> => {
  const hex = Redacted.value(key).trim()
  if (!KEY_PATTERN.test(hex)) return Either.left("must be 32 bytes given as 64 hex characters")
  const bytes = Buffer.from(hex, "hex")
  return Either.right({
    seal: (plain, context) => {
      // A GCM nonce must never repeat under one key: it comes from the
      // system's CSPRNG, not from Effect's seeded `Random` (which tests fix).
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv("aes-256-gcm", bytes, iv)
      cipher.setAAD(Buffer.from(context, "utf8"))
      const body = Buffer.concat([cipher.update(Redacted.value(plain), "utf8"), cipher.final()])
      return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url")
    },
    open: (sealed, context) => {
      if (!sealed.startsWith(PREFIX)) return Either.left("not a sealed value")
      const raw = Buffer.from(sealed.slice(PREFIX.length), "base64url")
      if (raw.length < IV_BYTES + TAG_BYTES) return Either.left("sealed value is truncated")
      try {
        const decipher = createDecipheriv("aes-256-gcm", bytes, raw.subarray(0, IV_BYTES))
        decipher.setAAD(Buffer.from(context, "utf8"))
        decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
        const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()])
        return Either.right(Redacted.make(plain.toString("utf8")))
      } catch {
        return Either.left("sealed value does not open with STORE_ENCRYPTION_KEY (another key, or altered)")
      }
    }
  })
}
