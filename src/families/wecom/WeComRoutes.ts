/**
 * The routes of WeCom (企业微信) apps, per `corpid/agent`: the token,
 * compare-and-refresh, the corp's jsapi ticket, the agent's ticket and the
 * signed `wx.config` / `wx.agentConfig`, over `WeComToken`; and the proxy
 * target `/v1/wecom/{corpId}/agents/{agent}/wechat/{path}`.
 *
 * @since 0.3.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect } from "effect"
import { TokenServerApi } from "../../api/TokenServerApi.js"
import * as FamilyRoutes from "../../FamilyRoutes.js"
import { answer, pageUrlError, toApiError } from "../../internal/credentialAnswer.js"
import { WeComToken } from "../../internal/weComToken.js"
import * as OwnerId from "../../OwnerId.js"
import * as ProxyTarget from "../../ProxyTarget.js"
import { TokenEngine } from "../../TokenEngine.js"

const accessToken = (value: string) => ({ access_token: value })
const ticket = (value: string) => ({ ticket: value })

const WeComLive = HttpApiBuilder.group(TokenServerApi, "wecom", (handlers) =>
  Effect.map(WeComToken, (wecom) =>
    handlers
      .handle("accessToken", ({ path }) => answer(wecom.get(path.corpId, path.agent), accessToken))
      .handle(
        "refreshAccessToken",
        ({ path, payload }) => answer(wecom.refresh(path.corpId, path.agent, payload.stale_token), accessToken)
      )
      .handle("jsapiTicket", ({ path }) => answer(wecom.jsapiTicket(path.corpId, path.agent), ticket))
      .handle("agentTicket", ({ path }) => answer(wecom.agentTicket(path.corpId, path.agent), ticket))
      .handle("jsSdkConfig", ({ path, payload }) =>
        wecom.jsSdkConfig(path.corpId, path.agent, payload.url).pipe(
          Effect.mapError((error) =>
            error._tag === "InvalidPageUrl" ? pageUrlError(error, "wx.config / wx.agentConfig") : toApiError(error)
          )
        ))))

// An owner `corpid/agent` as its two parts.
const parts = (owner: string) => {
  const slash = owner.indexOf("/")
  return [owner.slice(0, slash), owner.slice(slash + 1)] as const
}

/**
 * WeCom apps: `/v1/wecom/{corpId}/agents/{agent}/…`, proxied to WeCom.
 *
 * @since 0.3.0
 * @category families
 */
export const routes = FamilyRoutes.make({
  name: "wecom",
  handlers: WeComLive,
  // Scoped as the app `corpid/agent`; a suite's corp routes name a corp too, but no agent (they are the suite's).
  scopeOf: (params) => params["agent"] === undefined ? undefined : `${params["corpId"] ?? ""}/${params["agent"]}`,
  proxy: (upstreams) =>
    Effect.gen(function*() {
      const tokens = yield* WeComToken
      // The WeCom apps the engine runs, as the proxy has always known them.
      const owners = (yield* TokenEngine).apps
      return ProxyTarget.make({
        group: TokenServerApi.groups.wecom,
        ownerOf: (params) => `${params["corpId"] ?? ""}/${params["agent"] ?? ""}`,
        known: (owner) => OwnerId.isWeCom(owner) && owners.some((configured) => configured === owner),
        baseUrl: upstreams.wecom,
        token: (owner) => tokens.get(...parts(owner)),
        replace: (owner, stale) => tokens.refresh(...parts(owner), stale)
      })
    })
})
