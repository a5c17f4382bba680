/**
 * The credential engine, composed of its parts under `./engine/`: the
 * owners and their cells, one scheduler for the whole engine, the share of
 * the refreshes this replica makes, the fetch (single-flight behind the
 * store's lease), durable puts, re-validation
 * against the store, and the status views. `TokenEngine` is its public face.
 *
 * @internal
 */
import { Clock, Duration, Effect, Option, type Scope } from "effect"
import type { AccessTokenError, Credential } from "../AccessToken.js"
import type { CredentialFamily } from "../CredentialFamily.js"
import * as RefreshPolicy from "../RefreshPolicy.js"
import type { CredentialKind } from "../Token.js"
import type { EngineOptions, TokenEngineShape } from "../TokenEngine.js"
import { TokenStore } from "../TokenStore.js"
import * as Cell from "./engine/cell.js"
import * as Durable from "./engine/durable.js"
import * as Fetch from "./engine/fetch.js"
import * as Issue from "./engine/issue.js"
import * as Job from "./engine/job.js"
import * as Owners from "./engine/owners.js"
import * as Revalidate from "./engine/revalidate.js"
import * as Scheduler from "./engine/scheduler.js"
import * as Shares from "./engine/shares.js"
import * as StartUp from "./engine/startUp.js"
import * as Status from "./engine/status.js"
import * as FifoPermits from "./fifoPermits.js"

/** @internal */
export const make = (
  families: readonly [CredentialFamily, ...Array<CredentialFamily>],
  options: EngineOptions = {}
): Effect.Effect<TokenEngineShape, never, TokenStore | Scope.Scope> =>
  Effect.gen(function*() {
    // Writes counted as they are refused: re-validation compares every credential after one.
    const store = Revalidate.watchWrites(yield* TokenStore)
    const scope = yield* Effect.scope
    const marginMillis = Duration.toMillis(options.refreshMargin ?? Duration.seconds(300))
    const upstreamPermits = yield* FifoPermits.make(options.maxConcurrentFetches ?? 16)
    const shares = yield* Shares.make(store)
    const scheduler = Scheduler.make({ maxJobs: 4 * (options.maxConcurrentFetches ?? 16), marginMillis, ...shares })
    const owners = yield* Owners.make(families, store, scheduler)
    const fetch = yield* Fetch.make(store, owners, scheduler, {
      leaseMillis: options.leaseMillis ?? 15_000,
      leasePollMillis: options.leasePollMillis ?? 100,
      marginMillis,
      issue: (cell, force) => issue(cell, force)
    })
    const durable = Durable.make(store, owners, fetch, scheduler, marginMillis)
    const { defaultKind } = owners
    const issue = Issue.make({
      get: (owner, kind) => get(owner, kind),
      refresh: (owner, stale, kind) => refresh(owner, stale, kind),
      put: durable.put,
      retire: durable.retire,
      withPermit: upstreamPermits.withPermit
    })

    const get = (appId: string, kind: CredentialKind = defaultKind) => {
      // A started cell is served without the extra step of `cellOf`.
      const started = owners.started(appId, kind)
      return started !== undefined
        ? fetch.serve(started, RefreshPolicy.usable)
        : Effect.flatMap(owners.cellOf(appId, kind), (cell) => fetch.serve(cell, RefreshPolicy.usable))
    }

    // What `get` would answer from memory at `now`, read synchronously; a
    // cell not started or holding nothing usable is `get`'s to handle.
    const peek = (appId: string, now: number, kind: CredentialKind = defaultKind): Credential | undefined => {
      const held = owners.started(appId, kind)?.held
      return held !== undefined && !RefreshPolicy.usable.needsFetch(held.record, now) ? held.credential : undefined
    }

    const refresh = (
      appId: string,
      staleValue?: string,
      kind: CredentialKind = defaultKind
    ): Effect.Effect<Credential, AccessTokenError> =>
      Effect.flatMap(owners.cellOf(appId, kind), (cell) => fetch.serve(cell, RefreshPolicy.replacing(staleValue)))

    const revalidation = Revalidate.make(store, owners, fetch)
    yield* Effect.forkIn(revalidation.followChanges, scope)
    yield* Effect.forkIn(shares.run, scope)
    yield* Effect.forkIn(scheduler.run(Job.make(fetch, shares), owners.live, scope), scope)
    // Re-validation starts once start-up has read the store, and counts those
    // reads as its first pass: at a million credentials a pass beside
    // start-up's listing would read the store twice over.
    const read: Revalidate.StartUpRead = {
      at: yield* Clock.currentTimeMillis,
      mark: store.changesMark === undefined ? undefined : Option.getOrUndefined(yield* Effect.option(store.changesMark))
    }
    yield* StartUp.run(families, store, owners)
    yield* Effect.forkIn(revalidation.revalidate(read), scope)

    const forceRefreshBudget = (appId: string, kind: CredentialKind = defaultKind) =>
      Effect.flatMap(owners.cellOf(appId, kind), (cell) =>
        Effect.map(Clock.currentTimeMillis, (now) => Cell.forceRefreshBudget(cell, now)))

    const { countStatuses, eachStatus, status } = Status.make(owners)
    return {
      apps: owners.apps,
      servable: owners.servable,
      get,
      peek,
      refresh,
      put: durable.put,
      retire: durable.retire,
      status,
      eachStatus,
      countStatuses,
      forceRefreshBudget
    }
  })
