/**
 * The push intake of a third-party platform: what WeChat POSTs to the
 * authorization-event URL `/wechat/components/{componentAppId}/events`.
 *
 * - Checked before anything is read: the component is configured, the body
 *   is small, `msg_signature` verifies (constant-time), the message decrypts
 *   and was meant for this component (receiveid). Any failure changes
 *   nothing: `401` for an unknown component or a bad signature, `400` for
 *   what does not decrypt or parse.
 * - XML is parsed with `fast-xml-parser` with entity processing off (no
 *   DOCTYPE entity can expand: a "billion laughs" stays a few bytes), tag
 *   values kept as strings, nesting limited, and validated first; the event
 *   is then decoded with `effect/Schema`.
 * - `component_verify_ticket` is stored durably, `authorized` /
 *   `updateauthorized` journal the code durably (exchanged in the
 *   background), `unauthorized` retires the authorizer; only then is
 *   `success` answered. A store that refuses the write answers `503`, so
 *   WeChat pushes again. Other event types are acknowledged and ignored.
 * - Duplicates are idempotent: the same ticket or code writes nothing new.
 *
 * @since 0.3.0
 */
import { Effect, Either, Option, Schema } from "effect"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import type { AccessTokenError } from "../AccessToken.js"
import { failureCause } from "../AccessToken.js"
import { BadRequest, detail, TokenUnavailable, Unauthorized } from "../api/ApiError.js"
import type { ComponentTokenShape } from "../ComponentToken.js"
import * as MessageCrypto from "../MessageCrypto.js"

/**
 * Pushes are a few hundred bytes; anything much larger is not WeChat's.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_PUSH_BYTES = 16 * 1024

/**
 * WeChat's XML is two levels deep (`<xml><Field>`); a little room, no more.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_XML_DEPTH = 4

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
 *
 * @since 0.3.0
 * @category parsing
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
export interface PushQuery {
  readonly timestamp: string
  readonly nonce: string
  readonly msg_signature: string
}

const badRequest = (code: string, message: string) => Effect.fail(new BadRequest(detail(code, message)))
const unauthorizedError = (message: string) => new Unauthorized(detail("invalid_signature", message))
const unauthorized = (message: string) => Effect.fail(unauthorizedError(message))
const unavailable = (error: AccessTokenError) => new TokenUnavailable(detail(failureCause(error), error.message))

/**
 * Handles one push to `componentAppId`: answers `success` once what it
 * carries is stored.
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
    if (body.length > MAX_PUSH_BYTES) return yield* badRequest("invalid_push", "the push is too large")
    const envelope = parseXml(body)
    if (Either.isLeft(envelope)) return yield* badRequest("invalid_push", envelope.left)
    const encrypted = envelope.right["Encrypt"]
    if (typeof encrypted !== "string" || encrypted.length === 0) {
      return yield* badRequest("invalid_push", "the push has no <Encrypt> element")
    }
    const crypto = MessageCrypto.make({
      token: component.messageToken,
      encodingAesKey: component.encodingAesKey,
      receiveId: component.componentAppId
    })
    // The key was validated with the configuration; a bad one is the operator's to fix.
    if (Either.isLeft(crypto)) return yield* badRequest("invalid_push", "the component's EncodingAESKey is unusable")
    const xml = yield* crypto.right.open({
      msgSignature: query.msg_signature,
      timestamp: query.timestamp,
      nonce: query.nonce,
      encrypted
    }).pipe(
      Effect.mapError((error) =>
        error._tag === "InvalidSignature"
          ? unauthorizedError(
            "msg_signature does not verify: the push was not signed with this component's message token"
          )
          : new BadRequest(
            detail("undecryptable_push", `the push does not decrypt for this component (${error._tag})`)
          )
      )
    )
    const fields = parseXml(xml)
    if (Either.isLeft(fields)) return yield* badRequest("invalid_push", fields.left)
    const infoType = fields.right["InfoType"]
    const event = decodeEvent(fields.right)
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
    yield* dispatch(components, component.componentAppId, event.right).pipe(Effect.mapError(unavailable))
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
      return components.acceptRevocation(componentAppId, event.AuthorizerAppid)
  }
}
