/**
 * The package's version, read from its `package.json` so the CLI, the
 * OpenAPI document and the published package can never disagree. The file
 * sits two levels up from this module both in `src/internal` and in
 * `dist/internal`.
 */
import { createRequire } from "node:module"

export const version: string = (createRequire(import.meta.url)("../../package.json") as { readonly version: string })
  .version
