/**
 * The push intake of a third-party platform: what WeChat POSTs to the
 * authorization-event URL `/wechat/components/{componentAppId}/events`.
 *
 * - Checked before anything is read: the component is configured, the body
 *   is small, and `msg_signature` verifies (constant-time) over the
 *   envelope's `<Encrypt>`, found by a bounded string search: no XML of an
 *   unsigned body is parsed, so forged bodies cost a scan and a hash. Then
 *   the push must be signed within `PUSH_WINDOW_SECONDS` of this server's
 *   clock, and the message decrypts for this component (receiveid). Any
 *   failure changes nothing: `401` for an unknown component or a bad
 *   signature, `400` for a push signed too long ago (or ahead) and for what
 *   does not decrypt or parse.
 * - The decrypted XML is parsed with `fast-xml-parser` with entity
 *   processing off (no DOCTYPE entity can expand: a "billion laughs" stays a
 *   few bytes), tag values kept as strings, nesting limited, and validated
 *   first; the event is then decoded with `effect/Schema`.
 * - Replays change nothing: a push whose signature was accepted within the
 *   window, by any replica sharing the store, is answered `success` (WeChat
 *   must not retry it) and dropped. Events are ordered by their
 *   `CreateTime`: an older verify ticket never replaces a newer one, and an
 *   `unauthorized` older than the authorizer's latest authorization is
 *   ignored.
 * - `component_verify_ticket` is stored durably, `authorized` /
 *   `updateauthorized` journal the code durably (exchanged in the
 *   background), `unauthorized` retires the authorizer; only then is
 *   `success` answered. A store that refuses the write answers `503`, so
 *   WeChat pushes again (the replay guard lets that retry in). Other event
 *   types are acknowledged and ignored.
 * - Duplicates are idempotent: the same ticket or code writes nothing new.
 *
 * @since 0.3.0
 */
import { Clock, Effect, Either, Option, Schema } from "effect"
import { BadRequest, detail, type TokenUnavailable, tokenUnavailable, Unauthorized } from "../../api/ApiError.js"
import * as PushMessage from "../../internal/pushMessage.js"
import * as MessageCrypto from "../../MessageCrypto.js"
import type { ComponentTokenShape } from "./ComponentToken.js"

/**
 * Pushes are a few hundred bytes; anything much larger is not WeChat's.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_PUSH_BYTES = PushMessage.MAX_PUSH_BYTES

/**
 * WeChat's XML is two levels deep (`<xml><Field>`); a little room, no more.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_XML_DEPTH = PushMessage.MAX_XML_DEPTH

/**
 * How far from this server's clock a push may be signed (its signed
 * `timestamp`), either way. WeChat answers a push at once and retries it
 * within seconds, so a genuine push is seconds old; a verify ticket comes
 * every 10 minutes, so a window shorter than that never lets an earlier
 * ticket's push back in; and 5 minutes still covers any sane clock drift
 * between WeChat and this server. Beyond it a push is refused (`400
 * stale_push`): a captured push is worthless after 5 minutes, and within
 * them the replay guard drops it.
 *
 * @since 0.3.0
 * @category constants
 */
export const PUSH_WINDOW_SECONDS = PushMessage.PUSH_WINDOW_SECONDS

// Replicas' clocks differ a little: a push is remembered this much longer
// than this replica would accept it.
const REPLAY_MARGIN_MILLIS = 60_000

/**
 * Parses a WeChat XML message into its `<xml>` element's fields (strings).
 * Fails, never throws, on anything that is not a small, flat, well-formed
 * document; no entity is expanded.
 *
 * @since 0.3.0
 * @category parsing
 */
export const parseXml: (xml: string) => Either.Either<Readonly<Record<string, unknown>>, string> = PushMessage.parseXml

/**
 * The `<Encrypt>` of a push's envelope, found without parsing it: the body
 * is not signed, so only what the signature covers is read before it is
 * checked.
 *
 * @since 0.3.0
 * @category parsing
 */
export const encryptedOf: (body: string) => Either.Either<string, string> = PushMessage.encryptedOf

const Text = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1024))
const Seconds = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

/**
 * The events the intake acts on, as WeChat's decrypted XML names them.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ComponentEvent = Schema.Union(
  Schema.Struct({
    InfoType: Schema.Literal("component_verify_ticket"),
    AppId: Text,
    CreateTime: Schema.optional(Seconds),
    ComponentVerifyTicket: Text
  }),
  Schema.Struct({
    InfoType: Schema.Literal("authorized", "updateauthorized"),
    AppId: Text,
    AuthorizerAppid: Text,
    AuthorizationCode: Text,
    AuthorizationCodeExpiredTime: Seconds
  }),
  Schema.Struct({
    InfoType: Schema.Literal("unauthorized"),
    AppId: Text,
    CreateTime: Schema.optional(Seconds),
    AuthorizerAppid: Text
  })
)

/**
 * @since 0.3.0
 * @category models
 */
