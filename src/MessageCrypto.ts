/**
 * WeChat's message encryption ("safe mode", the official WXBizMsgCrypt): the
 * same scheme for official accounts and mini programs (receive id = appid),
 * WeCom callbacks (receive id = corpid) and third-party platform pushes
 * (receive id = component appid).
 *
 * - Key: `base64decode(EncodingAESKey + "=")`, 32 bytes; AES-256-CBC with
 *   the key's first 16 bytes as IV; PKCS#7 padding to a multiple of 32 bytes.
 * - Plaintext: 16 random bytes, the message length (4 bytes big-endian), the
 *   message, the receive id. A message for another receive id is refused.
 * - `msg_signature = sha1(sort([token, timestamp, nonce, Encrypt]).join(""))`,
 *   compared in constant time. `open` checks the signature before it
 *   decrypts anything, so an unsigned message never reaches the padding
 *   check (no padding oracle for someone without the token).
 *
 * @since 0.2.0
 */
import { Clock, Data, Effect, Either, Random, Redacted } from "effect"
import * as internal from "./internal/messageCrypto.js"

/**
 * The `msg_signature` does not match: not from WeChat, or signed with another token.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidSignature extends Data.TaggedError("InvalidSignature") {
  override get message() {
    return "msg_signature does not match: the message is not signed with this token"
  }
}

/**
 * The EncodingAESKey is not 43 base64 characters. The key itself is never part of the error.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidAesKey extends Data.TaggedError("InvalidAesKey")<{ readonly detail: string }> {
  override get message() {
    return `invalid EncodingAESKey: ${this.detail}`
  }
}

/**
 * The decrypted padding is not PKCS#7 to 32 bytes: the wrong key, or a tampered message.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidPadding extends Data.TaggedError("InvalidPadding") {
  override get message() {
    return "the decrypted message has invalid padding: wrong EncodingAESKey or a tampered message"
  }
}

/**
 * The message decrypted but names another receiver (appid, corpid or component appid).
 *
 * @since 0.2.0
 * @category errors
 */
export class ReceiveIdMismatch extends Data.TaggedError("ReceiveIdMismatch")<{ readonly expected: string }> {
  override get message() {
    return `the message is not addressed to ${this.expected}`
  }
}

/**
 * Not a message of this scheme at all: not base64, not whole AES blocks, lengths that do not add up.
 *
 * @since 0.2.0
 * @category errors
 */
export class MalformedMessage extends Data.TaggedError("MalformedMessage")<{ readonly detail: string }> {
  override get message() {
    return `malformed encrypted message: ${this.detail}`
  }
}

/**
 * @since 0.2.0
 * @category errors
 */
export type DecryptError = InvalidPadding | ReceiveIdMismatch | MalformedMessage

/**
 * What WeChat sends with an encrypted message: the query's `msg_signature`,
 * `timestamp` and `nonce`, and the body's `Encrypt` (or `echostr` when
 * verifying a callback URL).
 *
 * @since 0.2.0
 * @category models
 */
export interface Signed {
  readonly msgSignature: string
  readonly timestamp: string
  readonly nonce: string
  readonly encrypted: string
}

/**
 * An encrypted reply, with the XML envelope WeChat expects back.
 *
 * @since 0.2.0
 * @category models
 */
