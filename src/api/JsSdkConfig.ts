/**
 * The JS-SDK page configurations the server answers and the library signs,
 * and the error of a page URL that cannot be signed: schemas only, so that
 * the contract and a client derived from it load nothing else.
 *
 * @since 0.3.0
 */
import { Schema } from "effect"

/**
 * The page URL handed to `config` is not one a JS-SDK page can have.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPageUrl extends Schema.TaggedError<InvalidPageUrl>()("InvalidPageUrl", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `the page URL ${JSON.stringify(truncate(this.url))} cannot be signed: ${this.reason}; ` +
      `send the full address of the page that calls wx.config, e.g. location.href.split("#")[0]`
  }
}

const truncate = (text: string): string => text.length > 120 ? `${text.slice(0, 120)}…` : text

/**
 * Seconds since the epoch, as the JS-SDK signs them.
 *
 * @since 0.2.0
 * @category schemas
 */
export const UnixSeconds = Schema.Int.annotations({
  identifier: "UnixSeconds",
  title: "UnixSeconds",
  description: "Seconds since 1970-01-01T00:00:00Z"
})

/**
 * What every JS-SDK configuration carries besides whom it is for: the
 * signed timestamp, the nonce and the signature.
 *
 * @since 0.2.0
 * @category schemas
 */
export const signedFields = {
  /** The same value that was signed. */
  timestamp: UnixSeconds,
  nonceStr: Schema.String,
  signature: Schema.String
}

/**
 * What a page passes to `wx.config` besides `jsApiList`: the one schema the
 * library, the server's answer and its OpenAPI document share.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsSdkConfig = Schema.Struct({ appId: Schema.String, ...signedFields }).annotations({
  identifier: "JsSdkConfig"
})

/**
 * @since 0.1.0
 * @category models
 */
export type JsSdkConfig = typeof JsSdkConfig.Type

/**
 * What a page passes to `wx.agentConfig` besides `jsApiList`: signed with the agent ticket.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AgentConfig = Schema.Struct({ corpid: Schema.String, agentid: Schema.String, ...signedFields })
  .annotations({ identifier: "WeComAgentConfig" })

/**
 * @since 0.2.0
 * @category models
 */
export type AgentConfig = typeof AgentConfig.Type

/**
 * Both signed configurations of a page: `config` (corp ticket, `appId` =
 * corpid) and, for an app with an AgentId, `agentConfig` (agent ticket).
 *
 * @since 0.2.0
 * @category schemas
 */
export const WeComJsSdkConfig = Schema.Struct({
  config: JsSdkConfig,
  agentConfig: Schema.optional(AgentConfig)
}).annotations({ identifier: "WeComJsSdkConfig" })

/**
 * @since 0.2.0
 * @category models
 */
export type WeComJsSdkConfig = typeof WeComJsSdkConfig.Type
