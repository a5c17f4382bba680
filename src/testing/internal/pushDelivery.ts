/**
 * How WeChat and WeCom deliver an event push: POST it until the receiver
 * answers `success`, three attempts of 5 s at most, then give up. Shared by
 * the third-party platform's and the suites' emulator parts.
 *
 * @internal
 */
import { Duration, Effect, Either, Redacted } from "effect"
import * as MessageCrypto from "../../MessageCrypto.js"
import type { PushRecord, PushRequest, PushTransport } from "../WeChatEmulator.js"

const PUSH_TIMEOUT = Duration.seconds(5)
// The newest pushes a receiver's log keeps, for tests to read.
const PUSH_LOG_SIZE = 100

/** @internal */
export const PUSH_ATTEMPTS = 3

/** The delivery counters a part keeps per receiver. */
export interface PushCounts {
  pushesSent: number
  pushesDelivered: number
  pushesFailed?: number
  pushesAbandoned: number
}

/** @internal */
export type Delivery =
  | { readonly delivered: true; readonly attempts: number }
  | { readonly delivered: false; readonly attempts: number; readonly failure: string }

const describe = (failure: Either.Either<{ readonly status: number; readonly body: string }, unknown>) =>
  Either.match(failure, {
    onLeft: (error) => `no answer: ${error instanceof Error ? error.message : String(error)}`,
    onRight: ({ body, status }) => `answered ${status} ${JSON.stringify(body.slice(0, 200))}`
  })

/** Delivers `request` over `transport`, counting each attempt into `counts`. */
export const deliver = (transport: PushTransport, request: PushRequest, counts: PushCounts): Effect.Effect<Delivery> =>
  Effect.gen(function*() {
    let failure = ""
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt++) {
      counts.pushesSent++
      const answer = yield* transport(request).pipe(
        Effect.timeoutFail({ duration: PUSH_TIMEOUT, onTimeout: () => new Error("no answer within 5 s") }),
        Effect.either
      )
      if (Either.isRight(answer) && answer.right.status === 200 && answer.right.body === "success") {
        counts.pushesDelivered++
        return { delivered: true, attempts: attempt }
      }
      if (counts.pushesFailed !== undefined) counts.pushesFailed++
      failure = describe(answer)
    }
    counts.pushesAbandoned++
    return { delivered: false, attempts: PUSH_ATTEMPTS, failure }
  })

/** The crypto of a receiver's pushes, encrypted for `receiveId` (a component's app id, a suite's id). */
export const cryptoFor = (
  what: string,
  registration: { readonly messageToken: string; readonly encodingAesKey: string; readonly receiveId: string }
): MessageCrypto.MessageCrypto =>
  Either.getOrThrowWith(
    MessageCrypto.make({
      token: Redacted.make(registration.messageToken),
      encodingAesKey: Redacted.make(registration.encodingAesKey),
      receiveId: registration.receiveId
    }),
    (error) => new Error(`${what} ${registration.receiveId}: ${error.message}`)
  )

/** One XML element, CDATA-wrapped as WeChat and WeCom write strings; ids, codes and tickets never contain "]]>". */
export const element = (name: string, value: string | number) =>
  typeof value === "number" ? `<${name}>${value}</${name}>` : `<${name}><![CDATA[${value}]]></${name}>`

/** Keeps `entry` in a receiver's push log, the newest `PUSH_LOG_SIZE` only. */
export const remember = (receiver: { log: Array<PushRecord> }, entry: PushRecord): void => {
  receiver.log.push(entry)
  if (receiver.log.length > PUSH_LOG_SIZE) receiver.log = receiver.log.slice(-PUSH_LOG_SIZE)
}

/** `url` with the signed query appended (a push URL may carry a query of its own). */
export const withQuery = (url: string, query: URLSearchParams): string =>
  `${url}${url.includes("?") ? "&" : "?"}${query}`

/**
 * The gate of a part's ticket schedule: open while some receiver has
 * somewhere to push (`update` after any change), so the schedule sleeps only
 * then, and a `TestClock` jump of years with nowhere to push costs nothing
 * instead of one wake-up per 10 minutes.
 */
export const pushGate = (anyReceiver: () => boolean) => {
  const latch = Effect.unsafeMakeLatch(false)
  return {
    whenOpen: latch.whenOpen,
    update: () => anyReceiver() ? latch.unsafeOpen() : latch.unsafeClose()
  }
}
