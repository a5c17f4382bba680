/**
 * The server caps how far V8 lets its old generation grow between full
 * collections (`COMPACT_HEAP`, on by default).
 *
 * Why: the server's live data is small (about 50 MB of heap with 1,000 apps)
 * but V8's default lets the old generation grow to a few times its live
 * size before the next full collection. The start-up herd (every credential
 * fetched through the HTTP client, Schema, fibers) promotes about 100 MB of
 * short-lived objects, and V8 keeps those pages committed: 255–260 MB RSS
 * with 1,000 apps, of which about 105 MB is garbage nothing asks V8 to
 * collect. With the growth capped at 20 % above the live size, the next
 * full collection comes before the garbage piles up: 165 MB for the same
 * server (`npm run bench -- scale`), and start-up is no slower.
 *
 * Tried first: `--optimize-for-size` (115–146 MB), which also shrinks the
 * young generation to a few MB; under load it collected so often that the
 * hot route's p99 went from 12 ms to 65 ms and its throughput fell by a
 * fifth. The cap alone leaves the young generation as it is: the serving
 * bench shows the same throughput and p99 with and without it.
 *
 * The flag is one V8 reads at each full collection, so setting it at
 * start-up, before the engine and the server allocate, takes effect;
 * operators cannot pass it themselves through `NODE_OPTIONS`, which refuses
 * it. Only the server sets it: the library never changes the V8 settings of
 * the program it runs in.
 *
 * @internal
 */
import { Effect } from "effect"
import { setFlagsFromString } from "node:v8"

/** Old generation allowed to grow to this much above the live size (V8's own default is dynamic, up to 4 ×). */
const HEAP_GROWING_PERCENT = 20

/** @internal */
export const apply = (compact: boolean): Effect.Effect<void> =>
  compact ? Effect.sync(() => setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)) : Effect.void
