/**
 * An encrypted push from WeChat or WeCom (a third-party platform's
 * authorization events, a WeCom suite's command URL), opened the one safe
 * way: find `<Encrypt>` without parsing the unsigned body, verify
 * `msg_signature` over it, refuse a push signed too far from this server's
 * clock, decrypt for the expected receiver, and only then parse the XML,
 * with entities off and the depth bounded. Pure: the intakes decide what the
 * event does.
 */
import { Clock, Data, Effect, Either } from "effect"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import type * as MessageCrypto from "../MessageCrypto.js"
import type { StoreError, TokenStoreShape } from "../TokenStore.js"

/** Pushes are a few hundred bytes; anything much larger is not WeChat's. */
export const MAX_PUSH_BYTES = 16 * 1024

/** WeChat's XML is two levels deep (`<xml><Field>`); a little room, no more. */
export const MAX_XML_DEPTH = 4

/**
 * How far from this server's clock a push may be signed, either way: a
 * genuine push is seconds old, tickets come every 10 minutes (so a shorter
 * window never lets an earlier ticket's push back in), and 5 minutes covers
 * any sane clock drift.
 */
export const PUSH_WINDOW_SECONDS = 300

const parser = new XMLParser({
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: true,
  maxNestedTags: MAX_XML_DEPTH
})

/**
 * Parses a WeChat XML message into its `<xml>` element's fields (strings).
 * Fails, never throws, on anything that is not a small, flat, well-formed
 * document; no entity is expanded.
 */
export const parseXml = (xml: string): Either.Either<Readonly<Record<string, unknown>>, string> => {
  if (xml.length > MAX_PUSH_BYTES) return Either.left(`the message is over ${MAX_PUSH_BYTES} bytes`)
  // A DOCTYPE is how entities are declared; WeChat never sends one.
  if (/<!DOCTYPE/i.test(xml)) return Either.left("a DOCTYPE is not accepted")
  if (XMLValidator.validate(xml) !== true) return Either.left("the message is not well-formed XML")
  try {
    const parsed: unknown = parser.parse(xml)
    const root = typeof parsed === "object" && parsed !== null && "xml" in parsed ? parsed.xml : undefined
    return typeof root === "object" && root !== null && !Array.isArray(root)
      ? Either.right(root as Record<string, unknown>)
      : Either.left("the message has no <xml> root element")
  } catch {
    // The parser's own limits (nesting) throw.
    return Either.left("the message nests too deep or cannot be parsed")
  }
}

const ENCRYPT_OPEN = "<Encrypt>"
const ENCRYPT_CLOSE = "</Encrypt>"
const CDATA_OPEN = "<![CDATA["
const CDATA_CLOSE = "]]>"

/**
 * The `<Encrypt>` of a push's envelope, found without parsing it: the body
 * is not signed, so only what the signature covers is read before it is
 * checked. One linear search for each tag; exactly one element, its text
 * plain or in one CDATA section. Anything else is not WeChat's envelope.
 */
export const encryptedOf = (body: string): Either.Either<string, string> => {
  const open = body.indexOf(ENCRYPT_OPEN)
  if (open === -1) return Either.left("the push has no <Encrypt> element")
  const start = open + ENCRYPT_OPEN.length
  const end = body.indexOf(ENCRYPT_CLOSE, start)
  if (end === -1) return Either.left("the push's <Encrypt> element is not closed")
  if (body.includes(ENCRYPT_OPEN, end)) return Either.left("the push has more than one <Encrypt> element")
  const text = body.slice(start, end).trim()
  const value = text.startsWith(CDATA_OPEN) && text.endsWith(CDATA_CLOSE)
    ? text.slice(CDATA_OPEN.length, text.length - CDATA_CLOSE.length)
    : text
  return value.length === 0 ? Either.left("the push's <Encrypt> element is empty") : Either.right(value)
}

/** The query a push is signed with. */
export interface PushQuery {
  readonly timestamp: string
  readonly nonce: string
  readonly msg_signature: string
}