export interface Sealed {
  readonly encrypted: string
  readonly msgSignature: string
  readonly timestamp: string
  readonly nonce: string
  readonly xml: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface MessageCrypto {
  readonly receiveId: string
  /** `msg_signature` of an encrypted message. */
  readonly signature: (timestamp: string, nonce: string, encrypted: string) => string
  readonly verify: (signed: Signed) => Effect.Effect<void, InvalidSignature>
  readonly decrypt: (encrypted: string) => Effect.Effect<string, DecryptError>
  /** Verifies, then decrypts: the way to read a push. */
  readonly open: (signed: Signed) => Effect.Effect<string, InvalidSignature | DecryptError>
  /** Encrypts with 16 bytes from Effect's `Random`. */
  readonly encrypt: (message: string) => Effect.Effect<string>
  /** Encrypts and signs a reply (timestamp from `Clock`, nonce from `Random`). */
  readonly seal: (message: string) => Effect.Effect<Sealed>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The message token typed into the admin console (not an access token). */
  readonly token: Redacted.Redacted<string>
  readonly encodingAesKey: Redacted.Redacted<string>
  /** appid, corpid or component appid: whom the messages are for. */
  readonly receiveId: string
}

const decryptError = (failure: internal.Failure, receiveId: string): DecryptError => {
  switch (failure._tag) {
    case "BadPadding":
      return new InvalidPadding()
    case "WrongReceiveId":
      return new ReceiveIdMismatch({ expected: receiveId })
    case "Malformed":
      return new MalformedMessage({ detail: failure.detail })
  }
}

const randomBytes = (count: number) =>
  Effect.map(
    Effect.all(Array.from({ length: count }, () => Random.nextIntBetween(0, 256))),
    (bytes) => Uint8Array.from(bytes)
  )

/**
 * A crypto for one receiver. Fails with `InvalidAesKey` for a key that is
 * not 43 base64 characters.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Either.Either<MessageCrypto, InvalidAesKey> =>
  Either.map(
    Either.mapLeft(internal.parseKey(Redacted.value(options.encodingAesKey)), (failure) =>
      new InvalidAesKey({ detail: failure.detail })),
    (key): MessageCrypto => {
      const { receiveId } = options
      const signature = (timestamp: string, nonce: string, encrypted: string) =>
        internal.signature([Redacted.value(options.token), timestamp, nonce, encrypted])
      const verify = (signed: Signed) =>
        internal.equalHex(signature(signed.timestamp, signed.nonce, signed.encrypted), signed.msgSignature)
          ? Effect.void
          : Effect.fail(new InvalidSignature())
      const decrypt = (encrypted: string) =>
        Either.match(internal.decrypt(key, encrypted, receiveId), {
          onLeft: (failure) =>
            Effect.fail(decryptError(failure, receiveId)),
          onRight: Effect.succeed
        })
      const encrypt = (message: string) =>
        Effect.map(randomBytes(16), (random) => internal.encrypt(key, random, message, receiveId))
      return {
        receiveId,
        signature,
        verify,
        decrypt,
        open: (signed) => Effect.zipRight(verify(signed), decrypt(signed.encrypted)),
        encrypt,
        seal: (message) =>
          Effect.gen(function*() {
            const encrypted = yield* encrypt(message)
            const timestamp = String(Math.floor((yield* Clock.currentTimeMillis) / 1000))
            const nonce = String(yield* Random.nextIntBetween(100_000_000, 1_000_000_000))
            const msgSignature = signature(timestamp, nonce, encrypted)
            // Base64, hex and digits cannot contain "]]>", so the CDATA sections are safe.
            const xml =
              `<xml><Encrypt><![CDATA[${encrypted}]]></Encrypt><MsgSignature><![CDATA[${msgSignature}]]></MsgSignature>` +
              `<TimeStamp>${timestamp}</TimeStamp><Nonce><![CDATA[${nonce}]]></Nonce></xml>`
            return { encrypted, msgSignature, timestamp, nonce, xml }
          })
      }
    }
  )

/**
 * Safe-mode URL verification: WeChat signs `echostr` like a message and
 * expects its decrypted plaintext back.
 *
 * @since 0.2.0
 * @category verification
 */
export const verifyUrl = (
  crypto: MessageCrypto,
  query: { readonly msgSignature: string; readonly timestamp: string; readonly nonce: string; readonly echostr: string }
): Effect.Effect<string, InvalidSignature | DecryptError> =>
  crypto.open({
    msgSignature: query.msgSignature,
    timestamp: query.timestamp,
    nonce: query.nonce,
    encrypted: query.echostr
  })
