/**
 * The sign-in form's limit on wrong keys, per client address: a token bucket
 * of `burst` attempts refilled at one per `refillMillis`. Only a refused key
 * spends one, so an operator typing a key right is never counted. An address
 * whose bucket is empty is answered `429` before its key is even compared:
 * a flood from one address cannot keep guessing, and costs the server no
 * more than reading the form. Other addresses are untouched, and nothing
 * ever waits: the limit refuses, it never slows an answer.
 */
import { Clock, Effect } from "effect"

export interface Settings {
  /** Wrong keys an address may present in a row before it is refused. */
  readonly burst: number
  /** One more attempt comes back after this long. */
  readonly refillMillis: number
}

export const DEFAULT: Settings = { burst: 10, refillMillis: 6_000 }

/** Addresses remembered at most; the fullest buckets are forgotten first (they refuse nothing). */
const MAX_ADDRESSES = 10_000

interface Bucket {
  tokens: number
  at: number
}

export interface SignInLimit {
  /** `undefined` when `address` may try a key now; else the seconds until it may. */
  readonly retryAfter: (address: string) => Effect.Effect<number | undefined>
  /** `address` presented a key that may not sign in. */
  readonly refused: (address: string) => Effect.Effect<void>
}

export const make = (settings: Settings = DEFAULT): SignInLimit => {
  const buckets = new Map<string, Bucket>()
  const level = (address: string, now: number): Bucket => {
    const held = buckets.get(address)
    if (held === undefined) return { tokens: settings.burst, at: now }
    const refilled = Math.floor((now - held.at) / settings.refillMillis)
    if (refilled <= 0) return held
    const tokens = Math.min(settings.burst, held.tokens + refilled)
    return { tokens, at: tokens === settings.burst ? now : held.at + refilled * settings.refillMillis }
  }
  const forgetFull = (now: number) => {
    for (const address of buckets.keys()) {
      if (buckets.size < MAX_ADDRESSES) return
      if (level(address, now).tokens === settings.burst) buckets.delete(address)
    }
    // Every remembered address is refusing: the oldest entry goes.
    const oldest = buckets.keys().next()
    if (buckets.size >= MAX_ADDRESSES && !oldest.done) buckets.delete(oldest.value)
  }
  return {
    retryAfter: (address) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const bucket = level(address, now)
        return bucket.tokens > 0 ? undefined : Math.max(1, Math.ceil((bucket.at + settings.refillMillis - now) / 1_000))
      }),
    refused: (address) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const bucket = level(address, now)
        if (!buckets.has(address)) forgetFull(now)
        buckets.set(address, { tokens: Math.max(0, bucket.tokens - 1), at: bucket.at })
      })
  }
}
