/**
 * The client keys as the gateway reads them: a key presented where WeChat
 * expects an app secret, and the gateway tokens issued to the keys.
 *
 * @internal
 */
import { Redacted } from "effect"
import type * as ClientAuth from "../../ClientAuth.js"
import { perConnection } from "../../ClientAuth.js"
import type { ClientKey } from "../../ServerConfig.js"
import * as GatewayToken from "./gatewayToken.js"

/** @internal */
export interface Keys {
  /** The key `presented` is (the server's one check, constant time), if any. */
  readonly match: (presented: string) => ClientKey | undefined
  /** Whether `key` may use `owner` (an app id, a WeCom app as `corpid/agent`, a component's authorizer by its component). */
  readonly allows: (key: ClientKey, owner: string) => boolean
  readonly tokens: GatewayToken.Keyring
  /**
   * What a token presented on `connection` says, whenever issued (the caller
   * checks it is current): an SDK sends the same token on every call of a
   * keep-alive connection, and its MAC is checked there once.
   */
  readonly tokenOn: (connection: object, token: string) => GatewayToken.Claims | undefined
}

/** @internal */
export const make = (
  auth: ClientAuth.Check,
  clientKeys: ReadonlyArray<ClientKey | Redacted.Redacted<string>>
): Keys => {
  const tokens = GatewayToken.keyring(clientKeys.map((entry) => Redacted.isRedacted(entry) ? { key: entry } : entry))
  return {
    match: auth.match,
    allows: auth.allows,
    tokens,
    tokenOn: perConnection(tokens.open, (claims) => claims !== undefined)
  }
}
