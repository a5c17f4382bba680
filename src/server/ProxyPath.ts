/**
 * Which upstream paths the proxy forwards, and why no spelling of a path that
 * mints credentials gets past it.
 *
 * The grammar. WeChat's API paths are segments of letters, digits, `_` and
 * `-` (`cgi-bin/message/custom/send`), and that is the only spelling the
 * proxy forwards:
 *
 * 1. Percent escapes are decoded once. A malformed escape, an escaped `%`
 *    (a second layer of encoding: a server that decodes twice reads
 *    `%2574oken` as `token`), an escaped `/` or `\` (a separator to some
 *    servers, a character to others) are refused.
 * 2. The path is split at `/`; empty segments (`//`, a trailing `/`) and `.`
 *    are dropped, `..` removes the segment before it (never above the root).
 * 3. Every segment left must be plain: `[A-Za-z0-9_-]+`. The path forwarded
 *    is these segments joined by `/`, nothing else: WeChat never sees a
 *    spelling other than the one checked.
 * 4. The refused paths are compared without regard to case.
 *
 * Why step 3 is strict: the front servers of an upstream fold spellings the
 * proxy cannot see. IIS and Windows drop trailing dots and spaces
 * (`token.`), Windows answers 8.3 names (`STABLE~1`), Tomcat and Jetty cut
 * `;params`, Spring matches `token.json` as `token`, C servers stop at a NUL.
 * Guessing each of them is a losing game; refusing every segment outside the
 * plain grammar is not. Such a path is refused as `path_not_allowed` when its
 * plain reading (each segment cut at its first character outside the
 * grammar, `cgi-bin./token.` read as `cgi-bin/token`) is a refused path, and
 * as `invalid_path` otherwise. `PROXY_ALLOW` prefixes go through the same
 * steps, and cover only what they cover in that form.
 *
 * @since 0.3.0
 */

/**
 * Paths (lower case, no leading `/`) that mint, read or reset credentials:
 * forwarding them would hand out what the proxy exists to keep, or burn a
 * quota every app shares. An entry ending in `/` or `*` refuses everything
 * under (or starting with) it; the others refuse the path itself.
 *
 * @since 0.3.0
 * @category constants
 */
export const REFUSED: ReadonlyArray<string> = [
  "cgi-bin/token",
  "cgi-bin/stable_token",
  "cgi-bin/gettoken",
  "cgi-bin/get_jsapi_ticket",
  "cgi-bin/ticket/",
  "cgi-bin/component/",
  // WeCom's service-provider calls: suite and corp tokens, permanent codes, pre-auth codes.
  "cgi-bin/service/",
  "cgi-bin/clear_quota*"
]

/**
 * Why a path is not forwarded: `invalid_path` (a spelling no WeChat API has,
 * answered `400`) or `path_not_allowed` (`403`).
 *
 * @since 0.3.0
 * @category models
 */
export type Refusal =
  | { readonly code: "invalid_path"; readonly reason: string }
  | { readonly code: "path_not_allowed"; readonly reason: string }

// A segment of WeChat's own grammar; see the module's comment.
const PLAIN = /^[A-Za-z0-9_-]+$/
// The plain start of a segment: how a folding front server may read it.
const PLAIN_START = /^[A-Za-z0-9_-]*/

const ESCAPE = /%([0-9A-Fa-f]{2})/g
const MALFORMED_ESCAPE = /%(?![0-9A-Fa-f]{2})/
// Escaped, these are read differently by different servers (see the module's comment).
const AMBIGUOUS_ESCAPES = new Set(["/", "\\", "%"])

const invalid = (reason: string): Refusal => ({ code: "invalid_path", reason })

/** `raw` with its escapes decoded once, or the refusal. */
const decode = (raw: string): string | Refusal => {
  if (MALFORMED_ESCAPE.test(raw)) return invalid("the path has a malformed percent escape")
  let ambiguous = false
  const decoded = raw.replace(ESCAPE, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16))
    if (AMBIGUOUS_ESCAPES.has(char)) ambiguous = true
    return char
  })
  return ambiguous ? invalid("the path escapes a /, \\ or %; write WeChat's path as it is") : decoded
}

