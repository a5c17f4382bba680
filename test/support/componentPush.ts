/**
 * Pushes as WeChat builds them, for tests that play WeChat themselves:
 * `xml` encrypted and signed for a component (safe mode).
 */
import { Effect, Either, Redacted } from "effect"
import * as MessageCrypto from "../../src/MessageCrypto.js"

export interface PushQuery {
  readonly timestamp: string
  readonly nonce: string
  readonly msg_signature: string
}

export const seal = (
  component: { readonly componentAppId: string; readonly messageToken: string; readonly encodingAesKey: string },
  xml: string
): Effect.Effect<{ readonly query: PushQuery; readonly body: string }> =>
  Effect.gen(function*() {
    const crypto = Either.getOrThrow(MessageCrypto.make({
      token: Redacted.make(component.messageToken),
      encodingAesKey: Redacted.make(component.encodingAesKey),
      receiveId: component.componentAppId
    }))
    const sealed = yield* crypto.seal(xml)
    return {
      query: { timestamp: sealed.timestamp, nonce: sealed.nonce, msg_signature: sealed.msgSignature },
      body:
        `<xml><AppId><![CDATA[${component.componentAppId}]]></AppId><Encrypt><![CDATA[${sealed.encrypted}]]></Encrypt></xml>`
    }
  })
