// Drives one WeChat SDK from npm, unmodified but for its API host, against
// the gateway: `node drive.mjs` with SDK (co-wechat-api | wechat-api |
// node-easywechat), GATEWAY (the base URL), APP_ID, CLIENT_KEY (in place of
// the app secret) and WORK (a scratch folder). It runs every feature once,
// prints `{"phase":1,…}`, waits for a line on stdin (the test kills the real
// token meanwhile), runs the token-using features again and prints
// `{"phase":2,…}`. A feature the SDK cannot do unchanged is reported as
// `{"unsupported": why}`, one that failed as `{"error": message}`.
// Each SDK is set up by its recipe in docs/gateway.md, run as written there
// with only the host, the app id and the cache folder replaced.
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { URL } from "node:url"

const require = createRequire(import.meta.url)
const { APP_ID, GATEWAY, SDK, WORK } = process.env
const OPENID = "oGATEWAYSDKTEST"
const PAGE = "https://example.com/page?x=1"
const IMAGE = join(WORK, "upload.jpg")
mkdirSync(WORK, { recursive: true })
// 3,000 bytes that are not periodic: the download must give back as many.
writeFileSync(IMAGE, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + (i >> 5)) & 0xff)))

const sha1 = (text) => createHash("sha1").update(text).digest("hex")
const promised = (call) =>
  new Promise((resolve, reject) => call((error, value) => error ? reject(error) : resolve(value)))
const bytesOf = (value) => Buffer.isBuffer(value) ? value.length : value instanceof ArrayBuffer ? value.byteLength : -1

// The guide's recipe for `name`: the js block whose first line names the SDK.
const recipe = (name) => {
  const guide = readFileSync(new URL("../../../docs/gateway.md", import.meta.url), "utf8")
  const block = [...guide.matchAll(/```js\n([\s\S]*?)```/g)].map((found) => found[1])
    .find((code) => code.startsWith(`// ${name} `))
  if (block === undefined) throw new Error(`docs/gateway.md has no recipe for ${name}`)
  const code = block
    .replaceAll("\"http://token-server:8787", JSON.stringify(GATEWAY).slice(0, -1))
    .replaceAll("\"wx0123456789abcdef\"", JSON.stringify(APP_ID))
    .replaceAll("\"/var/cache/easywechat\"", JSON.stringify(join(WORK, "cache")))
  const names = ["api", "app", "mini"]
  const made = new Function(
    "require",
    "process",
    `${code}\nreturn { ${
      names.map((name) => `${name}: typeof ${name} === "undefined" ? undefined : ${name}`).join(", ")
    } }`
  )
  return made(require, process)
}

const sdks = {
  "co-wechat-api": () => {
    const { api } = recipe("co-wechat-api")
    return {
      token: async () => (await api.getAccessToken()).accessToken,
      message: () => api.sendText(OPENID, "hello from co-wechat-api"),
      upload: () => api.uploadMedia(IMAGE, "image"),
      download: async (mediaId) => ({ bytes: bytesOf(await api.getMedia(mediaId)) }),
      ticket: async () => (await api.getTicket()).ticket,
      jsConfig: () => api.getJsConfig({ debug: false, jsApiList: ["chooseImage"], url: PAGE }),
      code2Session: () => api.code2Session("CODE-CO")
    }
  },
  "wechat-api": () => {
    const { api } = recipe("wechat-api")
    return {
      token: async () => (await promised((done) => api.getAccessToken(done))).accessToken,
      message: () => promised((done) => api.sendText(OPENID, "hello from wechat-api", done)),
      upload: () => promised((done) => api.uploadMedia(IMAGE, "image", done)),
      download: async (mediaId) => ({ bytes: bytesOf(await promised((done) => api.getMedia(mediaId, done))) }),
      ticket: async () => (await promised((done) => api.getTicket(done))).ticket,
      jsConfig: () =>
        promised((done) => api.getJsConfig({ debug: false, jsApiList: ["chooseImage"], url: PAGE }, done)),
      code2Session: () => ({ unsupported: "wechat-api has no mini-program login" })
    }
  },
  "node-easywechat": () => {
    const { app, mini } = recipe("node-easywechat")
    const client = app.getClient()
    return {
      token: () => app.getAccessToken().getToken(),
      message: async () =>
        (await client.postJson("cgi-bin/message/custom/send", {
          touser: OPENID,
          msgtype: "text",
          text: { content: "hello from node-easywechat" }
        })).toObject(),
      upload: async () =>
        (await client.withFile(IMAGE, "media").post("cgi-bin/media/upload", { params: { type: "image" } })).toObject(),
      download: async (mediaId) => {
        const answer = await client.get("cgi-bin/media/get", {
          params: { media_id: mediaId },
          responseType: "arraybuffer"
        })
        return { bytes: bytesOf(answer.getContent()) }
      },
      ticket: () => app.getTicket().getTicket(),
      jsConfig: () => app.getUtils().buildJsSdkConfig(PAGE, ["chooseImage"]),
      code2Session: () => mini.getUtils().codeToSession("CODE-EASY")
    }
  }
}

const sdk = sdks[SDK]()
const attempt = async (feature) => {
  try {
    return await feature()
  } catch (error) {
    return { error: String(error?.message ?? error), code: error?.code }
  }
}

const run = async (phase) => {
  const results = { token: await attempt(sdk.token), message: await attempt(sdk.message) }
  results.upload = await attempt(sdk.upload)
  const mediaId = results.upload?.media_id
  results.download = mediaId === undefined ? { error: "no media_id" } : await attempt(() => sdk.download(mediaId))
  results.ticket = await attempt(sdk.ticket)
  results.jsConfig = await attempt(sdk.jsConfig)
  // What the page's signature was made with: the SDK's ticket, checked by the test against WeChat's.
  results.jsConfigSignedWith = typeof results.ticket === "string" && typeof results.jsConfig?.signature === "string" &&
    sha1(
        `jsapi_ticket=${results.ticket}&noncestr=${results.jsConfig.nonceStr}&timestamp=${results.jsConfig.timestamp}&url=${PAGE}`
      ) === results.jsConfig.signature
  if (phase === 1) results.code2Session = await attempt(sdk.code2Session)
  process.stdout.write(`${JSON.stringify({ phase, results })}\n`)
}

await run(1)
const lines = createInterface({ input: process.stdin })
for await (const _ of lines) break
await run(2)
process.exit(0)
