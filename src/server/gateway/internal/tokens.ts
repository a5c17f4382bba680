/**
 * The token endpoints, answered by the gateway itself: a client key where
 * WeChat expects the app secret gets a gateway token, never WeChat's token,
 * and nothing is fetched from WeChat for it.
 *
 * - `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`
 * - `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`:
 *   `force_refresh` never forces WeChat (its 20 forced refreshes a day are
 *   every replica's, and one SDK's refresh would kill the token every other
 *   caller holds). The answer is a gateway token like any other; when the
 *   real token behind it is dead, the next forwarded call finds out
 *   (40001/40014/42001) and compare-and-refreshes it once for everyone.
 * - WeCom `GET /cgi-bin/gettoken?corpid=&corpsecret=`: the key stands for
 *   the corp's app it is scoped to; a key that may use several apps of the
 *   corp names one as `corpsecret=AGENTID:CLIENT_KEY`.
 *
 * A wrong key: WeChat's 40125 (WeCom's 40001). A right key for an app the
 * server does not serve, or not to this key: 40013, as for an unknown appid,
 * so a key tells nothing about the apps it may not use.
 *
 * @internal
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Answers from "./answers.js"
import * as GatewayToken from "./gatewayToken.js"
import type { Keys } from "./keys.js"

/** @internal */
export interface Issued {
  readonly response: HttpServerResponse.HttpServerResponse
  readonly ok: boolean
}

const refused = (errcode: number, errmsg: string): Issued => ({ response: Answers.error(errcode, errmsg), ok: false })

/**
 * The answer to `cgi-bin/token` or `cgi-bin/stable_token`, read from their fields.
 *
 * @internal
 */
export const app = (
  fields: { readonly grantType: unknown; readonly appId: unknown; readonly secret: unknown },
  options: { readonly keys: Keys; readonly known: (appId: string) => boolean; readonly nowSeconds: number }
): Issued => {
  const { appId, grantType, secret } = fields
  if (grantType !== "client_credential") return refused(40002, "invalid grant_type")
  if (typeof appId !== "string" || appId === "") return refused(41002, "appid missing")
  if (typeof secret !== "string" || secret === "") return refused(41004, "appsecret missing")
  const key = options.keys.match(secret)
  if (key === undefined) return refused(40125, "invalid appsecret")
  if (!options.known(appId) || !options.keys.allows(key, appId)) return refused(40013, "invalid appid")
  return {
    response: Answers.json({
      access_token: options.keys.tokens.issue(key, "app", appId, options.nowSeconds),
      expires_in: GatewayToken.LIFETIME_SECONDS
    }),
    ok: true
  }
}

/**
 * The answer to WeCom's `cgi-bin/gettoken`; `owners` are the WeCom apps the
 * server serves, as `corpid/agent`.
 *
 * @internal
 */
export const weCom = (
  query: URLSearchParams,
  options: { readonly keys: Keys; readonly owners: ReadonlyArray<string>; readonly nowSeconds: number }
): Issued => {
  const corpId = query.get("corpid") ?? ""
  const presented = query.get("corpsecret") ?? ""
  if (corpId === "") return refused(41002, "corpid missing")
  if (presented === "") return refused(41004, "corpsecret missing")
  let key = options.keys.match(presented)
  let agent: string | undefined
  const colon = presented.indexOf(":")
  // A key holding a ":" matched whole above; only otherwise is it `AGENTID:KEY`.
  if (key === undefined && colon > 0) {
    agent = presented.slice(0, colon)
    key = options.keys.match(presented.slice(colon + 1))
  }
  if (key === undefined) return refused(40001, "invalid credential: corpsecret is not a client key of this server")
  const usable = options.owners.filter((owner) => owner.startsWith(`${corpId}/`) && options.keys.allows(key, owner))
  if (usable.length === 0) return refused(40013, "invalid corpid")
  const owner = agent === undefined
    ? (usable.length === 1 ? usable[0] : undefined)
    : usable.find((candidate) => candidate === `${corpId}/${agent}`)
  if (owner === undefined) {
    return refused(
      40056,
      agent === undefined
        ? "invalid agentid: this key may use several apps of the corp; send corpsecret as AGENTID:CLIENT_KEY"
        : "invalid agentid"
    )
  }
  return {
    response: Answers.json({
      errcode: 0,
      errmsg: "ok",
      access_token: options.keys.tokens.issue(key, "wecom", owner, options.nowSeconds),
      expires_in: GatewayToken.LIFETIME_SECONDS
    }),
    ok: true
  }
}
