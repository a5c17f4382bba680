/**
 * The standalone central server, as `npm start` runs it: with no WECHAT_APPS
 * (or WECHAT_APP_ID) in the environment it starts in demo mode against the
 * bundled WeChat emulator and prints a ready `curl` line.
 *
 *   npx tsx examples/main.ts
 *   WECHAT_APPS=wx...:secret CLIENT_KEYS=$(openssl rand -hex 32) npx tsx examples/main.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Main from "../src/server/Main.js"

NodeRuntime.runMain(Main.serve, { disableErrorReporting: true, disablePrettyLogger: true })
