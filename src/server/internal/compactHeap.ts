/**
 * The server asks V8 to optimise for size before it starts (`COMPACT_HEAP`,
 * on by default).
 *
 * Why: the server's live data is small (about 50 MB of heap with 1,000 apps)
 * but V8's defaults are tuned for throughput of allocation-heavy programs: a
 * young generation that grows to two 16 MB semi-spaces, and an old
 * generation allowed to grow to a few times its live size between full
 * collections. The start-up herd (every credential fetched through the HTTP
 * client, Schema, fibers) promotes about 100 MB of short-lived objects, and
 * V8 keeps those pages committed: 255–260 MB RSS with 1,000 apps, of which
 * 105 MB is garbage nothing asks V8 to collect. `--optimize-for-size` keeps
 * the semi-spaces small and the growth tight: 115–140 MB for the same server
 * (`npm run bench -- scale`), with the hot route's answers still cheap (it
 * allocates little per request; see BENCHMARKS.md for the serving figures).
 *
 * The flag is one V8 reads as it goes (heap growth, semi-space sizing,
 * compaction), so setting it at start-up, before the engine and the server
 * allocate, takes effect; operators cannot pass it themselves through
 * `NODE_OPTIONS`, which refuses it. Only the server sets it: the library
 * never changes the V8 settings of the program it runs in.
 *
 * @internal
 */
import { Effect } from "effect"
import { setFlagsFromString } from "node:v8"

/** @internal */
export const apply = (compact: boolean): Effect.Effect<void> =>
  compact ? Effect.sync(() => setFlagsFromString("--optimize-for-size")) : Effect.void
