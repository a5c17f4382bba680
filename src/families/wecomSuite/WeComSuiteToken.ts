/**
 * The service a WeCom service provider's server uses, over an engine that
 * runs the suite families: per configured suite its token, pre-auth codes
 * for install links, the corps that installed it and, per corp, the corp
 * token, its tickets and signed `wx.config` / `wx.agentConfig`; the
 * provider token. It also takes what WeCom pushes to a suite's command URL
 * (the server's intake opens it with `SuiteEvents`).
 *
 * - A pushed `suite_ticket` is stored durably before the push is answered;
 *   an older one (a retry overtaken by the next) never replaces a newer one.
 * - `create_auth` and `reset_permanent_code`: the temporary code is
 *   exchanged (`v2/get_permanent_code`, one call on the held suite token)
 *   and the permanent code stored durably before the push is answered, so
 *   a process killed right after answering still has it. WeCom hands the
 *   permanent code out once: a push answered before it is stored could
 *   lose the corp for good. The exchange is claimed in the store first, so
 *   it happens once across the replicas sharing it. When the store refuses
 *   the permanent code, the push is answered 503 and the exchanging process
 *   keeps the grant and retries the write in the background (0.25 s,
 *   doubling to 10 s) for the temporary code's 10 minutes; WeCom's retry of
 *   the push (its temporary code now spent) is answered `success` by any
 *   replica, or a restarted one, once the code is stored, and 503 until then.
 * - `cancel_auth` retires the corp on every replica (the store's tombstone),
 *   unless the corp installed the app again after it.
 *
 * @since 0.3.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import { createHash } from "node:crypto"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import type { Issued } from "../../CredentialFamily.js"
import { ownerPage } from "../../internal/ownerPage.js"
import * as PushMessage from "../../internal/pushMessage.js"
import { type InvalidPageUrl, pageUrl } from "../../JsSdk.js"
import { CorpId, type SuiteOwnerId } from "../../OwnerId.js"
import { TokenRecord } from "../../Token.js"
import { TokenEngine } from "../../TokenEngine.js"
import { StoreError, TokenStore } from "../../TokenStore.js"
import { UnknownApp } from "../../WeChatError.js"
import { signPage, type WeComJsSdkConfig } from "../wecom/WeComToken.js"
import type { SuiteEvent } from "./SuiteEvents.js"
import * as WeComSuite from "./WeComSuite.js"
import { type PermanentCode, type SessionInfo, WeComSuiteApi } from "./WeComSuiteApi.js"
import { type SuiteCredentials, WeComSuiteConfig } from "./WeComSuiteConfig.js"

/**
 * WeCom's install page for a pre-auth code.
 *
 * @since 0.3.0
 * @category constants
 */
export const INSTALL_PAGE = "https://open.work.weixin.qq.com/3rdapp/install"

/**
 * A fresh pre-auth code and, when a `redirect_uri` was given, the install
 * page to send the corp's admin to.
 *
 * @since 0.3.0
 * @category models
 */
export interface PreAuthCode {
  readonly preAuthCode: string
  readonly expiresInSeconds: number
  readonly installUrl?: string
}

/**
 * What an install link asks for: where WeCom sends the admin back (with
 * `auth_code` and `state`), and the session set on the code.
 *
 * @since 0.3.0
 * @category models
 */
export interface InstallOptions extends SessionInfo {
  readonly redirectUri?: string
  readonly state?: string
}

/**
 * One corp that installed a suite, as the list shows it.
 *
 * @since 0.3.0
 * @category models
 */
export interface CorpEntry {
  readonly corpId: string
  readonly valid: boolean
  /** The last moment its held corp token may be used, when one is valid. */
  readonly expiresAt?: number
}

/**
 * One page of a suite's corps, ordered by corp id; `nextCursor` continues it.
 *
 * @since 0.3.0
 * @category models
 */
export interface CorpPage {
  readonly corps: ReadonlyArray<CorpEntry>
  readonly nextCursor?: string
}

/**
 * @since 0.3.0
 * @category models
 */
