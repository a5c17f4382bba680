/**
 * What WeCom pushes to a suite's command URL (指令回调URL), opened and
 * decoded, without a server: the intake route hands each push here and acts
 * on the event it gets back.
 *
 * - Nothing of the body but `<Encrypt>` is read before `msg_signature`
 *   verifies over it with the suite's Token; a push signed more than
 *   `PUSH_WINDOW_SECONDS` from this server's clock is refused; the message
 *   must decrypt for the suite id (WeCom's receive id for suite pushes);
 *   only then is the XML parsed, entities off and depth bounded, and the
 *   event decoded with `effect/Schema`. The checks are the third-party
 *   platform intake's, shared, not copied.
 * - `suite_ticket`, `create_auth`, `change_auth`, `cancel_auth` and
 *   `reset_permanent_code` decode into `SuiteEvent`; any other `InfoType`
 *   is `Ignored` (to be acknowledged, or WeCom retries it). An event naming
 *   another suite is refused.
 * - The replay guard is the intake's: `Opened.replayKey` names the push,
 *   to be remembered for `Opened.replayTtlMillis`; events carry their
 *   `TimeStamp` so an older ticket never replaces a newer one.
 * - URL verification (`GET` with `echostr`) on the same URL: `verifyUrl`.
 *
 * @since 0.3.0
 */
import { Clock, Data, Effect, Either, Schema } from "effect"
import * as PushMessage from "../../internal/pushMessage.js"
import * as MessageCrypto from "../../MessageCrypto.js"
import { CorpId } from "../../OwnerId.js"
import type { SuiteCredentials } from "./WeComSuiteConfig.js"

/**
 * How far from this server's clock a push may be signed, either way.
 *
 * @since 0.3.0
 * @category constants
 */
export const PUSH_WINDOW_SECONDS = PushMessage.PUSH_WINDOW_SECONDS

// Replicas' clocks differ a little: a push is remembered this much longer
// than this replica would accept it.
const REPLAY_MARGIN_MILLIS = 60_000

const Text = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1024))
// Tickets and codes are at most 512 bytes (WeCom's documented limit), printable ASCII.
const Credential = Schema.String.pipe(Schema.pattern(/^[\x21-\x7e]{1,512}$/))
const Seconds = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

/**
 * The events a suite acts on, as WeCom's decrypted XML names them.
 *
 * @since 0.3.0
 * @category schemas
 */
export const SuiteEvent = Schema.Union(
  Schema.Struct({
    InfoType: Schema.Literal("suite_ticket"),
    SuiteId: Text,
    TimeStamp: Seconds,
    SuiteTicket: Credential
  }),
  Schema.Struct({
    InfoType: Schema.Literal("create_auth", "reset_permanent_code"),
    SuiteId: Text,
    TimeStamp: Seconds,
    AuthCode: Credential,
    State: Schema.optional(Schema.String.pipe(Schema.maxLength(1024)))
  }),
  Schema.Struct({
    InfoType: Schema.Literal("change_auth", "cancel_auth"),
    SuiteId: Text,
    TimeStamp: Seconds,
    AuthCorpId: CorpId
  })
)

/**
 * @since 0.3.0
 * @category models
 */
export type SuiteEvent = typeof SuiteEvent.Type

/**
 * A verified push whose `InfoType` the suite does not act on: acknowledge it.
 *
 * @since 0.3.0
 * @category models
 */
export interface Ignored {
  readonly InfoType: "ignored"
  readonly infoType: string
}

/**
 * A push opened: its event, and what the intake's replay guard keys it by.
 *
 * @since 0.3.0
 * @category models
 */
export interface Opened {
  readonly event: SuiteEvent | Ignored
  /** The push's signature, lowercased: the same push replayed has the same key. */
  readonly replayKey: string
  /** How long to remember `replayKey`: while the push could be accepted, plus the replicas' clock margin. */
  readonly replayTtlMillis: number
}

