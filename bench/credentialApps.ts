/**
 * The apps of the 100,000-credential bench, the same in the bench and in
 * the server process it starts, and stored records for them (a warm store).
 */
import { TokenRecord } from "../src/Token.js"
import { appIdOf, SECRET } from "./Figure.js"

export interface BenchApp {
  readonly appId: string
  readonly secret: string
}

export const credentialApps = (count: number): ReadonlyArray<BenchApp> =>
  Array.from({ length: count }, (_, index) => ({ appId: appIdOf(index + 1), secret: `${SECRET}-${index}` }))

const LIFETIME_MILLIS = 7_200_000
const MARGIN_MILLIS = 300_000

// A 150-character token, as WeChat's are; different per app.
const tokenOf = (index: number) => `bench${index.toString(36).padStart(8, "0")}`.padEnd(150, "x")

/**
 * Valid access tokens for every app as a server would have stored them,
 * fetched over the last hour, each refreshing at its own time.
 */
export const warmRecords = (apps: ReadonlyArray<BenchApp>, now: number): ReadonlyArray<TokenRecord> =>
  apps.map((app, index) => {
    const fetchedAt = now - Math.floor((index / apps.length) * 3_600_000)
    return new TokenRecord({
      appId: app.appId as TokenRecord["appId"],
      kind: "access_token",
      value: tokenOf(index),
      mode: "classic",
      fetchedAt,
      expiresAt: fetchedAt + LIFETIME_MILLIS,
      refreshAt: fetchedAt + LIFETIME_MILLIS - MARGIN_MILLIS,
      generation: 1
    })
  })
