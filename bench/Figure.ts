/**
 * One measured figure: what `npm run bench` prints as a table row and writes
 * to `bench/results.json`.
 */
export interface Figure {
  readonly scenario: string
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The goal in words, e.g. `= 1` or `≥ 0.30`; absent for a figure shown only for comparison. */
  readonly goal?: string
  readonly met?: boolean
  /** The command that reproduces this line alone. */
  readonly reproduce: string
}

// The ids the emulator and the engine accept: "wx" and 16 lowercase hex characters.
export const appIdOf = (index: number): string => `wx${index.toString(16).padStart(16, "0")}`

export const APP = appIdOf(1)
export const SECRET = "bench-secret-0123456789"
export const CLIENT_KEY = "bench-client-key-0123456789"

// Real WeChat answers a token request in tens of milliseconds; the emulator
// answers at once unless told to wait. Without this a "herd" would find the
// first fetch already finished.
export const UPSTREAM_LATENCY = "50 millis"