export interface WeComSuiteTokenShape {
  /** The configured suites. */
  readonly suites: ReadonlyArray<string>
  /** A configured suite's credentials (what its pushes are checked with). */
  readonly credentials: (suiteId: string) => Option.Option<SuiteCredentials>
  readonly suiteToken: (suiteId: string) => Effect.Effect<Credential, AccessTokenError>
  /** The service provider's corp id (`WECOM_PROVIDER`), when one is configured. */
  readonly provider: string | undefined
  /** The provider token (`WECOM_PROVIDER`); `UnknownApp` when none is configured. */
  readonly providerToken: Effect.Effect<Credential, AccessTokenError>
  /** A fresh, single-use pre-auth code (never cached), its session set when `options` name one. */
  readonly preAuthCode: (suiteId: string, options?: InstallOptions) => Effect.Effect<PreAuthCode, AccessTokenError>
  /** A page of the corps that installed the suite, at most `limit` (1-500) after `cursor`. */
  readonly corps: (
    suiteId: string,
    page: { readonly cursor?: string | undefined; readonly limit: number }
  ) => Effect.Effect<CorpPage, UnknownApp>
  readonly corpToken: (suiteId: string, corpId: string) => Effect.Effect<Credential, AccessTokenError>
  /** Compare-and-refresh of a corp's token. */
  readonly refreshCorpToken: (
    suiteId: string,
    corpId: string,
    staleToken?: string
  ) => Effect.Effect<Credential, AccessTokenError>
  readonly jsapiTicket: (suiteId: string, corpId: string) => Effect.Effect<Credential, AccessTokenError>
  readonly agentTicket: (suiteId: string, corpId: string) => Effect.Effect<Credential, AccessTokenError>
  /** Signs `url` for `wx.config` (`appId` = the corp) and `wx.agentConfig` (the suite's app in that corp). */
  readonly jsSdkConfig: (
    suiteId: string,
    corpId: string,
    url: string
  ) => Effect.Effect<WeComJsSdkConfig, AccessTokenError | InvalidPageUrl>
  /**
   * Exchanges an install's temporary code (`AuthCode`) as the `create_auth`
   * push does, and answers the corp it installed; a code whose permanent
   * code is stored already (the push exchanged it, on any replica sharing
   * the store) is not exchanged again. Fails with a `StoreError` while
   * another process holds the exchange and its permanent code is not stored.
   */
  readonly exchange: (suiteId: string, authCode: string) => Effect.Effect<string, AccessTokenError>
  /** An installed corp's permanent code, as stored. */
  readonly permanentCode: (suiteId: string, corpId: string) => Effect.Effect<Credential, AccessTokenError>
  /** Compare-and-refresh of a suite's token. */
  readonly refreshSuiteToken: (suiteId: string, staleToken?: string) => Effect.Effect<Credential, AccessTokenError>
  /** Acts on a pushed event: stored durably (or the corp retired) before this returns. */
  readonly accept: (suiteId: string, event: SuiteEvent) => Effect.Effect<void, AccessTokenError>
  /**
   * Runs `accept` for the push `pushId` (its `msg_signature`) unless it was
   * accepted already on any replica sharing the store: `true` when it ran.
   */
  readonly acceptOnce: <E>(
    suiteId: string,
    pushId: string,
    windowMillis: number,
    accept: Effect.Effect<void, E>
  ) => Effect.Effect<boolean, E | AccessTokenError>
}

/**
 * @since 0.3.0
 * @category tags
 */
export class WeComSuiteToken extends Context.Tag("effect-wechat-token/WeComSuiteToken")<
  WeComSuiteToken,
  WeComSuiteTokenShape
>() {}

const isCorpId = Schema.is(CorpId)