/**
 * Why a push was refused: `invalid_signature` (not signed with the
 * receiver's token), `stale_push` (signed outside the window),
 * `undecryptable_push` (not for this receiver, or tampered), `invalid_push`
 * (anything else malformed).
 */
export class PushRefused extends Data.TaggedError("PushRefused")<{
  readonly code: "invalid_push" | "invalid_signature" | "stale_push" | "undecryptable_push"
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/** A push opened: its fields and when it was signed (ms). */
export interface OpenedPush {
  readonly fields: Readonly<Record<string, unknown>>
  readonly signedAt: number
}

const refuse = (code: PushRefused["code"], reason: string) => Effect.fail(new PushRefused({ code, reason }))

/**
 * Opens one push for `crypto`'s receiver. `whose` names the receiver in the
 * messages ("this component", "this suite"). Nothing of the body but
 * `<Encrypt>` is read before the signature verifies.
 */
export const open = (
  crypto: MessageCrypto.MessageCrypto,
  whose: string,
  query: PushQuery,
  body: string
): Effect.Effect<OpenedPush, PushRefused> =>
  Effect.gen(function*() {
    if (body.length > MAX_PUSH_BYTES) return yield* refuse("invalid_push", "the push is too large")
    const encrypted = encryptedOf(body)
    if (Either.isLeft(encrypted)) return yield* refuse("invalid_push", encrypted.left)
    yield* crypto.verify({
      msgSignature: query.msg_signature,
      timestamp: query.timestamp,
      nonce: query.nonce,
      encrypted: encrypted.right
    }).pipe(
      Effect.mapError(() =>
        new PushRefused({
          code: "invalid_signature",
          reason: `msg_signature does not verify: the push was not signed with ${whose}'s message token`
        })
      )
    )
    // Signed by WeChat, but when? A captured push replayed later carries its old timestamp.
    if (!/^\d{1,12}$/.test(query.timestamp)) return yield* refuse("invalid_push", "timestamp is not a time in seconds")
    const signedAt = Number(query.timestamp) * 1000
    const now = yield* Clock.currentTimeMillis
    const skew = Math.round((now - signedAt) / 1000)
    if (Math.abs(skew) > PUSH_WINDOW_SECONDS) {
      yield* Effect.logWarning("push refused: signed too far from this server's clock").pipe(
        Effect.annotateLogs({ signedAt: new Date(signedAt).toISOString(), skewSeconds: skew })
      )
      return yield* refuse(
        "stale_push",
        `the push was signed ${Math.abs(skew)} s ${skew > 0 ? "ago" : "ahead of this server's clock"}; ` +
          `pushes signed more than ${PUSH_WINDOW_SECONDS} s from this server's clock are refused as replays ` +
          `(if WeChat's own pushes get this answer, check this server's clock)`
      )
    }
    const xml = yield* crypto.decrypt(encrypted.right).pipe(
      Effect.mapError((error) =>
        new PushRefused({
          code: "undecryptable_push",
          reason: `the push does not decrypt for ${whose} (${error._tag})`
        })
      )
    )
    const fields = parseXml(xml)
    if (Either.isLeft(fields)) return yield* refuse("invalid_push", fields.left)
    return { fields: fields.right, signedAt }
  })

/**
 * Runs `accept` for the push `key` names unless a push with that key was
 * accepted already on any replica sharing `store`: `true` when it ran. The
 * key is claimed for `ttlMillis` only once `accept` succeeds: the sender's
 * retry of a push whose write failed (or is still under way past the
 * sender's timeout) carries the same signature and must get in; a copy
 * racing this one repeats an idempotent write.
 */
export const acceptOnce = <E>(
  store: Pick<TokenStoreShape, "claim" | "isClaimed">,
  key: string,
  ttlMillis: number,
  accept: Effect.Effect<void, E>
): Effect.Effect<boolean, E | StoreError> =>
  Effect.gen(function*() {
    if (yield* store.isClaimed(key)) return false
    yield* accept
    yield* store.claim(key, ttlMillis)
    return true
  })
