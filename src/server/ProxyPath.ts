/**
 * Which upstream paths the proxy forwards: the path a caller wrote is first
 * brought to the one spelling it is checked and forwarded under (percent
 * escapes decoded, `.` and `..` resolved, empty segments dropped), so no
 * spelling of `cgi-bin/token` gets past the refusals. Then the paths that
 * mint or reset credentials are refused, and `PROXY_ALLOW` (when set) narrows
 * the rest.
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

// WeChat's API paths are letters, digits, `_`, `-` and `.`; anything else
// (`;`, `\`, `%`, control characters, non-ASCII) is how path confusion
// between two servers starts, and no API needs it.
const SEGMENT = /^[A-Za-z0-9_.~-]+$/

const invalid = (reason: string): Refusal => ({ code: "invalid_path", reason })

/**
 * The path as checked and forwarded (no leading `/`), or why it is refused
 * as `invalid_path`. `raw` is the part of the request path after `/wechat/`,
 * as received (percent escapes included). Escapes are decoded once (a `%2f`
 * becomes a separator, a `%252e` stays refused for its `%`), `.` segments
 * are dropped, `..` removes the segment before it (and may not climb above
 * the API root), and empty segments (`//`, a trailing `/`) are dropped.
 *
 * @since 0.3.0
 * @category utils
 */
export const normalize = (raw: string): { readonly path: string } | Refusal => {
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    return invalid("the path has a malformed percent escape")
  }
  const segments: Array<string> = []
  for (const segment of decoded.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") {
      if (segments.pop() === undefined) return invalid("the path climbs above the API root")
      continue
    }
    if (!SEGMENT.test(segment)) {
      return invalid("a path segment may hold only letters, digits, _, -, . and ~")
    }
    segments.push(segment)
  }
  if (segments.length === 0) return invalid("name the WeChat API after /wechat/, e.g. cgi-bin/message/custom/send")
  return { path: segments.join("/") }
}

const refusedBy = (path: string, rule: string): boolean =>
  rule.endsWith("*")
    ? path.startsWith(rule.slice(0, -1))
    : rule.endsWith("/")
    ? path === rule.slice(0, -1) || path.startsWith(rule)
    : path === rule

/**
 * Whether `prefix` (a `PROXY_ALLOW` entry) covers `path`: the path itself or
 * anything under it, segment by segment (`cgi-bin/message` covers
 * `cgi-bin/message/custom/send`, not `cgi-bin/messages`). Case-insensitive,
 * like the refusals.
 *
 * @since 0.3.0
 * @category utils
 */
export const covers = (prefix: string, path: string): boolean => {
  const rule = prefix.toLowerCase().replace(/^\/+|\/+$/g, "")
  const target = path.toLowerCase()
  return rule === "" || target === rule || target.startsWith(`${rule}/`)
}

/**
 * The decision for a normalized path: `undefined` to forward it, else the
 * refusal. Compared in lower case, so `CGI-BIN/Token` is `cgi-bin/token`.
 *
 * @since 0.3.0
 * @category utils
 */
export const check = (path: string, allow: ReadonlyArray<string> | undefined): Refusal | undefined => {
  const lower = path.toLowerCase()
  if (REFUSED.some((rule) => refusedBy(lower, rule))) {
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
