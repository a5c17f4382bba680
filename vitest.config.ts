import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers (HTTP on loopback, redis-server, child processes) start in some suites, and the simulated
    // days step the TestClock thousands of times, each step waiting for its timers in real time: on a loaded
    // 2-core machine one such test took over 60 s. A hang still fails, three minutes later.
    testTimeout: 180_000,
    hookTimeout: 60_000,
    // The machine has 2 cores; more workers only make the process-level tests flaky.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
