/**
 * A simulated day on `TestClock`: 3 replicas of the engine on one store, 10
 * business clients polling them (every minute; every 10 minutes in the smoke run), in classic and in stable mode. Counts the
 * upstream fetches against ⌈86400 / (7200 − margin)⌉ and the share of client
 * requests answered with a token WeChat (the emulator) accepts at that moment.
 */
import {
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Fiber,
  Layer,
  Option,
  PubSub,
  Stream,
  TestClock,
  TestContext
} from "effect"
import { AccessToken } from "../src/AccessToken.js"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import type { TokenMode, TokenRecord } from "../src/Token.js"
import * as TokenConfig from "../src/TokenConfig.js"
import * as TokenLayer from "../src/TokenLayer.js"
import * as TokenStore from "../src/TokenStore.js"
import { APP, type Figure, SECRET } from "./Figure.js"

const DAY_SECONDS = 86_400
const TOKEN_SECONDS = 7_200
const MARGIN_SECONDS = 300
const REPLICAS = 3
const CLIENTS = 10
// Every TestClock step waits for all fibers to settle (a few real
// milliseconds), so the poll interval sets the run time: 60 s for the full
// run, 10 minutes for the CI smoke run.
export const POLL_SECONDS = 60
export const SMOKE_POLL_SECONDS = 600

export const LIMIT = Math.ceil(DAY_SECONDS / (TOKEN_SECONDS - MARGIN_SECONDS))

export interface DayCount {
  readonly fetches: number
  readonly requests: number
  readonly valid: number
}

// The replicas share one store with the Redis store's contract: compare-and-set
// by generation, an expiring lease, a feed of every write. It lives in memory
// because TestClock cannot drive a real redis-server's lease expiry; the
// memory store itself is per process (its lease always grants, its feed is
// empty), so replicas on it would each fetch at start-up.
const makeSharedStore = Effect.gen(function*() {
  const records = new Map<string, TokenRecord>()
  const leases = new Map<string, { readonly owner: symbol; readonly until: number }>()
  const feed = yield* PubSub.unbounded<TokenRecord>()
  return TokenStore.TokenStore.of({
    get: (key) => Effect.sync(() => Option.fromNullable(records.get(TokenStore.keyString(key)))),
    list: (kind) => Effect.sync(() => Array.from(records.values()).filter((record) => record.kind === kind)),
    set: (record) =>
      Effect.suspend(() => {
        const key = TokenStore.keyString(record)
        if (!TokenStore.isNewer(record, Option.fromNullable(records.get(key)))) return Effect.succeed(records.get(key)!)
        records.set(key, record)
        return Effect.as(PubSub.publish(feed, record), record)
      }),
    lease: (key, leaseMillis) => {
      const name = TokenStore.keyString(key)
      const owner = Symbol(name)
      return Effect.acquireRelease(
        Effect.map(Clock.currentTimeMillis, (now) => {
          const held = leases.get(name)
          if (held !== undefined && held.until > now) return false
          leases.set(name, { owner, until: now + leaseMillis })
          return true
        }),
        () => Effect.sync(() => leases.get(name)?.owner === owner && leases.delete(name))
      )
    },
    changes: Stream.fromPubSub(feed),
    healthy: Effect.succeed(true),
    ...TokenStore.claimsInMemory()
  })
})

export const simulate = (mode: TokenMode, pollSeconds: number): Effect.Effect<DayCount> =>
  Effect.gen(function*() {
    const emulator = yield* Emulator.make({ apps: [{ appId: APP, secret: SECRET }] })
    const store = Layer.succeed(TokenStore.TokenStore, yield* makeSharedStore)
    const replica = TokenLayer.layer({
      config: TokenConfig.layer({
        apps: [TokenConfig.app(APP, SECRET)],
        mode,
        refreshMargin: Duration.seconds(MARGIN_SECONDS),
        apiBaseUrl: "http://wechat.test"
      }),
      store,
      httpClient: Emulator.layerClient.pipe(Layer.provide(Layer.succeed(Emulator.WeChatEmulator, emulator)))
    })
    const replicas = yield* Effect.forEach(
      Array.from({ length: REPLICAS }),
      () => Effect.map(Layer.build(replica), Context.get(AccessToken))
    )
    let requests = 0
    let valid = 0
    for (let step = 0; step * pollSeconds < DAY_SECONDS; step++) {
      // All clients ask at once, client k of replica (k + step) mod 3: over
      // the day every client meets every replica. Forked, because a replica
      // waiting on another's lease polls the store on the (test) clock; a
      // token is checked when it is handed out.
      const polls = yield* Effect.forEach(Array.from({ length: CLIENTS }, (_, client) => client), (client) =>
        Effect.gen(function*() {
          const answer = yield* Effect.either(replicas[(client + step) % REPLICAS]!.get(APP))
          requests++
          if (Either.isRight(answer) && (yield* emulator.isValidToken(answer.right.value))) {
            valid++
          }
        }).pipe(Effect.fork))
      yield* TestClock.adjust(Duration.seconds(pollSeconds))
      yield* Fiber.joinAll(polls)
    }
    // The 24 h mark itself belongs to the next day.
    const stats = (yield* emulator.stats).apps[APP]
    const fetches = stats === undefined ? 0 : stats.classicCalls + stats.stableCalls
    return { fetches, requests, valid }
  }).pipe(Effect.scoped, Effect.provide(TestContext.TestContext))

const figures = (mode: TokenMode, count: DayCount, reproduce: string): ReadonlyArray<Figure> => {
  const share = (100 * count.valid) / count.requests
  return [
    {
      scenario: "simulated day",
      name: `${mode}: upstream fetches in 24 h (${REPLICAS} replicas, limit ⌈86400 / (7200 − ${MARGIN_SECONDS})⌉)`,
      value: count.fetches,
      unit: "fetches",
      goal: `= ${LIMIT}`,
      met: count.fetches === LIMIT,
      reproduce
    },
    {
      scenario: "simulated day",
      name: `${mode}: client requests answered with a valid token (${count.requests.toLocaleString("en")} requests)`,
      value: share,
      unit: "%",
      goal: "= 100 %",
      met: count.valid === count.requests,
      reproduce
    }
  ]
}

const runWith = (pollSeconds: number, reproduce: string): Effect.Effect<ReadonlyArray<Figure>> =>
  Effect.gen(function*() {
    const classic = yield* simulate("classic", pollSeconds)
    const stable = yield* simulate("stable", pollSeconds)
    return [...figures("classic", classic, reproduce), ...figures("stable", stable, reproduce)]
  })

export const run = runWith(POLL_SECONDS, "npm run bench -- day")

export const smoke = runWith(SMOKE_POLL_SECONDS, "npm run bench:smoke")
