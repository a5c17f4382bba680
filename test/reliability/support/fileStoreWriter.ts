/**
 * A process that does nothing but write the file store, as fast as it can,
 * until it is killed: `CrashConsistency.test.ts` SIGKILLs it at random
 * moments. It continues from whatever generation the file's access token
 * holds, prints `start <generation>` once, then `<kind> <generation>` after
 * each `set` returned.
 *
 * Usage: node --import tsx fileStoreWriter.ts <store path>
 */
import { NodeFileSystem, NodeRuntime } from "@effect/platform-node"
import { Clock, Effect, Layer, Option } from "effect"
import * as AppId from "../../../src/AppId.js"
import { type CredentialKind, TokenRecord } from "../../../src/Token.js"
import * as TokenStore from "../../../src/TokenStore.js"
import * as TokenStoreFile from "../../../src/TokenStoreFile.js"

const APP = AppId.make("wx0123456789abcdef")
const KINDS: ReadonlyArray<CredentialKind> = ["access_token", "jsapi_ticket", "wx_card_ticket"]

/** The value written with `generation`: a reader can tell a whole record from a torn one. */
const valueOf = (kind: CredentialKind, generation: number) => `${kind}-${generation}-${"x".repeat(500)}-${generation}`

const path = process.argv[2]

const program = Effect.gen(function*() {
  const store = yield* TokenStore.TokenStore
  const current = yield* store.get({ appId: APP, kind: "access_token" })
  let generation = Option.match(current, { onNone: () => 0, onSome: (record) => record.generation })
  process.stdout.write(`start ${generation}\n`)
  for (;;) {
    generation++
    const now = yield* Clock.currentTimeMillis
    // Three records a generation, so the document is a few KB and a kill
    // can land anywhere in a multi-step write.
    for (const kind of KINDS) {
      yield* store.set(
        new TokenRecord({
          appId: APP,
          kind,
          value: valueOf(kind, generation),
          mode: "classic",
          fetchedAt: now,
          expiresAt: now + 7_200_000,
          refreshAt: now + 6_900_000,
          generation
        })
      )
      process.stdout.write(`${kind} ${generation}\n`)
    }
  }
}).pipe(Effect.provide(TokenStoreFile.layer(path ?? "").pipe(Layer.provide(NodeFileSystem.layer))))

if (path !== undefined) NodeRuntime.runMain(program)
