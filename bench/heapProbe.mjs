// Preloaded into the server by the soak bench (`node --import`): on SIGUSR2 it
// prints on stderr the heap in use now and the old generation in use right
// after the last full (mark-compact) collection, which is the live heap
// without garbage. It only watches V8's own collections (a `gc` performance
// observer): no `--expose-gc`, no forced collection, so the soak measures the
// server as it collects on its own. Plain JS: the server under test runs without tsx.
import { constants, PerformanceObserver } from "node:perf_hooks"
import { getHeapSpaceStatistics } from "node:v8"

// Everything but the young generation: after a full collection, what survived it.
const oldGeneration = () =>
  getHeapSpaceStatistics()
    .filter((space) => !space.space_name.startsWith("new_"))
    .reduce((sum, space) => sum + space.space_used_size, 0)

let fullCollections = 0
let afterFullCollection = null
new PerformanceObserver((list) => {
  const full = list.getEntries().filter((entry) => entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
  if (full.length === 0) return
  fullCollections += full.length
  afterFullCollection = oldGeneration()
}).observe({ entryTypes: ["gc"] })

let asked = 0
process.on("SIGUSR2", () => {
  asked++
  const { heapUsed } = process.memoryUsage()
  process.stderr.write(`HEAP ${JSON.stringify({ asked, heapUsed, afterFullCollection, fullCollections })}\n`)
})
