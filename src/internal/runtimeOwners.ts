/**
 * The owners added at run time (the credential registry's), as the families
 * read them: official-account apps, WeCom agents and third-party platforms. Each refresh looks its
 * owner up here, so a replaced secret is used from the next fetch on and a
 * removed owner is no longer admitted.
 */
import { Context } from "effect"
import type { ComponentCredentials } from "../families/component/ComponentConfig.js"
import type { WeComAppCredentials } from "../families/wecom/WeComConfig.js"
import type { AppCredentials } from "../TokenConfig.js"

export interface RuntimeOwnersShape {
  readonly apps: Map<string, AppCredentials>
  readonly agents: Map<string, WeComAppCredentials>
  readonly components: Map<string, ComponentCredentials>
}

/** Written only by whoever follows the registry; the families only read it. */
export class RuntimeOwners extends Context.Tag("effect-wechat-token/RuntimeOwners")<
  RuntimeOwners,
  RuntimeOwnersShape
>() {}
