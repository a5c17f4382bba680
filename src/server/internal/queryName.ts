/**
 * A query name as WeChat, or a server in front of it, might read it: any
 * case (`ACCESS_TOKEN`), any escape layer (`access%255Ftoken`), padding a
 * lenient parser drops (`access_token[]`, `access_token%00`). What the proxy
 * and the gateway compare with `access_token` before they add their own
 * token: the caller's next to theirs is two tokens in one call, and which
 * one WeChat uses is its choice.
 *
 * @internal
 */
export const readAs = (name: string): string => {
  let decoded = name
  for (let layer = 0; layer < 4 && decoded.includes("%"); layer++) {
    try {
      decoded = decodeURIComponent(decoded)
    } catch {
      break
    }
  }
  return decoded.toLowerCase().replace(/[^a-z0-9_]/g, "")
}
