/**
 * A counting semaphore that hands each released permit to its oldest waiter.
 *
 * Why not `Effect.makeSemaphore`: in Effect 3 (3.22.4) a release wakes every
 * waiter, and each one that loses the race waits again from inside its own
 * continuation, so its fiber stack grows by a few frames per lost race. With
 * n waiters that is O(n²) time and memory: 1,000 fetches behind 16 permits
 * (a server with 1,000 apps starting up) held ~1 GB of heap and took 11 s for
 * 0.3 s of work. Here a release completes one waiter's `Deferred`: O(1) per
 * hand-off, and first come, first served.
 */
import { Chunk, Deferred, Effect, Option, Ref } from "effect"

export interface FifoPermits {
  /** Runs `self` holding one permit; waits, in arrival order, while none is free. */
  readonly withPermit: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

interface State {
  readonly free: number
  readonly waiters: Chunk.Chunk<Deferred.Deferred<void>>
}

export const make = (permits: number): Effect.Effect<FifoPermits> =>
  Effect.map(Ref.make<State>({ free: permits, waiters: Chunk.empty() }), (state) => {
    const release: Effect.Effect<void> = Ref.modify(
      state,
      (current): [Effect.Effect<unknown>, State] =>
        Chunk.isNonEmpty(current.waiters)
          ? [
            Deferred.succeed(Chunk.headNonEmpty(current.waiters), undefined),
            { free: current.free, waiters: Chunk.tailNonEmpty(current.waiters) }
          ]
          : [Effect.void, { free: current.free + 1, waiters: current.waiters }]
    ).pipe(Effect.flatten, Effect.asVoid)

    // An interrupted waiter leaves the line; if a release already handed it
    // the permit, it passes the permit on instead of losing it.
    const leave = (waiter: Deferred.Deferred<void>): Effect.Effect<void> =>
      Ref.modify(state, (current): [Effect.Effect<void>, State] => {
        const index = Chunk.findFirstIndex(current.waiters, (queued) => queued === waiter)
        return Option.isSome(index)
          ? [Effect.void, { free: current.free, waiters: Chunk.remove(current.waiters, index.value) }]
          : [release, current]
      }).pipe(Effect.flatten)

    const acquire = (restore: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        Deferred.make<void>(),
        (waiter) =>
          Ref.modify(state, (current): [Effect.Effect<void>, State] =>
            current.free > 0
              ? [Effect.void, { free: current.free - 1, waiters: current.waiters }]
              : [
                restore(Deferred.await(waiter)).pipe(Effect.onInterrupt(() => leave(waiter))),
                { free: current.free, waiters: Chunk.append(current.waiters, waiter) }
              ]).pipe(Effect.flatten)
      )

    return {
      withPermit: (self) =>
        Effect.uninterruptibleMask((restore) =>
          acquire(restore).pipe(Effect.zipRight(restore(self).pipe(Effect.ensuring(release))))
        )
    }
  })
