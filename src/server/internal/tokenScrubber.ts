/**
 * Masks access tokens in WeChat's answer as it streams: any content type,
 * any size, a token split across any number of chunks. WeChat echoes request
 * details (the URL, query included) in some `errmsg`s, `openapi/rid/get`
 * hands back the query of an earlier call (made with a token since
 * replaced, which WeChat honours for 5 more minutes), and a download's bytes
 * are whatever was uploaded: the proxy cannot know which answers hold a
 * token, so it looks in all of them, for two things:
 *
 * - the tokens the call used, as they are and percent-encoded;
 * - whatever follows `access_token=` (or its escaped `=`), up to 512
 *   characters of a token's alphabet: the value of any token in a URL,
 *   whichever token it was.
 *
 * Each is masked by as many `*` as it has bytes, so an answer keeps its
 * length (its `Content-Length` stays true, a binary file its offsets).
 *
 * The cost is linear in the answer: each chunk is searched once per pattern
 * with `Buffer.indexOf` (native code), and the only bytes held back between
 * chunks are the last `keep`, where a match may begin whose end has not
 * arrived yet. Nothing else is buffered.
 */
import { Transform } from "node:stream"

const MASK = 0x2a // "*"

// WeChat reserves 512 characters for a token.
const LONGEST_VALUE = 512

const MARKERS = ["access_token=", "access_token%3D", "access_token%3d"].map((marker) => Buffer.from(marker))

// Letters, digits, `_`, `-`, `.`, `~`, `%` (an escape), `*` (masked already).
const VALUE_BYTE = new Uint8Array(256)
for (const byte of Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~%*")) {
  VALUE_BYTE[byte] = 1
}

/** Finds and masks tokens in bytes that arrive in pieces. */
export interface Scrubber {
  /** The bytes of `chunk` (and of the chunks before) that can be let through now, masked, in order. */
  readonly push: (chunk: Buffer) => ReadonlyArray<Buffer>
  /** What is still held back, masked: the answer's last bytes. */
  readonly end: () => ReadonlyArray<Buffer>
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

/**
 * What to mask in `data`, as triples: where the match begins (a token, or
 * the `access_token=` before a value), and the start and end of the bytes
 * to mask. Overlapping matches are all found: they are searched in the bytes
 * as they came, never in bytes already masked.
 */
const find = (data: Buffer, patterns: ReadonlyArray<Buffer>): Array<number> => {
  const found: Array<number> = []
  for (const pattern of patterns) {
    for (let at = data.indexOf(pattern); at !== -1; at = data.indexOf(pattern, at + 1)) {
      found.push(at, at, at + pattern.length)
    }
  }
  for (const marker of MARKERS) {
    for (let at = data.indexOf(marker); at !== -1; at = data.indexOf(marker, at + 1)) {
      const start = at + marker.length
      const limit = Math.min(data.length, start + LONGEST_VALUE)
      let end = start
      while (end < limit && VALUE_BYTE[data[end]!] === 1) end++
      if (end > start) found.push(at, start, end)
    }
  }
  return found
}

/**
 * `bytes` with the ranges of `found` masked, where `bytes` sits at `offset`
 * of the ranges' coordinates: `bytes` itself when none falls in it, else a
 * copy (the caller's buffer is never written).
 */
const apply = (bytes: Buffer, found: ReadonlyArray<number>, offset = 0): Buffer => {
  let copy: Buffer | undefined
  for (let i = 0; i < found.length; i += 3) {
    const start = Math.max(0, found[i + 1]! - offset)
    const end = Math.min(bytes.length, found[i + 2]! - offset)
    if (start < end) (copy ??= Buffer.from(bytes)).fill(MASK, start, end)
  }
  return copy ?? bytes
}

/**
 * A scrubber of `secrets` (and of every `access_token=` value).
 */
export const make = (secrets: ReadonlyArray<string>): Scrubber => {
  const patterns = patternsOf(secrets)
  // Enough that a match beginning before the cut ends before it, a value (at most 512) included.
  const keep = Math.max(
    ...patterns.map((pattern) => pattern.length - 1),
    ...MARKERS.map((marker) => marker.length + LONGEST_VALUE)
  )
  // The last bytes seen, as they came, and what to mask in them of matches
  // that began in bytes let through already (those that begin in `pending`
  // are found again with the next chunk).
  let pending: Buffer = EMPTY
  let carried: Array<number> = []
  return {
    push: (input) => {
      // Positions count from the start of `pending`, `chunk` following it. A
      // chunk is never copied whole (a copy of each cost more than every
      // search in it, measured): what begins in `pending` is searched for in
      // `pending` and the chunk's first `keep` bytes, the rest in the chunk.
      let before = pending
      let chunk = input
      if (before.length > 0 && chunk.length < keep) {
        chunk = Buffer.concat([before, chunk])
        before = EMPTY
      }
      const offset = before.length
      const found = offset === 0 ? find(chunk, patterns) : [
        ...find(Buffer.concat([before, chunk.subarray(0, keep)]), patterns).filter((_, i, all) =>
          all[i - (i % 3)]! < offset
        ),
        ...find(chunk, patterns).map((at) => at + offset)
      ]
      const all = carried.length === 0 ? found : [...carried, ...found]
      const cut = Math.max(0, offset + chunk.length - keep)
      pending = chunk.subarray(cut - offset)
      carried = []
      const now: Array<number> = []
      for (let i = 0; i < all.length; i += 3) {
        const [begins, start, end] = [all[i]!, all[i + 1]!, all[i + 2]!]
        if (begins >= cut) continue
        if (start < cut) now.push(begins, start, Math.min(end, cut))
        // Marked as begun before any cut (-1): masked whatever the next cut.
        if (end > cut) carried.push(-1, Math.max(0, start - cut), end - cut)
      }
      const out = apply(chunk.subarray(0, cut - offset), now, offset)
      return offset === 0 ? [out] : [apply(before, now), out]
    },
    end: () => {
      const rest = apply(pending, [...carried, ...find(pending, patterns)])
      pending = EMPTY
      carried = []
      return [rest]
    }
  }
}

/**
 * `bytes`, whole, with `secrets` (and every `access_token=` value) masked.
 */
export const whole = (bytes: Uint8Array, secrets: ReadonlyArray<string>): Buffer => {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  return apply(buffer, find(buffer, patternsOf(secrets)))
}

/**
 * `value` (a header value) with `secrets` (and every `access_token=` value) masked.
 */
export const text = (value: string, secrets: ReadonlyArray<string>): string => {
  const bytes = Buffer.from(value, "latin1")
  const scrubbed = apply(bytes, find(bytes, patternsOf(secrets)))
  return scrubbed === bytes ? value : scrubbed.toString("latin1")
}

/**
 * A stream that lets bytes through with `secrets` (and every `access_token=` value) masked.
 */
export const stream = (secrets: ReadonlyArray<string>): Transform => {
  const scrubber = make(secrets)
  const forward = (stream: Transform, pieces: ReadonlyArray<Buffer>) => {
    for (const piece of pieces) if (piece.length > 0) stream.push(piece)
  }
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      forward(this, scrubber.push(chunk))
      done()
    },
    flush(done) {
      forward(this, scrubber.end())
      done()
    }
  })
}