export type ComponentEvent = typeof ComponentEvent.Type

const decodeEvent = Schema.decodeUnknownEither(ComponentEvent)

/**
 * The query WeChat signs a push with.
 *
 * @since 0.3.0
 * @category models
 */
export type PushQuery = PushMessage.PushQuery

const badRequest = (code: string, message: string) => Effect.fail(new BadRequest(detail(code, message)))
const unauthorizedError = (message: string) => new Unauthorized(detail("invalid_signature", message))
const unauthorized = (message: string) => Effect.fail(unauthorizedError(message))
const unavailable = tokenUnavailable

/**
 * Handles one push to `componentAppId`: answers `success` once what it
 * carries is stored, or at once for a replay, which stores nothing.
 *
 * @since 0.3.0
 * @category handlers
 */
export const receive = (
  components: ComponentTokenShape,
  componentAppId: string,
  query: PushQuery,
  body: string
): Effect.Effect<"success", BadRequest | Unauthorized | TokenUnavailable> =>
  Effect.gen(function*() {
    const component = Option.getOrUndefined(components.credentials(componentAppId))
    if (component === undefined) {
      return yield* unauthorized("no such component on this server: check WECHAT_COMPONENTS")
    }
    const crypto = MessageCrypto.make({
      token: component.messageToken,
      encodingAesKey: component.encodingAesKey,
      receiveId: component.componentAppId
    })
    // The key was validated with the configuration; a bad one is the operator's to fix.
    if (Either.isLeft(crypto)) return yield* badRequest("invalid_push", "the component's EncodingAESKey is unusable")
    const { fields, signedAt } = yield* PushMessage.open(crypto.right, "this component", query, body).pipe(
      Effect.mapError((refused) =>
        refused.code === "invalid_signature"
          ? unauthorizedError(refused.reason)
          : new BadRequest(detail(refused.code, refused.reason))
      )
    )
    const now = yield* Clock.currentTimeMillis
    const infoType = fields["InfoType"]
    const event = decodeEvent(fields)
    if (Either.isLeft(event)) {
      // An event this server does not act on (e.g. notify_third_fasteregister): acknowledged, else WeChat retries.
      if (infoType !== undefined && !KNOWN.has(String(infoType))) {
        yield* Effect.logInfo("component push ignored").pipe(
          Effect.annotateLogs({ component: componentAppId, infoType: String(infoType).slice(0, 64) })
        )
        return "success" as const
      }
      return yield* badRequest("invalid_push", "the event lacks a field its InfoType requires")
    }
    if (event.right.AppId !== component.componentAppId) {
      return yield* badRequest("invalid_push", "the event names another component")
    }
    // The signature names this push: remembered while it could be accepted, plus the replicas' clock margin.
    const accepted = yield* components.acceptOnce(
      component.componentAppId,
      query.msg_signature.toLowerCase(),
      signedAt + PUSH_WINDOW_SECONDS * 1000 - now + REPLAY_MARGIN_MILLIS,
      dispatch(components, component.componentAppId, event.right)
    ).pipe(Effect.mapError(unavailable))
    if (!accepted) {
      yield* Effect.logInfo("component push replayed: accepted already, nothing changed").pipe(
        Effect.annotateLogs({ infoType: event.right.InfoType })
      )
    }
    return "success" as const
  }).pipe(Effect.annotateLogs({ component: componentAppId }))

const KNOWN = new Set(["component_verify_ticket", "authorized", "updateauthorized", "unauthorized"])

const dispatch = (components: ComponentTokenShape, componentAppId: string, event: ComponentEvent) => {
  switch (event.InfoType) {
    case "component_verify_ticket":
      return components.acceptTicket(
        componentAppId,
        event.ComponentVerifyTicket,
        event.CreateTime === undefined ? undefined : event.CreateTime * 1000
      )
    case "authorized":
    case "updateauthorized":
      return components.acceptAuthorization(
        componentAppId,
        event.AuthorizerAppid,
        event.AuthorizationCode,
        event.AuthorizationCodeExpiredTime * 1000
      )
    case "unauthorized":
      return components.acceptRevocation(
        componentAppId,
        event.AuthorizerAppid,
        event.CreateTime === undefined ? undefined : event.CreateTime * 1000
      )
  }
}
