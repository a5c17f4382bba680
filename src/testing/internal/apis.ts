/**
 * A few of the business APIs WeChat and WeCom serve behind the token, so the
 * central server's proxy can be tested end to end: a JSON POST
 * (`cgi-bin/message/custom/send`, WeCom's `cgi-bin/message/send`), a
 * multipart media upload (`cgi-bin/media/upload?type=image`) and a binary
 * media download (`cgi-bin/media/get?media_id=`). Each checks the token the
 * way the real API does (a dead token answers 40001/40014/42001) and records
 * what it saw, so a test can assert the token, query and body that arrived.
 *
 * Bodies are never held: an upload is hashed as it streams in, and a
 * download is generated as it streams out, so a 10 MB transfer costs the
 * emulator a few chunks of memory, whoever measures the process.
 *
 * @internal
 */
import { Effect, Option, Stream } from "effect"
import { createHash } from "node:crypto"
import type { ApiCall, EmulatorRequest, EmulatorResponse } from "../WeChatEmulator.js"

/** What the APIs need from the emulator around them. */
export interface Host {
  readonly error: (errcode: number, errmsg: string) => EmulatorResponse
  /** The owner of a live WeChat token (`appId`), or WeChat's refusal; `undefined` for a token WeChat never issued. */
  readonly weChatOwner: (token: string, now: number) => string | EmulatorResponse | undefined
  /** The owner of a live WeCom token (`corpid/agent`), or WeCom's refusal; `undefined` for a token it never issued. */
  readonly weComOwner: (token: string, now: number) => string | EmulatorResponse | undefined
  /** The secret of a registered app, for the calls that take it instead of a token. */
  readonly secretOf: (appId: string) => string | undefined
}

type Api = "custom_send" | "wecom_message_send" | "media_upload" | "media_get" | "jscode2session" | "oauth2"

const apiOf = (path: string): Api | undefined => {
  switch (path) {
    case "/cgi-bin/message/custom/send":
      return "custom_send"
    case "/cgi-bin/message/send":
      return "wecom_message_send"
    case "/cgi-bin/media/upload":
      return "media_upload"
    case "/cgi-bin/media/get":
      return "media_get"
    case "/sns/jscode2session":
      return "jscode2session"
    case "/sns/oauth2/access_token":
      return "oauth2"
    default:
      return undefined
  }
}

/** Whether the emulator serves `path` here. */
export const serves = (path: string): boolean => apiOf(path) !== undefined

/** Whether `path` takes its body as a stream of bytes (`EmulatorRequest.stream`) instead of text. */
export const streamsBody = (path: string): boolean => apiOf(path) === "media_upload"

const MEDIA_TYPES = new Set(["image", "voice", "video", "thumb", "file"])

// Downloads are produced in chunks of this size, as a file server would send them.
const CHUNK_BYTES = 64 * 1024

/**
 * Byte `index` of a seeded media file: a pattern that is not periodic at any
 * chunk size, so a reordered or repeated chunk changes the hash.
 */
export const mediaByte = (index: number): number => (index * 31 + (index >>> 13)) & 0xff

const mediaChunk = (offset: number, size: number): Uint8Array => {
  const chunk = new Uint8Array(size)
  for (let i = 0; i < size; i++) chunk[i] = mediaByte(offset + i)
  return chunk
}

const json = (body: unknown): EmulatorResponse => ({
  _tag: "Respond",
  status: 200,
  contentType: "application/json; encoding=utf-8",
  body: JSON.stringify(body)
})

const isJsonObject = (body: string): boolean => {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === "object" && value !== null && !Array.isArray(value)
  } catch {
    return false
  }
}

