/**
 * Official accounts added at run time (the credential registry's apps): a
 * dynamic owner of the official-account family, admitted by the put of the
 * token that checked its secret, refreshed with the secret held now, ended by
 * `retire`, and admitted again by a restart on the same store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { RuntimeOwners } from "../../../src/internal/runtimeOwners.js"
import { TokenEngine } from "../../../src/TokenEngine.js"
import * as TokenStore from "../../../src/TokenStore.js"
import { APP, emulatorLayer, engineLayer, OTHER, SECRET, statsOf } from "../../support/engine.js"

const app = (secret: string) => ({ appId: OTHER as never, secret: Redacted.make(secret) })

describe("official accounts at run time", () => {
  it.scoped("a put admits the app without a fetch; retire ends it; a restart admits it again", () =>
    Effect.gen(function*() {
      const store = Layer.succeed(
        TokenStore.TokenStore,
        Context.get(yield* Layer.build(TokenStore.layerMemory), TokenStore.TokenStore)
      )
      const runtime = new Map([[OTHER as string, app(SECRET)]])
      const engineOn = Effect.map(
        Layer.build(
          Layer.provide(
            engineLayer({ apps: [APP], store }),
            Layer.succeed(RuntimeOwners, { apps: runtime, agents: new Map(), components: new Map() })
          )
        ),
        Context.get(TokenEngine)
      )
      const engine = yield* engineOn
      // Known to the registry but never put: nothing in the store admits it.
      expect((yield* Effect.flip(engine.get(OTHER)))._tag).toBe("UnknownApp")
      yield* engine.put(OTHER, "access_token", { value: "checked-token", expiresInSeconds: 7200 })
      expect((yield* engine.get(OTHER)).value).toBe("checked-token")
      expect((yield* statsOf(OTHER)).tokensIssued).toBe(0)

      // A restart on the same store admits it from its stored token.
      const restarted = yield* engineOn
      expect((yield* restarted.get(OTHER)).value).toBe("checked-token")

      // Refreshes use the secret held now: a wrong one is refused by WeChat.
      const refreshed = yield* engine.refresh(OTHER, "checked-token")
      expect(refreshed.value).not.toBe("checked-token")
      runtime.set(OTHER, app("a-replaced-but-wrong-secret"))
      expect((yield* Effect.flip(engine.refresh(OTHER, refreshed.value)))._tag).toBe("InvalidAppSecret")

      yield* engine.retire(OTHER)
      runtime.delete(OTHER)
      expect((yield* Effect.flip(engine.get(OTHER)))._tag).toBe("UnknownApp")
      // Configured apps are never dynamic: retire does not reach them.
      expect((yield* Effect.flip(engine.retire(APP)))._tag).toBe("UnknownApp")
      expect((yield* engine.get(APP)).value).toBeTruthy()
    }).pipe(Effect.provide(emulatorLayer())))
})