/**
 * The `WeComSuiteToken` view of an engine that runs the suite families.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make: Effect.Effect<
  WeComSuiteTokenShape,
  never,
  TokenEngine | TokenStore | WeComSuiteApi | WeComSuiteConfig
> = Effect.gen(function*() {
  const engine = yield* TokenEngine
  const store = yield* TokenStore
  const api = yield* WeComSuiteApi
  const config = yield* WeComSuiteConfig
  const byId = new Map(config.suites.map((suite) => [suite.suiteId as string, suite]))
  const provider = Option.getOrUndefined(config.provider)
  // The agent the suite's app runs as in a corp (for `wx.agentConfig`):
  // asked of WeCom once per corp and process, forgotten when the install changes.
  const agents = new Map<string, number>()
  // WeCom's temporary code is single use and the permanent code is handed out once: a grant whose
  // permanent code the store refused waits here (by temporary code, for the code's 10 minutes) while a
  // background fiber retries the write, and the push's retry finds it.
  const unstored = new Map<string, { readonly grant: PermanentCode; readonly until: number }>()

  // Ids reach here unvalidated (HTTP paths, pushes): only configured ones are looked up.
  const suiteOf = (suiteId: string): Effect.Effect<SuiteCredentials, UnknownApp> => {
    const suite = byId.get(suiteId)
    return suite === undefined ? Effect.fail(new UnknownApp({ appId: suiteId })) : Effect.succeed(suite)
  }
  const ownerOf = (suiteId: string, corpId: string) =>
    Effect.flatMap(suiteOf(suiteId), (suite) =>
      isCorpId(corpId)
        ? Effect.succeed(WeComSuite.corpOwner(suite.suiteId, corpId))
        : Effect.fail(new UnknownApp({ appId: `${suiteId}:${corpId}` })))
  const corpKind = (kind: string) => (suiteId: string, corpId: string) =>
    Effect.flatMap(ownerOf(suiteId, corpId), (owner) => engine.get(owner, kind))

  // A suite-token call refused for a dead token replaces it once.
  const withSuiteToken = <A>(suite: SuiteCredentials, call: (token: string) => Effect.Effect<A, AccessTokenError>) =>
    Effect.flatMap(engine.get(suite.suiteId, WeComSuite.suiteToken), (token) =>
      call(token.value).pipe(
        Effect.catchTag("InvalidCredential", () =>
          Effect.flatMap(
            engine.refresh(suite.suiteId, token.value, WeComSuite.suiteToken),
            (fresh) => call(fresh.value)
          ))
      ))

  const agentOf = (suite: SuiteCredentials, corpId: CorpId) =>
    Effect.gen(function*() {
      const owner = WeComSuite.corpOwner(suite.suiteId, corpId)
      const known = agents.get(owner)
      if (known !== undefined) return known
      const code = yield* engine.get(owner, WeComSuite.permanentCode)
      const info = yield* withSuiteToken(suite, (token) => api.fetchAuthInfo(suite.suiteId, token, corpId, code.value))
      const agent = info.agentIds[0]
      if (agent !== undefined) agents.set(owner, agent)
      return agent
    })

  const acceptTicket = (suite: SuiteCredentials, ticket: string, createdAt: number) =>
    Effect.gen(function*() {
      // A ticket's record expires 30 minutes after WeCom created it (set so
      // below): a held one expiring later is newer, and an older ticket put
      // over it would be refused at the next suite-token fetch.
      const expiresAt = createdAt + WeComSuite.SUITE_TICKET_SECONDS * 1000
      const held = Option.getOrUndefined(
        yield* store.get({ appId: suite.suiteId as string as SuiteOwnerId, kind: WeComSuite.suiteTicket })
      )
      if (held !== undefined && held.value !== ticket && held.expiresAt > expiresAt + 1_000) {
        return yield* Effect.logInfo("older suite_ticket ignored: a newer one is held")
      }
      const now = yield* Clock.currentTimeMillis
      // Valid 30 minutes from when WeCom issued it; a clock skew never makes it look older than now.
      const age = Math.max(0, now - createdAt)
      const issued: Issued = {
        value: ticket,
        expiresInSeconds: Math.max(60, WeComSuite.SUITE_TICKET_SECONDS - Math.floor(age / 1000))
      }
      yield* engine.put(suite.suiteId, WeComSuite.suiteTicket, issued)
    })

  // The corp a stored install's temporary code installed: a record of its own kind under the suite,
  // which the engine does not serve, written once the permanent code is stored.
  const installedCorp = (suite: SuiteCredentials, authCode: string) =>
    Effect.map(
      store.get({ appId: suite.suiteId as string as SuiteOwnerId, kind: installKind(authCode) }),
      Option.flatMap((record) => record.retired === true ? Option.none() : Option.some(record.value))
    )

  // The permanent code, then the record saying which corp the temporary code installed.
  const storeGrant = (suite: SuiteCredentials, authCode: string, granted: PermanentCode) =>
    Effect.gen(function*() {
      const owner = WeComSuite.corpOwner(suite.suiteId, granted.corpId)
      agents.delete(owner)
      yield* engine.put(owner, WeComSuite.permanentCode, {
        value: granted.permanentCode,
        expiresInSeconds: WeComSuite.PERMANENT_CODE_SECONDS
      })
      const now = yield* Clock.currentTimeMillis
      yield* store.set(
        new TokenRecord({
          appId: suite.suiteId as string as SuiteOwnerId,
          kind: installKind(authCode),
          value: granted.corpId,
          mode: "stable",
          fetchedAt: now,
          expiresAt: now + AUTH_CODE_MILLIS,
          refreshAt: now + AUTH_CODE_MILLIS,
          generation: 1
        })
      )
      unstored.delete(authCode)
      yield* Effect.logInfo("suite installed; permanent code stored").pipe(Effect.annotateLogs({ app: owner }))
      return granted.corpId as string
    })

  // Retries the write of a grant the store refused, 0.25 s doubling to 10 s, until its temporary code's
  // 10 minutes end (WeCom has given up on the push by then).
  const keepStoring = (suite: SuiteCredentials, authCode: string, granted: PermanentCode, until: number) =>
    Effect.gen(function*() {
      const left = until - (yield* Clock.currentTimeMillis)
      // The push's retry may store it first (and take it off the list): then there is nothing left to do.
      yield* Effect.suspend(() => unstored.has(authCode) ? storeGrant(suite, authCode, granted) : Effect.void).pipe(
        Effect.retry(
          Schedule.exponential(Duration.millis(250)).pipe(
            Schedule.union(Schedule.spaced(Duration.seconds(10))),
            Schedule.upTo(Duration.millis(Math.max(0, left)))
          )
        ),
        Effect.catchAll((error) =>
          Effect.logError("permanent code lost: the store refused it for 10 minutes; the corp must install again")
            .pipe(Effect.annotateLogs({ app: WeComSuite.corpOwner(suite.suiteId, granted.corpId), error: error._tag }))
        ),
        Effect.ensuring(Effect.sync(() => unstored.delete(authCode)))
      )
    })

  const acceptCode = (suite: SuiteCredentials, authCode: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [code, { until }] of unstored) if (now >= until) unstored.delete(code)
      // Exchanged here, its write refused: the background retry has it; this push waits for the store.
      const held = unstored.get(authCode)?.grant
      if (held !== undefined) return yield* storeGrant(suite, authCode, held)
      // Stored already (by this replica, another one or before a restart): WeCom's retry of an answered push.
      const installed = yield* installedCorp(suite, authCode)
      if (Option.isSome(installed)) return installed.value
      // One exchange in the group: a process exchanging the code holds a short claim (a failed exchange
      // may leave the code unspent, and WeCom's retry should try it again), one that exchanged it a
      // claim for the code's 10 minutes.
      const claim = `suite-install:${suite.suiteId}:${codeHash(authCode)}`
      const exchanged = yield* store.isClaimed(`${claim}:exchanged`)
      if (exchanged || !(yield* store.claim(`${claim}:exchanging`, EXCHANGE_CLAIM_MILLIS))) {
        return yield* new StoreError({
          operation: "set",
          detail: "another process exchanged this install's temporary code and has not stored its permanent code yet"
        })
      }
      const granted = yield* withSuiteToken(suite, (token) => api.fetchPermanentCode(suite.suiteId, token, authCode))
      yield* Effect.ignore(store.claim(`${claim}:exchanged`, AUTH_CODE_MILLIS))
      return yield* storeGrant(suite, authCode, granted).pipe(
        Effect.tapError(() =>
          Effect.gen(function*() {
            const until = now + AUTH_CODE_MILLIS
            unstored.set(authCode, { grant: granted, until })
            yield* Effect.forkDaemon(keepStoring(suite, authCode, granted, until))
          })
        )
      )
    })

  const acceptCancel = (suite: SuiteCredentials, corpId: CorpId, createdAt: number) =>
    Effect.gen(function*() {
      const owner = WeComSuite.corpOwner(suite.suiteId, corpId)
      agents.delete(owner)
      const code = Option.getOrUndefined(yield* store.get({ appId: owner, kind: WeComSuite.permanentCode }))
      // TimeStamp is whole seconds: a permanent code stored after `createdAt + 1 s` is a later install.
      if (code !== undefined && code.retired !== true && code.fetchedAt >= createdAt + 1_000) {
        return yield* Effect.logInfo("cancel_auth ignored: the corp installed the app again after it").pipe(
          Effect.annotateLogs({ app: owner })
        )
      }
      yield* engine.retire(owner)
      yield* Effect.logInfo("suite uninstalled; corp retired").pipe(Effect.annotateLogs({ app: owner }))
    })

  return WeComSuiteToken.of({
    suites: config.suites.map((suite) => suite.suiteId as string),
    credentials: (suiteId) => Option.fromNullable(byId.get(suiteId)),
    provider: provider?.corpId,
    suiteToken: (suiteId) =>
      Effect.flatMap(suiteOf(suiteId), (suite) => engine.get(suite.suiteId, WeComSuite.suiteToken)),
    providerToken: provider === undefined
      ? Effect.fail(new UnknownApp({ appId: "provider: set WECOM_PROVIDER" }))
      : engine.get(provider.corpId, WeComSuite.providerToken),
    preAuthCode: (suiteId, options = {}) =>
      Effect.gen(function*() {
        const suite = yield* suiteOf(suiteId)
        const code = yield* withSuiteToken(suite, (token) => api.createPreAuthCode(suite.suiteId, token))
        if (options.appIds !== undefined || options.authType !== undefined) {
          yield* withSuiteToken(suite, (token) => api.setSessionInfo(suite.suiteId, token, code.value, options))
        }
        const page = options.redirectUri === undefined ? undefined : `${INSTALL_PAGE}?${new URLSearchParams({
          suite_id: suite.suiteId,
          pre_auth_code: code.value,
          redirect_uri: options.redirectUri,
          state: options.state ?? ""
        })}`
        return {
          preAuthCode: code.value,
          expiresInSeconds: code.expiresInSeconds,
          ...(page === undefined ? {} : { installUrl: page })
        }
      }),
    corps: (suiteId, { cursor, limit }) =>
      Effect.gen(function*() {
        const suite = yield* suiteOf(suiteId)
        const page = yield* ownerPage(engine, {
          prefix: `${suite.suiteId}:`,
          kind: WeComSuite.corpToken,
          cursor,
          size: Math.max(1, Math.min(limit, 500))
        })
        const corps = page.entries.map(({ id, ...entry }): CorpEntry => ({ corpId: id, ...entry }))
        return page.nextCursor === undefined ? { corps } : { corps, nextCursor: page.nextCursor }
      }),
    corpToken: corpKind(WeComSuite.corpToken),
    refreshCorpToken: (suiteId, corpId, staleToken) =>
      Effect.flatMap(ownerOf(suiteId, corpId), (owner) => engine.refresh(owner, staleToken, WeComSuite.corpToken)),
    jsapiTicket: corpKind(WeComSuite.corpJsapiTicket),
    agentTicket: corpKind(WeComSuite.corpAgentTicket),
    jsSdkConfig: (suiteId, corpId, url) =>
      Effect.gen(function*() {
        yield* pageUrl(url)
        const suite = yield* suiteOf(suiteId)
        const owner = yield* ownerOf(suiteId, corpId)
        const agent = yield* agentOf(suite, owner.slice(suite.suiteId.length + 1) as CorpId)
        return yield* signPage(corpId, agent === undefined ? "" : String(agent), url, {
          corp: engine.get(owner, WeComSuite.corpJsapiTicket),
          agent: engine.get(owner, WeComSuite.corpAgentTicket)
        })
      }),
    exchange: (suiteId, authCode) => Effect.flatMap(suiteOf(suiteId), (suite) => acceptCode(suite, authCode)),
    permanentCode: corpKind(WeComSuite.permanentCode),
    refreshSuiteToken: (suiteId, staleToken) =>
      Effect.flatMap(suiteOf(suiteId), (suite) => engine.refresh(suite.suiteId, staleToken, WeComSuite.suiteToken)),
    accept: (suiteId, event) =>
      Effect.flatMap(suiteOf(suiteId), (suite) => {
        const createdAt = event.TimeStamp * 1000
        switch (event.InfoType) {
          case "suite_ticket":
            return acceptTicket(suite, event.SuiteTicket, createdAt)
          case "create_auth":
          case "reset_permanent_code":
            return Effect.asVoid(acceptCode(suite, event.AuthCode))
          case "change_auth":
            // The corp changed what the app may see or which agents run it: nothing stored changes.
            return Effect.sync(() => agents.delete(WeComSuite.corpOwner(suite.suiteId, event.AuthCorpId)))
          case "cancel_auth":
            return acceptCancel(suite, event.AuthCorpId, createdAt)
        }
      }),
    acceptOnce: (suiteId, pushId, windowMillis, accept) =>
      Effect.flatMap(
        suiteOf(suiteId),
        (suite) => PushMessage.acceptOnce(store, `push:${suite.suiteId}:${pushId}`, windowMillis, accept)
      )
  })
})

// How long WeCom's temporary code (AuthCode) is valid.
const AUTH_CODE_MILLIS = 10 * 60 * 1000

// Longer than an exchange can take (the suite token and the exchange, each within the upstream timeout).
const EXCHANGE_CLAIM_MILLIS = 60_000

// A temporary code as store keys name it: a digest, so the code itself is in no key.
const codeHash = (authCode: string) => createHash("sha256").update(authCode).digest("hex").slice(0, 32)
const installKind = (authCode: string) => `suite_install_${codeHash(authCode)}`

const unknown = (appId: string) => Effect.fail(new UnknownApp({ appId }))

/**
 * A server or program with no suite configured: every suite and corp is
 * unknown (`UnknownApp`, a 404 on the routes).
 *
 * @since 0.3.0
 * @category constructors
 */
export const none: WeComSuiteTokenShape = WeComSuiteToken.of({
  suites: [],
  credentials: () => Option.none(),
  provider: undefined,
  suiteToken: unknown,
  providerToken: unknown("provider: set WECOM_PROVIDER"),
  preAuthCode: unknown,
  corps: unknown,
  corpToken: unknown,
  refreshCorpToken: unknown,
  jsapiTicket: unknown,
  agentTicket: unknown,
  jsSdkConfig: unknown,
  exchange: unknown,
  permanentCode: unknown,
  refreshSuiteToken: unknown,
  accept: unknown,
  acceptOnce: unknown
})

/**
 * `none` as a layer: for an engine that runs no suite family, so that what
 * serves every family (the server) finds every family's service.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerNone: Layer.Layer<WeComSuiteToken> = Layer.succeed(WeComSuiteToken, none)

/**
 * `WeComSuiteToken` over the `TokenEngine` in context (e.g. the server's
 * engine, which runs every family together).
 *
 * @since 0.3.0
 * @category layers
 */
export const layerView: Layer.Layer<
  WeComSuiteToken,
  never,
  TokenEngine | TokenStore | WeComSuiteApi | WeComSuiteConfig
> = Layer.effect(WeComSuiteToken, make)