/**
 * The path as checked and forwarded (no leading `/`), or why it is refused.
 * `raw` is the part of the request path after `/wechat/`, as received
 * (percent escapes included); the steps are the module's.
 *
 * @since 0.3.0
 * @category utils
 */
export const normalize = (raw: string): { readonly path: string } | Refusal => {
  const decoded = decode(raw)
  if (typeof decoded !== "string") return decoded
  const segments: Array<string> = []
  for (const segment of decoded.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") {
      if (segments.pop() === undefined) return invalid("the path climbs above the API root")
      continue
    }
    segments.push(segment)
  }
  if (segments.length === 0) return invalid("name the WeChat API after /wechat/, e.g. cgi-bin/message/custom/send")
  if (segments.every((segment) => PLAIN.test(segment))) return { path: segments.join("/") }
  const plainReading = segments.map((segment) => PLAIN_START.exec(segment)![0]).join("/")
  return refused(plainReading.toLowerCase())
    ? {
      code: "path_not_allowed",
      reason: `a spelling of ${plainReading} (which mints or resets credentials); the proxy never forwards it`
    }
    : invalid("a path segment may hold only letters, digits, _ and -")
}

const refusedBy = (path: string, rule: string): boolean =>
  rule.endsWith("*")
    ? path.startsWith(rule.slice(0, -1))
    : rule.endsWith("/")
    ? path === rule.slice(0, -1) || path.startsWith(rule)
    : path === rule

const refused = (lower: string): boolean => REFUSED.some((rule) => refusedBy(lower, rule))

/**
 * Whether `prefix` (a `PROXY_ALLOW` entry) covers `path`: the path itself or
 * anything under it, segment by segment (`cgi-bin/message` covers
 * `cgi-bin/message/custom/send`, not `cgi-bin/messages`). Case-insensitive,
 * like the refusals; the prefix is read in the form paths are checked in
 * (`normalize`), and one outside the grammar covers nothing.
 *
 * @since 0.3.0
 * @category utils
 */
export const covers = (prefix: string, path: string): boolean => {
  // An empty prefix covers everything, as it always has; a prefix outside the grammar covers nothing.
  if (prefix.replace(/\//g, "") === "") return true
  const normalized = normalize(prefix)
  if (!("path" in normalized)) return false
  const rule = normalized.path.toLowerCase()
  const target = path.toLowerCase()
  return target === rule || target.startsWith(`${rule}/`)
}

/**
 * The decision for a normalized path: `undefined` to forward it, else the
 * refusal. Compared in lower case, so `CGI-BIN/Token` is `cgi-bin/token`.
 *
 * @since 0.3.0
 * @category utils
 */
export const check = (path: string, allow: ReadonlyArray<string> | undefined): Refusal | undefined => {
  if (refused(path.toLowerCase())) {
    return { code: "path_not_allowed", reason: `${path} mints or resets credentials; the proxy never forwards it` }
  }
  if (allow !== undefined && !allow.some((prefix) => covers(prefix, path))) {
    return { code: "path_not_allowed", reason: `${path} is not under any PROXY_ALLOW prefix` }
  }
  return undefined
}

/**
 * `raw` normalized and checked: the path to forward, or the refusal.
 *
 * @since 0.3.0
 * @category utils
 */
export const resolve = (
  raw: string,
  allow: ReadonlyArray<string> | undefined
): { readonly path: string } | Refusal => {
  const normalized = normalize(raw)
  if (!("path" in normalized)) return normalized
  return check(normalized.path, allow) ?? normalized
}

/**
 * The label a path is counted under in metrics: its first two segments
 * (`cgi-bin/message`), so the label set stays small whatever callers send.
 *
 * @since 0.3.0
 * @category utils
 */
export const prefixOf = (path: string): string => path.toLowerCase().split("/").slice(0, 2).join("/")
