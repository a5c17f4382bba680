import { Effect } from "effect"
import { writeFile } from "node:fs/promises"
import { Redis } from "ioredis"
import * as FileStore from "../src/internal/fileStore.js"
import { recordJson, recordKey } from "../src/internal/redisStore.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import * as RedisServer from "../test/support/redisServer.js"
import { COMPONENT, registration, warmRecords } from "./credentialApps.js"

const count = Number(process.env["COUNT"])
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const wechat = yield* Emulator.serve({ components: [registration] })
  const ids = yield* wechat.emulator.component.generateAuthorizers(COMPONENT, count)
  const authorizers = []
  for (const appId of ids) authorizers.push({ appId, refreshToken: (yield* wechat.emulator.component.currentRefreshToken(COMPONENT, appId))! })
  const ticket = yield* wechat.emulator.component.pushTicket(COMPONENT)
  const records = warmRecords(ticket, authorizers, Date.now())
  const text = yield* FileStore.render(records)
  yield* Effect.promise(() => writeFile("/tmp/scalework/tokens.json", text, { mode: 0o600 }))
  const redis = yield* RedisServer.make
  const client = new Redis(redis.url)
  for (let start = 0; start < records.length; start += 5_000) {
    const pipeline = client.pipeline()
    for (const record of records.slice(start, start + 5_000)) pipeline.set(recordKey(record), recordJson(record))
    yield* Effect.promise(() => pipeline.exec())
  }
  yield* Effect.promise(() => client.quit())
  console.log(`READY WECHAT_API_BASE_URL=${wechat.url} REDIS=${redis.url}`)
  yield* Effect.never
}))).catch(console.error)
