/**
 * The `WeComToken` service as a tag and a shape only: what a client of the
 * central server provides without loading the engine that `WeComToken`'s
 * own layers build.
 */
import { Context, type Effect } from "effect"
import type { AccessTokenError, Credential } from "../AccessToken.js"
import type { InvalidPageUrl, WeComJsSdkConfig } from "../api/JsSdkConfig.js"

export interface WeComTokenShape {
  /** The current token of the app `agent` of `corpId`; waits on one shared fetch only when none is valid. */
  readonly get: (corpId: string, agent: string) => Effect.Effect<Credential, AccessTokenError>
  /**
   * Compare-and-refresh: a new token only while `staleToken` is still the
   * current one (or, without it, always); otherwise the current one.
   */
  readonly refresh: (corpId: string, agent: string, staleToken?: string) => Effect.Effect<Credential, AccessTokenError>
  /** The corp's jsapi ticket (`wx.config`), the same for every app of the corp. */
  readonly jsapiTicket: (corpId: string, agent: string) => Effect.Effect<Credential, AccessTokenError>
  /** The agent's ticket (`wx.agentConfig`); an app without an AgentId has none (`UnknownApp`). */
  readonly agentTicket: (corpId: string, agent: string) => Effect.Effect<Credential, AccessTokenError>
  /** Signs `url` for both `wx.config` and (for an app with an AgentId) `wx.agentConfig`. */
  readonly jsSdkConfig: (
    corpId: string,
    agent: string,
    url: string
  ) => Effect.Effect<WeComJsSdkConfig, AccessTokenError | InvalidPageUrl>
}

export class WeComToken extends Context.Tag("effect-wechat-token/WeComToken")<WeComToken, WeComTokenShape>() {}
