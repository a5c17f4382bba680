// Drives node-easywechat's OpenPlatform (a third-party platform), unmodified
// but for its host, against the gateway: `node open.mjs` with GATEWAY (the
// base URL), COMPONENT_ID, CLIENT_KEY (in place of the AppSecret), PUSH_TOKEN,
// AES_KEY, WORK (a scratch folder) and CODE (an authorization code the
// merchant's redirect brought). It runs the recipe in docs/gateway.md as
// written there, with only those values replaced, and prints what each step
// gave as one JSON line.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { URL } from "node:url"

const require = createRequire(import.meta.url)
const { AES_KEY, CODE, COMPONENT_ID, GATEWAY, PUSH_TOKEN, WORK } = process.env

const guide = readFileSync(new URL("../../../docs/gateway.md", import.meta.url), "utf8")
const block = [...guide.matchAll(/```js\n([\s\S]*?)```/g)].map((found) => found[1])
  .find((code) => code.startsWith("// node-easywechat OpenPlatform "))
if (block === undefined) throw new Error("docs/gateway.md has no OpenPlatform recipe")
const code = block
  .replaceAll("\"http://token-server:8787", JSON.stringify(GATEWAY).slice(0, -1))
  .replaceAll("\"wx00c0c0c0c0c0c0c0\"", JSON.stringify(COMPONENT_ID))
  .replaceAll("\"the push token\"", JSON.stringify(PUSH_TOKEN))
  .replaceAll("\"the 43-character EncodingAESKey\"", JSON.stringify(AES_KEY))
  .replaceAll("\"/var/cache/easywechat\"", JSON.stringify(join(WORK, "cache")))
const AsyncFunction = (async () => {}).constructor
const { open } = await new AsyncFunction("require", "process", `${code}\nreturn { open }`)(require, process)

const step = async (run) => {
  try {
    return await run()
  } catch (error) {
    return { error: String(error?.message ?? error) }
  }
}
const results = {}
results.componentToken = await step(() => open.getComponentAccessToken().getToken())
results.preAuthCode = await step(() => open.createPreAuthorizationCode())
const authorization = await step(() => open.getAuthorization(CODE))
results.authorization = authorization.error === undefined ? authorization.attributes : authorization
const appId = authorization.error === undefined ? authorization.getAppId() : ""
const refreshToken = authorization.error === undefined ? authorization.getRefreshToken() : ""
results.message = await step(async () => {
  const app = await open.getOfficialAccountWithRefreshToken(appId, refreshToken)
  return (await app.getClient().postJson("cgi-bin/message/custom/send", {
    touser: "oGATEWAYSDKTEST",
    msgtype: "text",
    text: { content: "hello from a third-party platform" }
  })).toObject()
})
results.authorizerToken = await step(() => open.getAuthorizerAccessToken(appId, refreshToken))
console.log(JSON.stringify(results))
