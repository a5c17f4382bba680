/**
 * The engine's owners and their cells: the configured owners of every
 * family, the dynamic owners admitted at runtime (and those retired), and
 * one cell per owner and kind, started eagerly or on first use. A cell is
 * live while it is the one registered here: only a live cell is scheduled
 * and counted in the pacing.
 *
 * @internal
 */
import { Clock, Effect, Option } from "effect"
import type { CredentialFamily, CredentialKindSpec } from "../../CredentialFamily.js"
import type { OwnerId as Owner } from "../../OwnerId.js"
import type { CredentialKind, TokenRecord } from "../../Token.js"
import type { TokenStoreShape } from "../../TokenStore.js"
import { UnknownApp } from "../../WeChatError.js"
import * as Cell from "./cell.js"
import * as CellTable from "./cellTable.js"
import * as Configured from "./configured.js"
import type { Scheduler } from "./scheduler.js"
import { type Preloaded, seedOf } from "./startUp.js"

/** @internal */
export interface Retired {
  readonly family: CredentialFamily
  readonly record: TokenRecord
}

/** @internal */
export const make = (
  families: readonly [CredentialFamily, ...Array<CredentialFamily>],
  store: Pick<TokenStoreShape, "get" | "list">,
  scheduler: Pick<Scheduler, "schedule" | "remove" | "expect">
) =>
  Effect.gen(function*() {
    const table = CellTable.make()
    const kinds = Configured.declaredKinds(families)
    if (!(kinds instanceof Map)) {
      return yield* Effect.dieMessage(`two credential families declare the kind ${kinds.twice}`)
    }
    // The cells of each kind by owner: a lookup (every request the fast path
    // answers, every admitted credential at start-up) hashes the owner id it
    // is given, and no `owner/kind` string is built per lookup or kept per cell.
    const cellsOfKind = new Map(Array.from(kinds.keys(), (kind) => [kind, new Map<string, Cell.Cell>()]))
    const dependents = Configured.dependents(kinds)
    let size = 0
    const started = (owner: string, kind: CredentialKind): Cell.Cell | undefined => cellsOfKind.get(kind)?.get(owner)
    const labelOf = Configured.labeller(families)
    const dynamicFamilies = families.filter((family) => family.dynamic !== undefined)
    // Dynamic owners admitted now, and those retired (with their tombstone) for `status`.
    const admitted = new Set<string>()
    const retired = new Map<string, Retired>()

    const live = (cell: Cell.Cell): boolean => started(cell.key.appId, cell.key.kind) === cell

    const hold = (cell: Cell.Cell, held: Cell.Held): Cell.Held => {
      const isLive = live(cell)
      if (isLive) scheduler.expect(cell.held, -1)
      Cell.hold(cell, held)
      table.setUsableUntil(cell, cell.usableUntil)
      if (isLive) scheduler.expect(held, 1)
      return held
    }

    // A cell holding `stored` (`null`: the store holds none), due at its
    // refresh time, or at `now` when it holds nothing. Synchronous: start-up
    // starts a million listed credentials in batches, not an Effect each.
    const startWith = (
      appId: Owner,
      family: CredentialFamily,
      spec: CredentialKindSpec,
      stored: TokenRecord | null,
      now: number
    ): Cell.Cell => {
      const ofKind = cellsOfKind.get(spec.kind)!
      // Two first requests for an on-demand kind may race here: the first cell wins.
      const existing = ofKind.get(appId)
      if (existing !== undefined) return existing
      const held = stored === null ? undefined : Cell.toHeld(stored)
      const cell = Cell.make({ appId, kind: spec.kind }, spec, family, labelOf(appId), held)
      ofKind.set(appId, cell)
      size += 1
      table.add(cell, cell.label, spec.kind)
      scheduler.expect(cell.held, 1)
      scheduler.schedule(cell, cell.held?.record.refreshAt ?? now)
      return cell
    }

    // The stored record is loaded first, so a restart neither burns quota
    // nor kills the credential other servers hold. Whatever mode wrote it: a
    // valid token stays valid after a switch between classic and stable.
    const start = (
      appId: Owner,
      family: CredentialFamily,
      spec: CredentialKindSpec,
      seed?: TokenRecord | null
    ): Effect.Effect<Cell.Cell> =>
      Effect.gen(function*() {
        // `null`: a listing just said the store holds none.
        const stored = seed !== undefined ? seed : Option.getOrNull(
          yield* store.get({ appId, kind: spec.kind }).pipe(
            Effect.catchTag(
              "StoreError",
              (error) =>
                Effect.logWarning("token store unreadable at start-up", error.message).pipe(Effect.as(Option.none()))
            )
          )
        )
        return startWith(appId, family, spec, stored, yield* Clock.currentTimeMillis)
      })

    // Admits a dynamic owner at `now` when start-up listed each of its
    // eager kinds (false, nothing done, otherwise: `admit` reads them).
    // Each listed record is looked up once: among a million owners, a
    // lookup is a cache miss or two.
    const admitListed = (
      owner: Owner,
      family: CredentialFamily,
      presence: TokenRecord,
      preloaded: Preloaded | undefined,
      now: number
    ): boolean => {
      const seeds: Array<TokenRecord | null> = []
      for (const spec of family.kinds) {
        if (spec.kind === presence.kind || spec.start !== "eager") continue
        const seed = seedOf(preloaded, spec.kind, owner)
        if (seed === undefined) return false
        seeds.push(seed)
      }
      admitted.add(owner)
      retired.delete(owner)
      let next = 0
      for (const spec of family.kinds) {
        if (spec.kind === presence.kind) startWith(owner, family, spec, presence, now)
        else if (spec.start === "eager") startWith(owner, family, spec, seeds[next++]!, now)
      }
      return true
    }

    // Starts a dynamic owner: its presence cell holding `presence`, and its eager kinds.
    const admit = (
      owner: Owner,
      family: CredentialFamily,
      presence: TokenRecord,
      preloaded?: Preloaded
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.add(owner)
        retired.delete(owner)
        for (const spec of family.kinds) {
          if (spec.kind === presence.kind) {
            yield* start(owner, family, spec, presence)
          } else if (spec.start === "eager") {
            yield* start(owner, family, spec, seedOf(preloaded, spec.kind, owner))
          }
        }
      })

    // Owners and kinds reach here unvalidated (HTTP paths); an id that is not
    // configured is never looked up anywhere else.
    const cellOf = (appId: string, kind: CredentialKind): Effect.Effect<Cell.Cell, UnknownApp> => {
      const existing = started(appId, kind)
      if (existing !== undefined) return Effect.succeed(existing)
      const declared = kinds.get(kind)
      if (declared === undefined) return Effect.fail(new UnknownApp({ appId }))
      const { family, spec } = declared
      const owner = family.owners.find((owner) => owner === appId)
      if (owner !== undefined) return start(owner, family, spec)
      if (family.dynamic === undefined || !family.dynamic.accepts(appId)) return Effect.fail(new UnknownApp({ appId }))
      const dynamicOwner = appId as Owner
      if (admitted.has(appId)) return start(dynamicOwner, family, spec)
      // Another replica (or an earlier run) may have admitted it: its presence record says so.
      return store.get({ appId: dynamicOwner, kind: family.dynamic.presence }).pipe(
        Effect.catchTag(
          "StoreError",
          (error) =>
            Effect.logWarning("token store unreadable; cannot look up an owner", error.message).pipe(
              Effect.as(Option.none())
            )
        ),
        Effect.flatMap((presence) =>
          Option.isSome(presence) && presence.value.retired !== true
            ? Effect.zipRight(admit(dynamicOwner, family, presence.value), start(dynamicOwner, family, spec))
            : Effect.fail(new UnknownApp({ appId }))
        )
      )
    }

    // Stops every credential of a retired owner, here only: the tombstone is
    // already stored. Every kind, not only its family's: a WeCom app's
    // tickets are families of their own, on the same owner.
    const stop = (owner: string, family: CredentialFamily, tombstone: TokenRecord): Effect.Effect<void> =>
      Effect.gen(function*() {
        admitted.delete(owner)
        retired.set(owner, { family, record: tombstone })
        for (const ofKind of cellsOfKind.values()) {
          const cell = ofKind.get(owner)
          if (cell === undefined) continue
          table.remove(cell)
          scheduler.remove(cell)
          scheduler.expect(cell.held, -1)
          ofKind.delete(owner)
          size -= 1
        }
        yield* Effect.logInfo("owner retired: its credentials are no longer refreshed").pipe(
          Effect.annotateLogs({ app: owner })
        )
      })

    const { apps, servable } = Configured.servableOf(families)

    return {
      apps,
      servable,
      defaultKind: families[0].kinds[0].kind,
      declared: (kind: CredentialKind): Configured.Declared | undefined => kinds.get(kind),
      started,
      // Kind by kind, each in the order its cells started.
      cells: function*(): Iterable<Cell.Cell> {
        for (const ofKind of cellsOfKind.values()) yield* ofKind.values()
      },
      // Cells that may wait for `owner`'s `kind`: of kinds taking it from their own owner, that owner's only.
      dependentsOf: function*(owner: string, kind: CredentialKind): Iterable<Cell.Cell> {
        for (const { kind: dependent, sameOwner } of dependents.get(kind) ?? []) {
          const ofKind = cellsOfKind.get(dependent)!
          yield* sameOwner ? [ofKind.get(owner)].filter((cell) => cell !== undefined) : ofKind.values()
        }
      },
      table,
      size: (): number => size,
      retired: (): Iterable<Retired> => retired.values(),
      isAdmitted: (owner: string): boolean => admitted.has(owner),
      dynamicFamilyOf: (owner: string): CredentialFamily | undefined =>
        dynamicFamilies.find((family) => family.dynamic!.accepts(owner)),
      labelOf,
      live,
      hold,
      start,
      startWith,
      admit,
      admitListed,
      cellOf,
      stop,
      // A retired owner found at start-up: listed in the status, never started.
      remember: (record: TokenRecord, family: CredentialFamily): void =>
        void retired.set(record.appId, { family, record })
    }
  })

/** @internal */
export type Owners = Effect.Effect.Success<ReturnType<typeof make>>
