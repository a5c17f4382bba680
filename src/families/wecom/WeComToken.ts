/**
 * The service business code asks for WeCom (企业微信) credentials: the access
 * token of a (corpid, agent), the corp's jsapi ticket, the agent's ticket,
 * and the signed `wx.config` / `wx.agentConfig` of a page. Backed by the
 * local engine (`layer`, `layerView`) or by a central server (`RemoteTokenLayer`).
 *
 * @since 0.2.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Clock, type ConfigError, Duration, Effect, Layer, Option, Schema } from "effect"
import type { AccessTokenError, Credential } from "../../AccessToken.js"
import type { InvalidPageUrl, WeComJsSdkConfig } from "../../api/JsSdkConfig.js"
import { RuntimeOwners } from "../../internal/runtimeOwners.js"
import { WeComToken, type WeComTokenShape } from "../../internal/weComToken.js"
import { nonce, pageUrl, signature } from "../../JsSdk.js"
import { isAgentId, WeComAgentId } from "../../OwnerId.js"
import * as StoreSpec from "../../StoreSpec.js"
import * as TokenConfig from "../../TokenConfig.js"
import { type EngineOptions, layerFamilies, TokenEngine } from "../../TokenEngine.js"
import type { StoreError, TokenStore } from "../../TokenStore.js"
import { UnknownApp } from "../../WeChatError.js"
import * as WeCom from "./WeCom.js"
import * as WeComApi from "./WeComApi.js"
import type { WeComConfig } from "./WeComConfig.js"
import * as WeComConfigModule from "./WeComConfig.js"

/**
 * @since 0.2.0
 * @category models
 */
export {
  /**
   * What a page passes to `wx.agentConfig` besides `jsApiList`: signed with the agent ticket.
   *
   * @since 0.2.0
   */
  AgentConfig,
  /**
   * Both signed configurations of a page: `config` (corp ticket, `appId` =
   * corpid) and, for an app with an AgentId, `agentConfig` (agent ticket).
   *
   * @since 0.2.0
   */
  WeComJsSdkConfig
} from "../../api/JsSdkConfig.js"

/**
 * @since 0.2.0
 * @category tags
 */
export {
  /**
   * The service's tag: provided by this module's layers over the engine, or
   * by `RemoteTokenLayer.layerWeCom` over a central server.
   *
   * @since 0.2.0
   */
  WeComToken,
  /** @since 0.2.0 */
  type WeComTokenShape
} from "../../internal/weComToken.js"

const isWeComOwner = Schema.is(WeComAgentId)

/**
 * Signs `url` with the two tickets `tickets` answers: what every `WeComToken`
 * implementation does with the tickets it has.
 *
 * @since 0.2.0
 * @category signing
 */
export const signPage = (
  corpId: string,
  agent: string,
  url: string,
  tickets: {
    readonly corp: Effect.Effect<Credential, AccessTokenError>
    readonly agent: Effect.Effect<Credential, AccessTokenError>
  }
): Effect.Effect<WeComJsSdkConfig, AccessTokenError | InvalidPageUrl> =>
  Effect.gen(function*() {
    const page = yield* pageUrl(url)
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const corpTicket = yield* tickets.corp
    const nonceStr = yield* nonce
    const config = {
      appId: corpId,
      timestamp,
      nonceStr,
      signature: signature({ jsapiTicket: corpTicket.value, nonceStr, timestamp, url: page })
    }
    if (!isAgentId(agent)) return { config }
    const agentTicket = yield* tickets.agent
    const agentNonce = yield* nonce
    return {
      config,
      agentConfig: {
        corpid: corpId,
        agentid: agent,
        timestamp,
        nonceStr: agentNonce,
        signature: signature({ jsapiTicket: agentTicket.value, nonceStr: agentNonce, timestamp, url: page })
      }
    }
  })

