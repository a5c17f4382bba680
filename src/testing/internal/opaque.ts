/**
 * Opaque token and ticket strings shaped like WeChat's.
 *
 * @internal
 */
import { Effect, Random } from "effect"

// Real access tokens and tickets use exactly these 64 characters.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/** Real tokens are about 150 characters today. */
export const LENGTH = 150

// WeChat asks callers to reserve 512 characters, so anything longer cannot be one of its tokens.
const WELL_FORMED = /^[A-Za-z0-9_-]{1,512}$/

/** True when `value` could be a WeChat token at all; otherwise WeChat answers 40014. */
export const isWellFormed = (value: string): boolean => WELL_FORMED.test(value)

// Each draw yields five 6-bit characters: a 2,000-call quota test draws
// 2,000 tokens, and one draw per character would dominate its run time.
const CHARS_PER_DRAW = 5

const charsOf = (draw: number): string => {
  let chars = ""
  for (let i = 0; i < CHARS_PER_DRAW; i++) chars += ALPHABET[(draw >> (6 * i)) & 63]
  return chars
}

/** A fresh random string; drawn from Effect `Random`, so a test can seed it. */
export const draw: Effect.Effect<string> = Effect.map(
  Effect.replicateEffect(Random.nextIntBetween(0, 2 ** (6 * CHARS_PER_DRAW)), LENGTH / CHARS_PER_DRAW),
  (draws) => draws.map(charsOf).join("")
)
