// Drives node-easywechat's OpenWork (a WeCom service provider), unmodified
// but for its host, against the gateway: `node openwork.mjs` with GATEWAY
// (the base URL), SUITE_ID, PROVIDER_ID, CLIENT_KEY (in place of the suite
// and provider secrets, read by the recipe), PUSH_TOKEN, AES_KEY, WORK (a
// scratch folder) and CORP_ID (a corp that installed the suite). It runs the
// recipe in docs/gateway.md as written there, with only those values
// replaced, and prints what each step gave as one JSON line.
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { URL } from "node:url"

const require = createRequire(import.meta.url)
const { AES_KEY, CORP_ID, GATEWAY, PROVIDER_ID, PUSH_TOKEN, SUITE_ID, WORK } = process.env

const guide = readFileSync(new URL("../../../docs/gateway.md", import.meta.url), "utf8")
const block = [...guide.matchAll(/```js\n([\s\S]*?)```/g)].map((found) => found[1])
  .find((code) => code.startsWith("// node-easywechat OpenWork "))
if (block === undefined) throw new Error("docs/gateway.md has no OpenWork recipe")
const code = block
  .replaceAll("\"http://token-server:8787", JSON.stringify(GATEWAY).slice(0, -1))
  .replaceAll("\"ww0909090909090909\"", JSON.stringify(PROVIDER_ID))
  .replaceAll("\"ww5c5c5c5c5c5c5c5c\"", JSON.stringify(SUITE_ID))
  .replaceAll("\"the push token\"", JSON.stringify(PUSH_TOKEN))
  .replaceAll("\"the 43-character EncodingAESKey\"", JSON.stringify(AES_KEY))
  .replaceAll("\"/var/cache/easywechat\"", JSON.stringify(join(WORK, "cache")))
const AsyncFunction = (async () => {}).constructor
const { permanentCode, work } = await new AsyncFunction(
  "require",
  "process",
  `${code}\nreturn { work, permanentCode }`
)(
  require,
  process
)

const step = async (run) => {
  try {
    return await run()
  } catch (error) {
    return { error: String(error?.message ?? error) }
  }
}
const results = {}
results.suiteToken = await step(() => work.getSuiteAccessToken().getToken())
results.providerToken = await step(() => work.getProviderAccessToken().getToken())
results.preAuthCode = await step(() => work.createPreAuthorizationCode())
results.authorization = await step(async () => (await work.getAuthorization(CORP_ID, permanentCode)).getCorpId())
results.corpToken = await step(async () => (await work.getAuthorizerAccessToken(CORP_ID, permanentCode)).getToken())
results.message = await step(async () => {
  const client = await work.getAuthorizerClient(CORP_ID, permanentCode)
  return (await client.postJson("cgi-bin/message/send", {
    touser: "@all",
    msgtype: "text",
    agentid: 1000002,
    text: { content: "hello from a service provider" }
  })).toObject()
})
console.log(JSON.stringify(results))
