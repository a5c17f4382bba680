#!/usr/bin/env node
// The `effect-wechat-token` command. The published package holds no sources and
// runs the compiled bin. A clone (sources present, `npm ci` done, nothing built)
// runs the sources through tsx, so `npx effect-wechat-token` works there at once
// and never runs a stale build.
import { existsSync } from "node:fs"
import { URL } from "node:url"

const source = new URL("../src/bin.ts", import.meta.url)
const fromSource = existsSync(source) &&
  (await import("tsx/esm/api").then((tsx) => (tsx.register(), true), () => false))
await import(fromSource ? source.href : "../dist/bin.js")
