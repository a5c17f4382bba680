/**
 * A simulated day at 1,000,000 credentials (issue 30, goal 5), on the
 * bench's own clock as `spread` runs it (`spread.simulate`: the real engine,
 * a cold start at one instant, then 24 h of its own schedule): refreshes
 * per credential against what the two-hour lifetime allows, credentials
 * found holding nothing usable (a look at every one each simulated minute),
 * refreshes made after the token died, and the busiest second against the
 * mean.
 *
 * Runs only when named (`npm run bench -- millionDay`). A day is 12.4
 * refreshes per credential, each a few hundred microseconds of the engine's
 * own work: at 1,000,000 about 13 million fetches and two CPU hours on one
 * core, about 3.5 GB of heap at its peak (the runner gives it a 12 GB
 * limit). `BENCH_AUTHORIZERS` scales it down, and the figures say at which
 * size they were measured.
 */
import { Effect } from "effect"
import type { Figure } from "./Figure.js"
import { authorizersFromEnv } from "./million.js"
import { LIFETIME_SECONDS, simulate } from "./spread.js"

const DEFAULT_CREDENTIALS = 1_000_000
const DAY_SECONDS = 86_400
// The engine's default refresh margin.
const MARGIN_SECONDS = 300
const GOAL_BUSIEST = 2

export const run: Effect.Effect<ReadonlyArray<Figure>> = Effect.sync(() => {
  const count = authorizersFromEnv(DEFAULT_CREDENTIALS)
  const reproduce = count === DEFAULT_CREDENTIALS
    ? "npm run bench -- millionDay"
    : `BENCH_AUTHORIZERS=${count} npm run bench -- millionDay`
  const scenario = `${count.toLocaleString("en")} credentials, a simulated day`
  const started = process.cpuUsage()
  const day = simulate(count, DAY_SECONDS)
  const cpu = process.cpuUsage(started)
  // One refresh per lifetime less the margin, and the one early refresh
  // that spreads a cold start's herd over the first cycle.
  const limit = 1 + Math.floor(DAY_SECONDS / (LIFETIME_SECONDS - MARGIN_SECONDS))
  return [
    {
      scenario,
      name: `refreshes per credential, mean (${day.total.toLocaleString("en")} in all)`,
      value: day.total / count,
      unit: "",
      reproduce
    },
    {
      scenario,
      name: "refreshes of the busiest credential (after its cold fetch)",
      value: day.mostPerCredential,
      unit: "",
      goal: `≤ ${limit} (1 + day / (lifetime − margin))`,
      met: day.mostPerCredential <= limit,
      reproduce
    },
    {
      scenario,
      name: "credentials found holding nothing usable (every one looked at each minute)",
      value: day.deadSeen,
      unit: "",
      goal: "= 0",
      met: day.deadSeen === 0,
      reproduce
    },
    {
      scenario,
      name: "refreshes made after the token died",
      value: day.refreshedDead,
      unit: "",
      goal: "= 0",
      met: day.refreshedDead === 0,
      reproduce
    },
    {
      scenario,
      name: `busiest second of refreshes (${day.busiest}) / the mean (${day.mean.toFixed(2)})`,
      value: day.busiest / day.mean,
      unit: "×",
      goal: `≤ ${GOAL_BUSIEST}`,
      met: day.busiest / day.mean <= GOAL_BUSIEST,
      reproduce
    },
    {
      scenario,
      name: "CPU of the simulation",
      value: (cpu.user + cpu.system) / 1e6,
      unit: "s",
      reproduce
    }
  ]
})
