// Preloaded into the server by the scale bench (`node --expose-gc --import`):
// on SIGUSR2 it runs a full garbage collection and prints the live heap on
// stderr, so the bench can tell live memory from garbage V8 has
// not collected yet. Plain JS: the server under test runs without tsx.
process.on("SIGUSR2", () => {
  globalThis.gc?.()
  const { heapUsed } = process.memoryUsage()
  process.stderr.write(`MEMORY ${JSON.stringify({ heapUsed })}\n`)
})
