/**
 * JS-SDK page configuration: the `wx.config({ appId, timestamp, nonceStr,
 * signature })` values a page needs, signed with the app's jsapi ticket as in
 * the JS-SDK documentation's appendix 1 (附录1-JS-SDK使用权限签名算法).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Either, Random, Schema } from "effect"
import { createHash } from "node:crypto"
import type { AccessTokenError } from "./AccessToken.js"
import { InvalidPageUrl, type JsSdkConfig } from "./api/JsSdkConfig.js"
import { TokenEngine } from "./TokenEngine.js"

/**
 * @since 0.1.0
 * @category errors
 */
export {
  /**
   * The page URL handed to `config` is not one a JS-SDK page can have.
   *
   * @since 0.1.0
   */
  InvalidPageUrl
} from "./api/JsSdkConfig.js"

/**
 * @since 0.2.0
 * @category schemas
 */
export {
  /**
   * What a page passes to `wx.config` besides `jsApiList`.
   *
   * @since 0.1.0
   */
  JsSdkConfig,
  /**
   * What every JS-SDK configuration carries besides whom it is for.
   *
   * @since 0.2.0
   */
  signedFields,
  /**
   * Seconds since the epoch, as the JS-SDK signs them.
   *
   * @since 0.2.0
   */
  UnixSeconds
} from "./api/JsSdkConfig.js"

// Browsers never put whitespace or control characters in `location.href`;
// such a string is a template or copy-paste mistake, not a page address.
// eslint-disable-next-line no-control-regex -- control characters are exactly what this pattern looks for
const UNSAFE_CHARACTERS = /[\u0000-\u0020\u007f]/

/**
 * Why `raw` is not an absolute http(s) URL, or `undefined` when it is one.
 */
const problemWith = (raw: string): string | undefined => {
  if (raw.length === 0) return "it is empty"
  if (UNSAFE_CHARACTERS.test(raw)) return "it contains whitespace or control characters"
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    return "it is not an absolute URL"
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `its scheme is ${parsed.protocol.replace(/:$/, "")}, not http or https`
  }
  if (parsed.hostname === "") return "it has no host"
  return undefined
}

/**
 * The address of a page that calls `wx.config`: an absolute http(s) URL. The
 * string is kept exactly as given (not normalised), because WeChat signs the
 * page's own `location.href`; `new URL(...).href` would for instance add a
 * `/` before the query and change the signature.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsSdkUrl = Schema.String.pipe(
  Schema.filter(
    (raw) => problemWith(raw) === undefined ? true : `an absolute http(s) page URL is expected: ${problemWith(raw)}`,
    {
      identifier: "JsSdkUrl",
      description: "the absolute http(s) URL of the page that calls wx.config; any #fragment is ignored"
    }
  ),
  Schema.brand("JsSdkUrl")
)

/**
 * @since 0.1.0
 * @category models
 */
export type JsSdkUrl = typeof JsSdkUrl.Type

/**
 * Validates a page URL, failing with an `InvalidPageUrl` that says what is wrong.
 *
 * @since 0.1.0
 * @category utils
 */
export const pageUrl = (raw: string): Either.Either<JsSdkUrl, InvalidPageUrl> => {
  const reason = problemWith(raw)
  return reason === undefined
    ? Either.right(raw as JsSdkUrl) // `problemWith` is exactly the schema's filter, so the brand holds.
    : Either.left(new InvalidPageUrl({ url: raw, reason }))
}

/**
 * The URL as WeChat signs it: everything before the first `#`.
 *
 * @since 0.1.0
 * @category utils
 */
export const withoutFragment = (url: string): string => {
  const hash = url.indexOf("#")
  return hash === -1 ? url : url.slice(0, hash)
}

/**
 * What the signature covers.
 *
 * @since 0.1.0
 * @category models
 */
export interface SignatureInput {
  readonly jsapiTicket: string
  readonly nonceStr: string
  /** Seconds since the epoch. */
  readonly timestamp: number
  readonly url: string
}

/**
 * The JS-SDK signature: the fields `jsapi_ticket`, `noncestr`, `timestamp`,
 * `url` sorted by name (already their order), joined as `k=v` with `&`, SHA-1
 * in lowercase hex. Values are used raw, not URL-encoded. Any `#fragment` is
 * removed from the URL first.
 *
 * @since 0.1.0
 * @category utils
 */
export const signature = (input: SignatureInput): string =>
  createHash("sha1")
    .update(
      `jsapi_ticket=${input.jsapiTicket}&noncestr=${input.nonceStr}&timestamp=${input.timestamp}&url=${
        withoutFragment(input.url)
      }`,
      "utf8"
    )
    .digest("hex")

const NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/**
 * Length of the nonces `config` draws; WeChat's own example uses 16.
 *
 * @since 0.1.0
 * @category constants
 */
export const NONCE_LENGTH = 16

/**
 * A nonce of `NONCE_LENGTH` characters from `[A-Za-z0-9]`, drawn with Effect `Random`.
 *
 * @since 0.1.0
 * @category utils
 */
export const nonce: Effect.Effect<string> = Effect.map(
  Effect.replicateEffect(Random.nextIntBetween(0, NONCE_ALPHABET.length), NONCE_LENGTH),
  (indices) => indices.map((index) => NONCE_ALPHABET[index]).join("")
)

/**
 * Signs `url` for `appId` with the app's current jsapi ticket (fetched, cached
 * and refreshed by the engine), a fresh nonce and the current time from `Clock`.
 *
 * @since 0.1.0
 * @category utils
 */
export const config = (
  appId: string,
  url: string
): Effect.Effect<JsSdkConfig, InvalidPageUrl | AccessTokenError, TokenEngine> =>
  Effect.gen(function*() {
    const page = yield* pageUrl(url)
    const engine = yield* TokenEngine
    const ticket = yield* engine.get(appId, "jsapi_ticket")
    const nonceStr = yield* nonce
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    return {
      appId,
      timestamp,
      nonceStr,
      signature: signature({ jsapiTicket: ticket.value, nonceStr, timestamp, url: page })
    }
  }).pipe(Effect.withSpan("JsSdk.config", { attributes: { appId } }))