/**
 * The `WeComToken` view of an engine that runs the WeCom families.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: Effect.Effect<WeComTokenShape, never, TokenEngine> = Effect.gen(function*() {
  const engine = yield* TokenEngine
  // Apps added at run time (the admin API's), when the registry is followed here.
  const runtime = Option.getOrUndefined(yield* Effect.serviceOption(RuntimeOwners))?.agents
  const known = (): ReadonlyArray<string> => runtime === undefined ? engine.apps : [...engine.apps, ...runtime.keys()]
  // Ids reach here unvalidated (HTTP paths): only a configured or added WeCom app is looked up.
  const ownerOf = (corpId: string, agent: string): Effect.Effect<WeComAgentId, UnknownApp> => {
    const owner = `${corpId}/${agent}`
    return isWeComOwner(owner) && (engine.apps.includes(owner) || runtime?.has(owner) === true)
      ? Effect.succeed(owner)
      : Effect.fail(new UnknownApp({ appId: owner }))
  }
  // One corp ticket per corp, held by the app `WeCom.corpTicketHolder` picks.
  const holderOf = (corpId: string): WeComAgentId | undefined => {
    const owners = known().filter((owner): owner is WeComAgentId =>
      isWeComOwner(owner) && owner.startsWith(`${corpId}/`)
    )
    return owners.find((owner) => isAgentId(owner.slice(corpId.length + 1))) ?? owners[0]
  }
  const jsapiTicket = (corpId: string, agent: string) =>
    Effect.flatMap(ownerOf(corpId, agent), () => engine.get(holderOf(corpId)!, WeCom.jsapiTicket))
  const agentTicket = (corpId: string, agent: string) =>
    Effect.flatMap(ownerOf(corpId, agent), (owner) => engine.get(owner, WeCom.agentTicket))
  return WeComToken.of({
    get: (corpId, agent) => Effect.flatMap(ownerOf(corpId, agent), (owner) => engine.get(owner, WeCom.accessToken)),
    refresh: (corpId, agent, staleToken) =>
      Effect.flatMap(ownerOf(corpId, agent), (owner) => engine.refresh(owner, staleToken, WeCom.accessToken)),
    jsapiTicket,
    agentTicket,
    jsSdkConfig: (corpId, agent, url) =>
      signPage(corpId, agent, url, { corp: jsapiTicket(corpId, agent), agent: agentTicket(corpId, agent) })
  })
})

/**
 * `WeComToken` over the `TokenEngine` in context (e.g. the server's engine,
 * which runs the official-account and WeCom families together).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerView: Layer.Layer<WeComToken, never, TokenEngine> = Layer.effect(WeComToken, make)

/**
 * An engine running the WeCom families only, and the `WeComToken` view of it.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options?: EngineOptions
): Layer.Layer<WeComToken | TokenEngine, never, WeComConfig | WeComApi.WeComApi | TokenStore> =>
  layerView.pipe(Layer.provideMerge(layerFamilies(WeCom.families, options)))

/**
 * `WeComToken` (and the engine behind it) from the environment:
 * `WECOM_APPS`, `WECOM_API_BASE_URL`, `UPSTREAM_TIMEOUT_SECONDS`,
 * `REFRESH_MARGIN_SECONDS`, `TOKEN_STORE`; WeCom is called over `fetch`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  WeComToken | TokenEngine,
  ConfigError.ConfigError | StoreError
> = Layer.unwrapEffect(
  Effect.map(Effect.all([WeComConfigModule.config, TokenConfig.settings]), ([config, settings]) =>
    layer({
      leaseMillis: Duration.toMillis(settings.upstreamTimeout) + 5_000,
      refreshMargin: settings.refreshMargin
    }).pipe(
      Layer.provide(WeComApi.layer({ baseUrl: config.apiBaseUrl, timeout: settings.upstreamTimeout })),
      Layer.provide(Layer.merge(WeComConfigModule.layer(config), StoreSpec.layerConfig)),
      Layer.provide(FetchHttpClient.layer)
    ))
)
