import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers (HTTP on loopback, redis-server, child processes) start in some suites.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The machine has 2 cores; more workers only make the process-level tests flaky.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
