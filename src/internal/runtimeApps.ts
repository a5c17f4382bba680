/**
 * The official-account apps added at run time (the credential registry's),
 * as the official-account family reads them: each refresh looks its app up
 * here, so a replaced secret is used from the next fetch on and a removed
 * app is no longer admitted.
 */
import { Context } from "effect"
import type { AppCredentials } from "../TokenConfig.js"

/** Written only by whoever follows the registry; the family only reads it. */
export class RuntimeApps extends Context.Tag("effect-wechat-token/RuntimeApps")<
  RuntimeApps,
  Map<string, AppCredentials>
>() {}
