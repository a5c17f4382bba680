import { ConfigError, Either } from "effect"

// WeChat's and WeCom's rules for the two push settings (third-party platform
// and service-provider consoles): the token is 3-32 letters and digits, the
// key 43 letters and digits.
/** The message check token (消息校验Token / Token) that signs pushes. */
export const MESSAGE_TOKEN = /^[A-Za-z0-9]{3,32}$/
/** The EncodingAESKey (消息加解密Key) pushes are encrypted with. */
export const ENCODING_AES_KEY = /^[A-Za-z0-9]{43}$/

/** A config error that names the variable first, as every message of these parsers does. */
export const invalid = (name: string, message: string): ConfigError.ConfigError =>
  ConfigError.InvalidData([name], `${name}: ${message}`)

/**
 * Parses a comma-separated credentials variable (`WECHAT_APPS`, `WECOM_APPS`,
 * …) entry by entry. `parseEntry` reads one trimmed entry and answers what is
 * wrong with it, without the secret; the message is then prefixed with the
 * entry's position, so an operator finds the entry without the error ever
 * quoting what the entry holds. Two entries with the same `keyOf` are refused:
 * which secret wins would otherwise depend on the order.
 */
export const parseList = <A>(
  name: string,
  raw: string,
  parseEntry: (entry: string) => Either.Either<A, string>,
  keyOf: (parsed: A) => string
): Either.Either<ReadonlyArray<A>, ConfigError.ConfigError> => {
  const parsed: Array<A> = []
  const seen = new Set<string>()
  for (const [index, entry] of raw.split(",").map((part) => part.trim()).entries()) {
    const position = `entry ${index + 1}`
    const result = parseEntry(entry)
    if (Either.isLeft(result)) return Either.left(invalid(name, `${position}${result.left}`))
    const key = keyOf(result.right)
    if (seen.has(key)) return Either.left(invalid(name, `${position}: ${key} appears twice`))
    seen.add(key)
    parsed.push(result.right)
  }
  return Either.right(parsed)
}
