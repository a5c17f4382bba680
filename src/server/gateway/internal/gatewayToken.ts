/**
 * The gateway token: what the gateway hands an SDK in place of WeChat's
 * access token. It is not a WeChat token and carries none: it names the
 * owner it was issued for, the client key it was issued to and when, signed
 * with a key derived from that client key.
 *
 * `gw1.<key id>.<kind>.<issued at, base 36 seconds>.<owner, base64url>.<HMAC-SHA256, base64url>`
 *
 * - Any replica with the same `CLIENT_KEYS` checks it without shared state:
 *   the key id (a fingerprint of the client key, not a secret) says which
 *   key to check it with, so a replica need not try them all.
 * - The real token behind it may be refreshed any number of times: the
 *   gateway token stays good, so an SDK's cached token never goes dead.
 * - Removing the client key revokes every token issued to it: its key id
 *   then finds nothing.
 * - A leaked gateway token is useless outside the gateway: WeChat never saw it.
 *
 * @internal
 */
import { Redacted } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import type { ClientKey } from "../../ServerConfig.js"

/**
 * What the token stands for: an official account or mini program, a WeCom
 * app (`corpid/agent`), a third-party platform's component token (its
 * component app id), or one of its authorizers (`component:authorizer`); a
 * WeCom suite's token (its suite id), a corp that installed it
 * (`suite:corp`), the service provider's token (its corp id).
 */
export type Kind = "app" | "wecom" | "component" | "authorizer" | "suite" | "suite_corp" | "provider"

const KIND_CODES: Record<Kind, string> = {
  app: "a",
  wecom: "w",
  component: "c",
  authorizer: "z",
  suite: "s",
  suite_corp: "k",
  provider: "p"
}
const KINDS: ReadonlyMap<string, Kind> = new Map(
  Object.entries(KIND_CODES).map(([kind, code]) => [code, kind as Kind])
)

const VERSION = "gw1"

/** `expires_in` answered with every gateway token: WeChat's own token lifetime, which SDKs expect. */
export const LIFETIME_SECONDS = 7200

/**
 * Accepted this long past `LIFETIME_SECONDS`, and this long before its
 * issue time: replicas' clocks differ by seconds, and an SDK that reads
 * `expires_in` after a slow answer (or rounds it) may use its token a little
 * late. Five minutes, as WeChat keeps a replaced token alive.
 */
export const GRACE_SECONDS = 300

/** WeChat reserves 512 characters for a token; SDKs and their stores may hold no more. */
export const MAX_LENGTH = 512

const base64url = (bytes: Buffer): string => bytes.toString("base64url")

/** A client key's material: its fingerprint, and the key the tokens issued to it are signed with. */
interface Signer {
  readonly entry: ClientKey
  readonly id: string
  readonly macKey: Buffer
}

const signerOf = (entry: ClientKey): Signer => {
  const key = Redacted.value(entry.key)
  // Both derived from the client key with a label each: neither reveals the
  // key, nor the other. Eight bytes of fingerprint tell keys apart; they
  // are not what makes a token hard to forge (the 32-byte MAC is).
  return {
    entry,
    id: base64url(createHmac("sha256", key).update("effect-wechat-token gateway key id").digest().subarray(0, 8)),
    macKey: createHmac("sha256", key).update("effect-wechat-token gateway token v1").digest()
  }
}

const mac = (signer: Signer, signed: string): Buffer => createHmac("sha256", signer.macKey).update(signed).digest()

/** What a valid token says. */
export interface Claims {
  readonly key: ClientKey
  readonly kind: Kind
  readonly owner: string
  /** When it was issued, in seconds since the epoch. */
  readonly issuedAt: number
}

/**
 * Whether a token issued at `claims.issuedAt` is good at `nowSeconds`.
 *
 * @internal
 */
export const isCurrent = (claims: Claims, nowSeconds: number): boolean =>
  claims.issuedAt <= nowSeconds + GRACE_SECONDS && nowSeconds <= claims.issuedAt + LIFETIME_SECONDS + GRACE_SECONDS

/**
 * @internal
 */
export interface Keyring {
  /** A token for `owner` issued to `key` (an entry of the keyring's keys) at `nowSeconds`. */
  readonly issue: (key: ClientKey, kind: Kind, owner: string, nowSeconds: number) => string
  /** What `token` says, when it is one of ours and signed by a current key, whenever it was issued. */
  readonly open: (token: string) => Claims | undefined
  /** What `token` says, when it is one of ours, signed by a current key, and not expired at `nowSeconds`. */
  readonly verify: (token: string, nowSeconds: number) => Claims | undefined
}

/**
 * The tokens of `keys`.
 *
 * @internal
 */
export const keyring = (keys: ReadonlyArray<ClientKey>): Keyring => {
  const signers = keys.map(signerOf)
  const byEntry = new Map(signers.map((signer) => [signer.entry, signer]))
  const byId = new Map(signers.map((signer) => [signer.id, signer]))
  const open = (token: string): Claims | undefined => {
    if (token.length > MAX_LENGTH) return undefined
    const parts = token.split(".")
    if (parts.length !== 6 || parts[0] !== VERSION) return undefined
    const [, id, kindCode, issued, owner, presented] = parts as [string, string, string, string, string, string]
    const signer = byId.get(id)
    const kind = KINDS.get(kindCode)
    if (signer === undefined || kind === undefined || !/^[0-9a-z]{1,10}$/.test(issued)) return undefined
    // Compared as text, in constant time: one spelling per MAC (a lenient
    // base64 decoder would take several). Its length is public (43 characters).
    const expected = Buffer.from(base64url(mac(signer, token.slice(0, token.length - presented.length - 1))))
    const given = Buffer.from(presented)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    return {
      key: signer.entry,
      kind,
      owner: Buffer.from(owner, "base64url").toString("utf8"),
      issuedAt: parseInt(issued, 36)
    }
  }
  return {
    issue: (key, kind, owner, nowSeconds) => {
      const signer = byEntry.get(key) ?? signerOf(key)
      const signed = [
        VERSION,
        signer.id,
        KIND_CODES[kind],
        Math.floor(nowSeconds).toString(36),
        base64url(Buffer.from(owner, "utf8"))
      ].join(".")
      return `${signed}.${base64url(mac(signer, signed))}`
    },
    open,
    verify: (token, nowSeconds) => {
      const claims = open(token)
      return claims !== undefined && isCurrent(claims, nowSeconds) ? claims : undefined
    }
  }
}
