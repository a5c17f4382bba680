/**
 * The third-party platform of the 100,000-credential bench, the same in the
 * bench and in the server process it starts, and the records a warm store
 * holds for it: the verify ticket, the component token and, per authorizer,
 * its refresh token and a valid access token.
 */
import * as AppId from "../src/AppId.js"
import * as Component from "../src/families/component/Component.js"
import * as ComponentConfig from "../src/families/component/ComponentConfig.js"
import { authorizer } from "../src/OwnerId.js"
import type * as Emulator from "../src/testing/WeChatEmulator.js"
import { TokenRecord } from "../src/Token.js"
import * as ComponentStack from "../test/support/componentStack.js"
import { appIdOf } from "./Figure.js"

export const COMPONENT = AppId.make(appIdOf(0xc0c0))

/** The tests' platform (secret, message token, AES key) under the bench's own app id. */
export const registration: Emulator.ComponentRegistration = {
  ...ComponentStack.registration,
  componentAppId: COMPONENT
}

/** What `WECHAT_COMPONENTS=component_appid:secret:token:key` would configure. */
export const credentials = ComponentConfig.component(
  COMPONENT,
  registration.secret,
  registration.messageToken,
  registration.encodingAesKey
)

/** One authorizer the emulator generated, with the refresh token it accepts. */
export interface BenchAuthorizer {
  readonly appId: string
  readonly refreshToken: string
}

const LIFETIME_MILLIS = 7_200_000
const MARGIN_MILLIS = 300_000
const REFRESH_TOKEN_MILLIS = Component.REFRESH_TOKEN_SECONDS * 1000

// A 150-character token, as WeChat's are; different per authorizer.
const tokenOf = (index: number) => `bench${index.toString(36).padStart(8, "0")}`.padEnd(150, "x")

const record = (fields: Omit<ConstructorParameters<typeof TokenRecord>[0], "generation">) =>
  new TokenRecord({ ...fields, generation: 1 })

/** The verify ticket WeChat pushed. */
export const ticketRecord = (ticket: string, now: number): TokenRecord =>
  record({
    appId: COMPONENT,
    kind: Component.verifyTicket,
    value: ticket,
    mode: "stable",
    fetchedAt: now,
    expiresAt: now + Component.VERIFY_TICKET_SECONDS * 1000,
    refreshAt: now + Component.VERIFY_TICKET_SECONDS * 1000 - MARGIN_MILLIS
  })

/** Each authorizer's refresh token, a durable input that admits it. */
export const refreshTokenRecords = (authorizers: ReadonlyArray<BenchAuthorizer>, now: number): Array<TokenRecord> =>
  authorizers.map((entry) =>
    record({
      appId: authorizer(COMPONENT, entry.appId as AppId.AppId),
      kind: Component.refreshToken,
      value: entry.refreshToken,
      mode: "stable",
      fetchedAt: now - 86_400_000,
      expiresAt: now - 86_400_000 + REFRESH_TOKEN_MILLIS,
      refreshAt: now - 86_400_000 + REFRESH_TOKEN_MILLIS - MARGIN_MILLIS
    })
  )

/**
 * What a store holds after a cold start of `authorizers`: the verify ticket
 * and each authorizer's refresh token (durable inputs), no token yet.
 */
export const inputRecords = (
  ticket: string,
  authorizers: ReadonlyArray<BenchAuthorizer>,
  now: number
): Array<TokenRecord> => [ticketRecord(ticket, now), ...refreshTokenRecords(authorizers, now)]

/** The valid component token of a warm store. */
export const componentTokenRecord = (now: number): TokenRecord =>
  warmToken(COMPONENT, Component.componentToken, `component${tokenOf(0)}`, now - 600_000)

const warmToken = (appId: TokenRecord["appId"], kind: string, value: string, fetchedAt: number) =>
  record({
    appId,
    kind,
    value,
    mode: "classic",
    fetchedAt,
    expiresAt: fetchedAt + LIFETIME_MILLIS,
    refreshAt: fetchedAt + LIFETIME_MILLIS - MARGIN_MILLIS
  })

/**
 * The valid access tokens of `authorizers`, the ones from `offset` on of
 * `total`, fetched over the last hour so each refreshes at its own time, as
 * a server that ran for a while would have stored them. In slices, a store
 * of 1,000,000 is written without holding every record at once.
 */
export const accessTokenRecords = (
  authorizers: ReadonlyArray<BenchAuthorizer>,
  now: number,
  offset = 0,
  total = authorizers.length
): Array<TokenRecord> =>
  authorizers.map((entry, index) =>
    warmToken(
      authorizer(COMPONENT, entry.appId as AppId.AppId),
      Component.authorizerToken,
      tokenOf(offset + index),
      now - Math.floor(((offset + index) / total) * 3_600_000)
    )
  )

/**
 * A warm store: the inputs, a valid component token, and a valid access
 * token per authorizer.
 */
export const warmRecords = (
  ticket: string,
  authorizers: ReadonlyArray<BenchAuthorizer>,
  now: number
): Array<TokenRecord> => [
  ...inputRecords(ticket, authorizers, now),
  componentTokenRecord(now),
  ...accessTokenRecords(authorizers, now)
]