/** @internal */
export const make = (host: Host) => {
  let calls: Array<ApiCall> = []
  const media = new Map<string, { readonly size: number }>()
  let seeded = 0

  /** The owner of the request's token, or the refusal WeChat (or WeCom) answers. */
  const ownerOf = (api: Api, token: string | null, now: number): string | EmulatorResponse => {
    if (token === null || token === "") return host.error(41001, "access_token missing")
    // The media APIs are the same paths on both hosts: whichever issued the token answers.
    const owner = api === "wecom_message_send" ? undefined : host.weChatOwner(token, now)
    if (owner !== undefined) return owner
    const weComOwner = api === "custom_send" ? undefined : host.weComOwner(token, now)
    return weComOwner ?? host.error(40001, "invalid credential, access_token is invalid or not latest")
  }

  const record = (
    request: EmulatorRequest,
    owner: string | undefined,
    body: { readonly bytes: number; readonly sha256: string },
    errcode: number
  ) => {
    const query: Record<string, string> = {}
    for (const [name, value] of request.query) if (name !== "access_token") query[name] = value
    calls.push({
      method: request.method,
      path: request.path,
      token: request.query.get("access_token") ?? undefined,
      owner,
      query,
      contentType: request.contentType,
      bodyBytes: body.bytes,
      bodySha256: body.sha256,
      errcode
    })
  }

  const textBody = (request: EmulatorRequest) => ({
    bytes: Buffer.byteLength(request.body),
    sha256: createHash("sha256").update(request.body).digest("hex")
  })

  // Hashed as it arrives: the upload is never held whole.
  const streamedBody = (request: EmulatorRequest) =>
    Stream.runFold(
      request.stream ?? Stream.make(new TextEncoder().encode(request.body)),
      { bytes: 0, hash: createHash("sha256") },
      (state, chunk) => ({ bytes: state.bytes + chunk.length, hash: state.hash.update(chunk) })
    ).pipe(Effect.map(({ bytes, hash }) => ({ bytes, sha256: hash.digest("hex") })))

  const errcodeOf = (response: EmulatorResponse): number => {
    if (response._tag !== "Respond" || response.stream !== undefined) return 0
    try {
      const value: unknown = JSON.parse(response.body)
      return typeof value === "object" && value !== null && "errcode" in value && typeof value.errcode === "number"
        ? value.errcode
        : 0
    } catch {
      return 0
    }
  }

  const download = (mediaId: string): EmulatorResponse => {
    const held = media.get(mediaId)
    if (held === undefined) return host.error(40007, "invalid media_id")
    const chunks = Stream.unfold(0, (offset) =>
      offset >= held.size
        ? Option.none()
        : Option.some([mediaChunk(offset, Math.min(CHUNK_BYTES, held.size - offset)), offset + CHUNK_BYTES] as const))
    return {
      _tag: "Respond",
      status: 200,
      contentType: "image/jpeg",
      body: "",
      stream: chunks,
      headers: {
        "content-disposition": `attachment; filename="${mediaId}.jpg"`,
        "content-length": String(held.size)
      }
    }
  }

  const answer = (
    api: Api,
    request: EmulatorRequest,
    owner: string,
    body: { readonly sha256: string; readonly bytes: number },
    now: number
  ) => {
    switch (api) {
      case "custom_send":
      case "wecom_message_send":
        if (request.method !== "POST") return host.error(43002, "require POST method")
        if (!isJsonObject(request.body)) return host.error(47001, "data format error")
        return json({ errcode: 0, errmsg: "ok" })
      case "media_upload": {
        if (request.method !== "POST") return host.error(43002, "require POST method")
        const type = request.query.get("type") ?? ""
        if (!MEDIA_TYPES.has(type)) return host.error(40004, "invalid media type")
        if (!/^multipart\/form-data;\s*boundary=/i.test(request.contentType ?? "") || body.bytes === 0) {
          return host.error(41005, "media data missing")
        }
        const mediaId = `${owner.includes("/") ? "3" : "M"}${body.sha256.slice(0, 40)}`
        media.set(mediaId, { size: body.bytes })
        return owner.includes("/")
          ? json({ errcode: 0, errmsg: "ok", type, media_id: mediaId, created_at: String(Math.floor(now / 1000)) })
          : json({ type, media_id: mediaId, created_at: Math.floor(now / 1000) })
      }
      case "media_get":
        if (request.method !== "GET") return host.error(43001, "require GET method")
        return download(request.query.get("media_id") ?? "")
      case "jscode2session":
      case "oauth2":
        return login(api, request)
    }
  }

  // Mini-program login and web OAuth take the app secret, not a token. The
  // user's openid and session are derived from the app and the code, so a
  // test can tell what WeChat answered for which code.
  const login = (api: "jscode2session" | "oauth2", request: EmulatorRequest): EmulatorResponse => {
    const appId = request.query.get("appid") ?? ""
    const secret = host.secretOf(appId)
    const code = request.query.get(api === "jscode2session" ? "js_code" : "code") ?? ""
    if (secret === undefined) return host.error(40013, "invalid appid")
    if (request.query.get("secret") !== secret) return host.error(40125, "invalid appsecret")
    if (request.query.get("grant_type") !== "authorization_code") return host.error(40002, "invalid grant_type")
    if (code === "") return host.error(41008, "missing code")
    const user = createHash("sha256").update(`${appId}\n${code}`).digest("base64url")
    return api === "jscode2session"
      ? json({ openid: `o${user.slice(0, 27)}`, session_key: user.slice(27, 51) })
      : json({
        access_token: `oauth-${user}`,
        expires_in: 7200,
        refresh_token: `refresh-${user}`,
        openid: `o${user.slice(0, 27)}`,
        scope: "snsapi_base"
      })
  }

  const handle = (request: EmulatorRequest, now: number): Effect.Effect<EmulatorResponse> => {
    const api = apiOf(request.path)
    if (api === undefined) {
      return Effect.succeed({ _tag: "Respond", status: 404, contentType: "text/plain", body: "404 page not found" })
    }
    if (api === "jscode2session" || api === "oauth2") {
      return Effect.sync(() => {
        const response = login(api, request)
        record(request, undefined, textBody(request), errcodeOf(response))
        return response
      })
    }
    const body = api === "media_upload" ? streamedBody(request) : Effect.sync(() => textBody(request))
    return Effect.map(body, (seen) => {
      const owner = ownerOf(api, request.query.get("access_token"), now)
      const response = typeof owner === "string" ? answer(api, request, owner, seen, now) : owner
      record(request, typeof owner === "string" ? owner : undefined, seen, errcodeOf(response))
      return response
    })
  }

  return {
    handle,
    controls: {
      calls: () => [...calls],
      resetCalls: () => {
        calls = []
      },
      seedMedia: (size: number): string => {
        seeded++
        const mediaId = `seeded-${seeded}-${size}`
        // An uploaded file's size is all the emulator keeps; a seeded one's content is `mediaByte`.
        media.set(mediaId, { size })
        return mediaId
      }
    }
  }
}
