/**
 * A `create_auth` push whose permanent code the store refuses to take is
 * answered 503, so WeCom pushes it again; the retry must still install the
 * corp. WeCom's temporary code is single use: the first attempt spent it
 * on `get_permanent_code`, so exchanging it again answers 40078 and the
 * permanent code (handed out once) would be lost with the corp.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as WeComSuite from "../../src/families/wecomSuite/WeComSuite.js"
import * as WeComSuiteConfig from "../../src/families/wecomSuite/WeComSuiteConfig.js"
import * as StoreSpec from "../../src/StoreSpec.js"
import * as Emulator from "../../src/testing/WeChatEmulator.js"
import * as TokenStore from "../../src/TokenStore.js"
import { call, eventually, serveComponentServer } from "../support/componentStack.js"
import { AES_KEY, MESSAGE_TOKEN, SUITE, SUITE_CORP, SUITE_SECRET, suiteRegistration } from "../support/fixtures.js"
import { auth } from "../support/serverStack.js"

describe("WeCom suite pushes: a create_auth answered 503", () => {
  it.scopedLive(
    "the store refuses the permanent code once: WeCom's retry installs the corp without spending the code again",
    () =>
      Effect.gen(function*() {
        const memory = yield* Layer.build(StoreSpec.layerMemory)
        const inner = Context.get(memory, TokenStore.TokenStore)
        let refusals = 0
        const store: TokenStore.TokenStoreShape = {
          ...inner,
          set: (record) =>
            record.kind === WeComSuite.permanentCode && refusals++ === 0
              ? Effect.fail(new TokenStore.StoreError({ operation: "set", detail: "disk full" }))
              : inner.set(record)
        }
        const wecom = yield* Emulator.serve({ suites: [suiteRegistration] })
        const controls = wecom.emulator.wecomSuite
        const server = yield* serveComponentServer(
          wecom.url,
          Layer.succeedContext(Context.add(memory, TokenStore.TokenStore, store)),
          undefined,
          {
            suites: WeComSuiteConfig.layerWith({
              suites: [WeComSuiteConfig.suite(SUITE, SUITE_SECRET, MESSAGE_TOKEN, AES_KEY)]
            })
          }
        )
        const corp = `${server.base}/v1/wecom-suites/${SUITE}/corps/${SUITE_CORP}/access-token`
        yield* controls.setCommandUrl(SUITE, `${server.base}/wecom/suites/${SUITE}/events`)
        yield* controls.pushTicket(SUITE)
        yield* eventually(Effect.map(
          call(`${server.base}/v1/wecom-suites/${SUITE}/access-token`, { headers: auth() }),
          (answer) => answer.status === 200
        ))

        yield* controls.install(SUITE, SUITE_CORP, 1000002)
        const log = yield* controls.pushLog(SUITE)
        expect(log.at(-1)).toMatchObject({ infoType: "create_auth", delivered: true, attempts: 2 })
        expect(refusals).toBe(2)
        yield* eventually(Effect.map(call(corp, { headers: auth() }), (answer) => answer.status === 200))
        // One exchange: the retry used the permanent code the first attempt was handed.
        expect((yield* controls.stats(SUITE)).permanentCodeCalls).toBe(1)
        const engine = server.engine
        const owner = WeComSuite.corpOwner(SUITE as never, SUITE_CORP as never)
        expect((yield* engine.get(owner, WeComSuite.permanentCode)).value).toBe(
          yield* controls.permanentCode(SUITE, SUITE_CORP)
        )
      }),
    { timeout: 120_000 }
  )
})
