/**
 * WeChat's emulator in a process of its own, for a bench whose client must
 * not share an event loop with it: serves one app (`APP_ID`, `SECRET`),
 * seeds one media file of `MEDIA_BYTES`, prints `media <id>` and then its
 * URL once it listens.
 */
import { Effect } from "effect"
import * as Emulator from "../src/testing/WeChatEmulator.js"

const program = Effect.gen(function*() {
  const { emulator, url } = yield* Emulator.serve({
    apps: [{ appId: process.env["APP_ID"] ?? "", secret: process.env["SECRET"] ?? "" }]
  })
  const mediaId = yield* emulator.apis.seedMedia(Number(process.env["MEDIA_BYTES"] ?? "0"))
  console.log(`media ${mediaId}`)
  console.log(`Listening on ${url}`)
  return yield* Effect.never
})

Effect.runFork(Effect.scoped(program))
