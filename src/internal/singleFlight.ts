/**
 * Keyed single-flight: per key, at most one computation runs at a time, and
 * every caller asking for that key meanwhile shares its result. The
 * computation runs in the scope the single-flight was made in, so a caller
 * that gives up (is interrupted) does not cancel it for the others. Modelled
 * on `@effect/cluster`'s `internal/resourceMap.ts`.
 *
 * @internal
 */
import { Deferred, Effect, type Scope } from "effect"

/** @internal */
export interface SingleFlight<K, A, E> {
  /** `compute`'s result, shared with every caller of the same key while it runs. */
  readonly run: (key: K, compute: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /**
   * `compute` run by the calling fiber itself, its result shared with every
   * caller of the same key meanwhile (or, while one runs, that one's result).
   * For a caller that never gives up on it and lives in the single-flight's
   * scope (the engine's scheduled jobs): the fork `run` makes is spared.
   */
  readonly lead: (key: K, compute: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Whether a computation for `key` is running now. */
  readonly running: (key: K) => boolean
}

/** @internal */
export const make = <K, A, E>(): Effect.Effect<SingleFlight<K, A, E>, never, Scope.Scope> =>
  Effect.map(Effect.scope, (scope) => {
    const inflight = new Map<K, Deferred.Deferred<A, E>>()
    const run = (key: K, compute: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (mine) => {
        // Look-up and registration happen in one synchronous step: no other
        // fiber can register the same key in between.
        const running = inflight.get(key)
        if (running !== undefined) return Deferred.await(running)
        inflight.set(key, mine)
        return compute.pipe(
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(mine, exit)),
          Effect.ensuring(Effect.sync(() => inflight.delete(key))),
          Effect.forkIn(scope),
          Effect.zipRight(Deferred.await(mine))
        )
      })
    // Registered and watched in one uninterruptible step: an interruption in
    // between would leave the key's callers waiting on a run nobody makes.
    const lead = (key: K, compute: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Deferred.make<A, E>(), (mine) => {
          const running = inflight.get(key)
          if (running !== undefined) return restore(Deferred.await(running))
          inflight.set(key, mine)
          return Effect.onExit(restore(compute), (exit) =>
            Effect.zipRight(
              Deferred.done(mine, exit),
              Effect.sync(() => inflight.delete(key))
            ))
        })
      )
    return { run, lead, running: (key) => inflight.has(key) }
  })
