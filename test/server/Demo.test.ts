import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { createServer } from "node:http"
import * as MessageCrypto from "../../src/MessageCrypto.js"
import * as Demo from "../../src/server/Demo.js"

describe("Demo", () => {
  it.scoped("the demo component pushes a ticket and three authorizations, encrypted with its generated key", () =>
    Effect.gen(function*() {
      const demo = yield* Demo.start
      const crypto = Either.getOrThrow(MessageCrypto.make({
        token: demo.component.messageToken,
        encodingAesKey: demo.component.encodingAesKey,
        receiveId: Demo.DEMO_COMPONENT_APP_ID
      }))
      const received: Array<string> = []
      const receiver = yield* NodeHttpServer.make(() => createServer(), { host: "127.0.0.1", port: 0 })
      yield* receiver.serve(Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const query = new URL(request.url, "http://receiver").searchParams
        const encrypted = /<Encrypt><!\[CDATA\[([^\]]+)\]\]>/.exec(yield* request.text)?.[1] ?? ""
        return yield* crypto.open({
          msgSignature: query.get("msg_signature") ?? "",
          timestamp: query.get("timestamp") ?? "",
          nonce: query.get("nonce") ?? "",
          encrypted
        }).pipe(
          Effect.map((xml) => {
            received.push(xml)
            return HttpServerResponse.text("success")
          }),
          Effect.catchAll((error) => Effect.succeed(HttpServerResponse.text(error._tag, { status: 401 })))
        )
      }))
      const address = receiver.address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      yield* demo.connectComponent(
        `http://127.0.0.1:${address.port}/wechat/components/${Demo.DEMO_COMPONENT_APP_ID}/events`
      )
      const kinds = received.map((xml) => /<InfoType><!\[CDATA\[(\w+)\]\]>/.exec(xml)?.[1])
      // The served emulator may push its scheduled ticket first; the connection adds one more.
      expect(kinds.filter((kind) => kind === "authorized")).toHaveLength(3)
      expect(kinds).toContain("component_verify_ticket")
      for (const authorizer of Demo.DEMO_AUTHORIZERS) {
        expect(received.some((xml) => xml.includes(`<AuthorizerAppid><![CDATA[${authorizer}]]></AuthorizerAppid>`)))
          .toBe(true)
      }
    }))
})
