/**
 * Masks the tokens a proxied call used wherever they appear in WeChat's
 * answer, as the answer streams: any content type, any size, a token split
 * across any number of chunks. WeChat echoes request details (the URL, query
 * included) in some `errmsg`s, `openapi/rid/get` hands back the query of an
 * earlier call, and a download's bytes are whatever was uploaded: the proxy
 * cannot know which answers hold a token, so it looks in all of them.
 *
 * Each token is masked by as many `*` as it has bytes, so an answer keeps its
 * length (its `Content-Length` stays true, a binary file its offsets). A
 * token is looked for as sent (`access_token=` + the token percent-encoded)
 * and as itself; WeChat's tokens are letters, digits, `_` and `-`, for which
 * the two are the same.
 *
 * The cost is linear in the answer: each chunk is searched once per pattern
 * with `Buffer.indexOf` (native Boyer–Moore–Horspool), and the only bytes
 * held back between chunks are the last `longest - 1`, where a token may
 * begin whose end has not arrived yet. Nothing else is buffered.
 */
import { Transform } from "node:stream"

const MASK = 0x2a // "*"

/** Finds and masks `secrets` in bytes that arrive in pieces. */
export interface Scrubber {
  /** The bytes of `chunk` (and of the chunks before) that can be let through now, masked. */
  readonly push: (chunk: Buffer) => Buffer
  /** What is still held back, masked: the answer's last bytes. */
  readonly end: () => Buffer
}

const EMPTY = Buffer.alloc(0)

const patternsOf = (secrets: ReadonlyArray<string>): ReadonlyArray<Buffer> => {
  const patterns = new Map<string, Buffer>()
  for (const secret of secrets) {
    for (const spelling of [secret, encodeURIComponent(secret)]) {
      if (spelling !== "") patterns.set(spelling, Buffer.from(spelling, "utf8"))
    }
  }
  return [...patterns.values()]
}

/** Where the patterns occur in `data`: start and end pairs, overlapping ones included. */
const find = (data: Buffer, patterns: ReadonlyArray<Buffer>): Array<number> => {
  const ranges: Array<number> = []
  for (const pattern of patterns) {
    for (let at = data.indexOf(pattern); at !== -1; at = data.indexOf(pattern, at + 1)) {
      ranges.push(at, at + pattern.length)
    }
  }
  return ranges
}

/**
 * `bytes` with `ranges` masked: `bytes` itself when there is none, else a
 * copy (the caller's buffer is never written).
 */
const apply = (bytes: Buffer, ranges: ReadonlyArray<number>): Buffer => {
  if (ranges.length === 0) return bytes
  const copy = Buffer.from(bytes)
  for (let i = 0; i < ranges.length; i += 2) copy.fill(MASK, ranges[i]!, ranges[i + 1]!)
  return copy
}

/**
 * A scrubber of `secrets`. Occurrences are searched in the bytes as they
 * came, never in bytes already masked: a token that overlaps another (or
 * itself, `abcab` in `abcabcab`) is found and masked whole.
 */
export const make = (secrets: ReadonlyArray<string>): Scrubber => {
  const patterns = patternsOf(secrets)
  const keep = Math.max(0, ...patterns.map((pattern) => pattern.length - 1))
  // The last bytes seen, as they came, and the ends of the tokens that began in bytes already let through.
  let pending: Buffer = EMPTY
  let carried: Array<number> = []
  return {
    push: (chunk) => {
      const data = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      const found = find(data, patterns)
      const ranges = carried.length === 0 ? found : [...carried, ...found]
      // A token that ends in this data is found; one that may go on into the next chunk starts in the last `keep` bytes.
      const cut = Math.max(0, data.length - keep)
      pending = data.subarray(cut)
      carried = []
      for (let i = 0; i < ranges.length; i += 2) {
        // One that begins in `pending` is found again in the next data.
        if (ranges[i]! < cut && ranges[i + 1]! > cut) carried.push(0, ranges[i + 1]! - cut)
      }
      return apply(data.subarray(0, cut), ranges.map((at) => Math.min(at, cut)))
    },
    end: () => {
      const rest = apply(pending, [...carried, ...find(pending, patterns)])
      pending = EMPTY
      carried = []
      return rest
    }
  }
}

/**
 * `bytes`, whole, with `secrets` masked.
 */
export const whole = (bytes: Uint8Array, secrets: ReadonlyArray<string>): Buffer => {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  return apply(buffer, find(buffer, patternsOf(secrets)))
}

/**
 * `text` (a header value) with `secrets` masked.
 */
export const text = (value: string, secrets: ReadonlyArray<string>): string => {
  const bytes = Buffer.from(value, "latin1")
  const scrubbed = apply(bytes, find(bytes, patternsOf(secrets)))
  return scrubbed === bytes ? value : scrubbed.toString("latin1")
}

/**
 * A stream that lets bytes through with `secrets` masked.
 */
export const stream = (secrets: ReadonlyArray<string>): Transform => {
  const scrubber = make(secrets)
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const out = scrubber.push(chunk)
      done(null, out.length === 0 ? undefined : out)
    },
    flush(done) {
      const rest = scrubber.end()
      done(null, rest.length === 0 ? undefined : rest)
    }
  })
}