/**
 * Why a push (or a URL verification) was refused; nothing was read beyond
 * what failed. `invalid_signature` is the caller's `401`, the others `400`.
 *
 * @since 0.3.0
 * @category errors
 */
export class SuiteEventRefused extends Data.TaggedError("SuiteEventRefused")<{
  readonly code: "invalid_push" | "invalid_signature" | "stale_push" | "undecryptable_push"
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/**
 * The query WeCom signs a push with.
 *
 * @since 0.3.0
 * @category models
 */
export type PushQuery = PushMessage.PushQuery

const cryptoOf = (suite: SuiteCredentials) =>
  MessageCrypto.make({
    token: suite.messageToken,
    encodingAesKey: suite.encodingAesKey,
    // WeCom encrypts a suite's pushes for the suite id.
    receiveId: suite.suiteId
  }).pipe(
    Either.mapLeft(() =>
      // The key was validated with the configuration; a bad one is the operator's to fix.
      new SuiteEventRefused({ code: "invalid_push", reason: "the suite's EncodingAESKey is unusable" })
    )
  )

const refused = (error: PushMessage.PushRefused) => new SuiteEventRefused({ code: error.code, reason: error.reason })

const decodeEvent = Schema.decodeUnknownEither(SuiteEvent)
const KNOWN = new Set(["suite_ticket", "create_auth", "change_auth", "cancel_auth", "reset_permanent_code"])

/**
 * Opens one push to `suite`'s command URL.
 *
 * @since 0.3.0
 * @category handlers
 */
export const open = (
  suite: SuiteCredentials,
  query: PushQuery,
  body: string
): Effect.Effect<Opened, SuiteEventRefused> =>
  Effect.gen(function*() {
    const crypto = yield* cryptoOf(suite)
    const { fields, signedAt } = yield* PushMessage.open(crypto, "this suite", query, body).pipe(
      Effect.mapError(refused)
    )
    const now = yield* Clock.currentTimeMillis
    const replay = {
      replayKey: query.msg_signature.toLowerCase(),
      replayTtlMillis: signedAt + PUSH_WINDOW_SECONDS * 1000 - now + REPLAY_MARGIN_MILLIS
    }
    const infoType = fields["InfoType"]
    const event = decodeEvent(fields)
    if (Either.isLeft(event)) {
      if (typeof infoType === "string" && !KNOWN.has(infoType)) {
        return { event: { InfoType: "ignored" as const, infoType: infoType.slice(0, 64) }, ...replay }
      }
      return yield* new SuiteEventRefused({
        code: "invalid_push",
        reason: "the event lacks a field its InfoType requires"
      })
    }
    if (event.right.SuiteId !== suite.suiteId) {
      return yield* new SuiteEventRefused({ code: "invalid_push", reason: "the event names another suite" })
    }
    return { event: event.right, ...replay }
  })

/**
 * URL verification on the command URL: the signature verifies over
 * `echostr`, which must decrypt for the suite; its plaintext is the answer.
 *
 * @since 0.3.0
 * @category handlers
 */
export const verifyUrl = (
  suite: SuiteCredentials,
  query: PushQuery & { readonly echostr: string }
): Effect.Effect<string, SuiteEventRefused> =>
  Effect.flatMap(cryptoOf(suite), (crypto) =>
    MessageCrypto.verifyUrl(crypto, {
      msgSignature: query.msg_signature,
      timestamp: query.timestamp,
      nonce: query.nonce,
      echostr: query.echostr
    }).pipe(
      Effect.mapError((error) =>
        error._tag === "InvalidSignature"
          ? new SuiteEventRefused({
            code: "invalid_signature",
            reason: "msg_signature does not verify: the request was not signed with this suite's Token"
          })
          : new SuiteEventRefused({
            code: "undecryptable_push",
            reason: `echostr does not decrypt for this suite (${error._tag})`
          })
      )
    ))
