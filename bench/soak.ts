/**
 * Soak: the server as it runs in production (compiled, `dist/bin.js serve`)
 * under mixed traffic for 30 minutes (`BENCH_SOAK_MINUTES`), against the
 * emulator over loopback, with tokens and tickets that live 2 minutes so the
 * engine refreshes something every few seconds all along. Four apps, a WeCom
 * corp with two agents, and a third-party platform with three authorizers
 * (pushed their verify ticket and authorizations by the emulator) are served
 * at once:
 *
 * - token, ticket and JS-SDK routes of each kind of owner, the app token on
 *   its fast path; compare-and-refresh with stale tokens (answered from
 *   memory), and every 5 minutes with the current one (a forced refresh);
 * - the proxy: JSON calls, 64 KiB uploads (held for a replay), 2 MiB chunked
 *   uploads (streamed), 256 KiB downloads, downloads the client drops halfway;
 * - refused requests (401, 403, 400, 404, 413), and `/metrics` and `/readyz`
 *   polled as Prometheus and a load balancer would.
 *
 * Workers pick each request at random by weight and are paced to a total
 * rate (`BENCH_SOAK_RATE`, 200 a second), each loop bounded in time and in count.
 * Every few seconds the bench reads the server's RSS from `/proc` and asks a
 * preloaded probe (`bench/heapProbe.mjs`) for its heap. The figures are the
 * least-squares slopes after a warm-up (the first 5 minutes), of RSS and of
 * the heap left after V8's own full collections, which is the live heap:
 * heap in use at a random instant is mostly garbage and swings by tens of MB.
 */
import { Effect, Random, Schedule } from "effect"
import { Agent, request as httpRequest } from "node:http"
import * as Emulator from "../src/testing/WeChatEmulator.js"
import { COMPONENT, registration } from "./credentialApps.js"
import { appIdOf, CLIENT_KEY, type Figure, SECRET } from "./Figure.js"
import {
  fetchWhenReady,
  headers as auth,
  rssMb,
  type ServerProcess,
  start,
  tokenServer,
  tsxScript
} from "./ServerProcess.js"

interface Plan {
  readonly seconds: number
  readonly warmUpSeconds: number
  readonly sampleSeconds: number
  /** Requests a second, all workers together (an upper bound: a loaded machine may serve fewer). */
  readonly rate: number
  readonly forcedRefreshSeconds: number
  /** The token server's command line: compiled in the full run, under tsx in the smoke run (CI has no build). */
  readonly server: ReadonlyArray<string>
  readonly reproduce: string
  readonly smoke: boolean
}

const minutes = Number(process.env["BENCH_SOAK_MINUTES"] ?? "30")
// `BENCH_SOAK_SNAPSHOTS=3,10`: the server writes a V8 heap snapshot at those minutes into
// `BENCH_SOAK_SNAPSHOT_DIR` (default: the repository root), to diff what a slope is made of.
const snapshotMinutes = (process.env["BENCH_SOAK_SNAPSHOTS"] ?? "").split(",").filter((m) => m !== "").map(Number)
const snapshotDir = process.env["BENCH_SOAK_SNAPSHOT_DIR"] ?? "."
const FULL: Plan = {
  seconds: minutes * 60,
  // Start-up, JIT and the first refresh of every credential are over well before.
  warmUpSeconds: Math.min(300, minutes * 20),
  sampleSeconds: 10,
  rate: Number(process.env["BENCH_SOAK_RATE"] ?? "200"),
  forcedRefreshSeconds: 300,
  server: tokenServer,
  reproduce: "npm run bench -- soak",
  smoke: false
}

// A minute, to prove every kind of request still gets its expected answer;
// its slopes are reported but judge nothing: over 40 s a single full
// collection moves the line more than any leak would.
const SMOKE: Plan = {
  seconds: 60,
  warmUpSeconds: 20,
  sampleSeconds: 2,
  rate: 100,
  forcedRefreshSeconds: 30,
  server: [...tsxScript("src/bin.ts"), "serve"],
  reproduce: "npm run bench:smoke",
  smoke: true
}

// One 8-byte slot kept per request, at 200 requests a second, grows the heap
// by 0.09 MB a minute: anything a request leaves behind shows above this.
const GOAL_HEAP_SLOPE = 0.1
const WORKERS = 16
const TOKEN_LIFETIME = "120 seconds"
// Refreshes 60–90 s into a token's 120 s life (the margin plus up to half of it as jitter).
const REFRESH_MARGIN_SECONDS = 60
// Stable tokens, at most one forced refresh in 30 s and 20 a day: the soak stays within both.
const MAX_FORCED_REFRESHES = 15
const REQUEST_TIMEOUT = "30 seconds"
const MB = 1024 * 1024

const APPS = [1, 2, 3, 4].map(appIdOf)
const CORP = "ww00000000000050a6"
const AGENTS = ["1000002", "1000003"]
const MERCHANTS = [0xa1, 0xa2, 0xa3].map(appIdOf)
const UNKNOWN_APP = appIdOf(0xdead)
const UPLOAD_SMALL = 64 * 1024
const UPLOAD_LARGE = 2 * MB
const DOWNLOAD = 256 * 1024

/** One request and the status it must be answered with. */
interface Call {
  readonly label: string
  readonly method: "GET" | "POST"
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  /** Bytes of the file in a multipart upload, sent in 64 KiB writes; with `chunked`, without a length. */
  readonly upload?: { readonly bytes: number; readonly chunked: boolean }
  /** The client hangs up once the first bytes of the answer arrive. */
  readonly dropHalfway?: boolean
  readonly expect: number
  /** A further check of a 200 answer's body (e.g. WeChat's errcode through the proxy). */
  readonly check?: (body: string) => boolean
}

interface Answer {
  readonly status: number
  readonly body: string
}

type Failure =
  /** A kept-alive socket the server closed as idle just as the request went out: retried once. */
  | { readonly _tag: "Reset" }
  | { readonly _tag: "Failed"; readonly message: string }

// The server closes idle keep-alive connections after 5 s.
const agent = new Agent({ keepAlive: true, maxSockets: WORKERS * 2 })
const KEEP = 4096

// A multipart body with one file part named `media`, as the SDKs send it: WeChat answers 41005 to a body
// that holds no file, so the bytes between these two are the file.
const UPLOAD_HEAD = Buffer.from(
  "--soak\r\ncontent-disposition: form-data; name=\"media\"; filename=\"soak.jpg\"\r\ncontent-type: image/jpeg\r\n\r\n"
)
const UPLOAD_TAIL = Buffer.from("\r\n--soak--\r\n")

// `fresh`: on a socket of its own (no keep-alive), for the one retry after a transport failure.
const exchange = (base: string, call: Call, fresh = false) =>
  Effect.async<Answer, Failure>((resume) => {
    const headers: Record<string, string> = { ...call.headers }
    if (call.upload !== undefined) {
      headers["content-type"] = "multipart/form-data; boundary=soak"
      if (!call.upload.chunked) {
        headers["content-length"] = String(UPLOAD_HEAD.length + call.upload.bytes + UPLOAD_TAIL.length)
      }
    }
    const req = httpRequest(
      `${base}${call.path}`,
      { method: call.method, headers, agent: fresh ? false : agent },
      (res) => {
        let body = ""
        res.setEncoding("latin1")
        res.on("data", (chunk: string) => {
          if (call.dropHalfway === true) {
            res.destroy()
            return resume(Effect.succeed({ status: res.statusCode ?? 0, body: "" }))
          }
          if (body.length < KEEP) body += chunk.slice(0, KEEP)
        })
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
        res.on("error", (error) => resume(Effect.fail({ _tag: "Failed", message: error.message })))
      }
    )
    req.on("error", (error: NodeJS.ErrnoException) =>
      resume(Effect.fail(
        req.reusedSocket && error.code === "ECONNRESET"
          ? { _tag: "Reset" }
          : { _tag: "Failed", message: `${error.code ?? error.message}` }
      )))
    if (call.upload === undefined) return void req.end(call.body)
    const { bytes } = call.upload
    const chunk = Buffer.alloc(64 * 1024, 7)
    let sent = 0
    const pump = () => {
      while (sent < bytes) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent))
        sent += part.length
        if (!req.write(part)) return void req.once("drain", pump)
      }
      req.end(UPLOAD_TAIL)
    }
    req.write(UPLOAD_HEAD)
    pump()
    return Effect.sync(() => req.destroy())
  })

interface Sample {
  readonly minute: number
  readonly rssMb: number
  readonly heapUsedMb: number
  /** Old generation after the last full collection, when one ran since the previous sample. */
  readonly liveMb: number | undefined
}

// Least squares: y = a + slope × minute.
const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  const n = points.length
  if (n < 2) return Number.NaN
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n
  const sxy = points.reduce((sum, [x, y]) => sum + (x - mx) * (y - my), 0)
  const sxx = points.reduce((sum, [x]) => sum + (x - mx) ** 2, 0)
  return sxy / sxx
}

// Asks the probe; its answer is the HEAP line numbered `asked`.
const probe = (server: ServerProcess, asked: number) =>
  Effect.sync(() => process.kill(server.pid, "SIGUSR2")).pipe(
    Effect.zipRight(
      Effect.suspend(() => {
        const line = new RegExp(`HEAP (\\{"asked":${asked},.*\\})`).exec(server.output())?.[1]
        return line === undefined ? Effect.fail("no answer") : Effect.succeed(line)
      }).pipe(
        // Up to a minute: a heap snapshot (BENCH_SOAK_SNAPSHOTS) holds the server for several seconds.
        Effect.retry({ times: 1_200, schedule: Schedule.spaced("50 millis") })
      )
    )
  )

const runWith = (plan: Plan): Effect.Effect<ReadonlyArray<Figure>, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const wechat = yield* Emulator.serve({
      apps: APPS.map((appId) => ({ appId, secret: SECRET })),
      corps: [{ corpId: CORP, apps: AGENTS.map((agent) => ({ agent, secret: SECRET })) }],
      components: [registration],
      tokenLifetime: TOKEN_LIFETIME,
      ticketLifetime: TOKEN_LIFETIME
    })
    const { emulator } = wechat
    const snapshots = snapshotMinutes.length === 0 ? [] : [
      // A signal nothing else uses; Node writes the snapshot on it.
      "--heapsnapshot-signal=SIGWINCH",
      `--diagnostic-dir=${snapshotDir}`
    ]
    const server = yield* start([...snapshots, "--import", "./bench/heapProbe.mjs", ...plan.server], {
      WECHAT_APPS: APPS.map((appId) => `${appId}:${SECRET}`).join(","),
      WECHAT_API_BASE_URL: wechat.url,
      WECOM_APPS: AGENTS.map((agent) => `${CORP}/${agent}:${SECRET}`).join(","),
      WECOM_API_BASE_URL: wechat.url,
      WECHAT_COMPONENTS: [COMPONENT, registration.secret, registration.messageToken, registration.encodingAesKey]
        .join(":"),
      CLIENT_KEYS: CLIENT_KEY,
      REFRESH_MARGIN_SECONDS: String(REFRESH_MARGIN_SECONDS),
      PORT: "0",
      LOG_FORMAT: "json"
    })
    const base = server.url
    // WeChat pushes the verify ticket, then every 10 minutes; three merchants authorize.
    yield* emulator.component.setPushUrl(COMPONENT, `${base}/wechat/components/${COMPONENT}/events`)
    yield* emulator.component.pushTicket(COMPONENT)
    for (const merchant of MERCHANTS) yield* emulator.component.authorize(COMPONENT, merchant)
    const mediaId = yield* emulator.apis.seedMedia(DOWNLOAD)
    for (const appId of APPS) yield* fetchWhenReady(`${base}/v1/apps/${appId}/access-token`)
    for (const merchant of MERCHANTS) {
      yield* fetchWhenReady(`${base}/v1/components/${COMPONENT}/authorizers/${merchant}/access-token`)
    }

    const json = { ...auth, "content-type": "application/json" }
    const page = JSON.stringify({ url: "https://shop.example.com/cart?id=7#top" })
    const message = JSON.stringify({ touser: "oOPENID", msgtype: "text", text: { content: "soak" } })
    const weComMessage = JSON.stringify({
      touser: "@all",
      msgtype: "text",
      agentid: 1000002,
      text: { content: "soak" }
    })
    const sent = (body: string) => body.includes("\"errcode\":0")
    const uploaded = (body: string) => body.includes("\"media_id\"")
    const app = (index: number) => `/v1/apps/${APPS[index % APPS.length]}`
    const agentPath = (index: number) => `/v1/wecom/${CORP}/agents/${AGENTS[index % AGENTS.length]}`
    const authorizer = (index: number) =>
      `/v1/components/${COMPONENT}/authorizers/${MERCHANTS[index % MERCHANTS.length]}`

    // Tokens seen, with when: one seen over a lifetime ago has been replaced since.
    const seen = new Map<string, number>()
    const staleToken = (now: number) => {
      for (const [token, at] of seen) if (now - at > 130_000) return token
      // Before any has aged: one WeChat never issued is just as stale.
      return "stale".padEnd(150, "x")
    }
    const remember = (body: string, now: number) => {
      const token = /"access_token":"([^"]+)"/.exec(body)?.[1]
      if (token === undefined || seen.has(token)) return
      seen.set(token, now)
      // Keep the newest few dozen.
      if (seen.size > 64) seen.delete(seen.keys().next().value!)
    }

    const mix: ReadonlyArray<readonly [weight: number, make: (i: number, now: number) => Call]> = [
      [
        40,
        (i) => ({
          label: "app access-token (fast path)",
          method: "GET",
          path: `${app(i)}/access-token`,
          headers: auth,
          expect: 200
        })
      ],
      [
        5,
        (i) => ({
          label: "app jsapi-ticket",
          method: "GET",
          path: `${app(i)}/jsapi-ticket`,
          headers: auth,
          expect: 200
        })
      ],
      [
        5,
        (i) => ({
          label: "app jssdk-config",
          method: "POST",
          path: `${app(i)}/jssdk-config`,
          headers: json,
          body: page,
          expect: 200
        })
      ],
      [4, (i, now) => ({
        label: "app refresh with a stale token",
        method: "POST",
        path: `${app(i)}/access-token/refresh`,
        headers: json,
        body: JSON.stringify({ stale_token: staleToken(now) }),
        expect: 200
      })],
      [10, (i) => ({
        label: "proxy JSON call",
        method: "POST",
        path: `${app(i)}/wechat/cgi-bin/message/custom/send`,
        headers: json,
        body: message,
        expect: 200,
        check: sent
      })],
      [2, (i) => ({
        label: "proxy upload 64 KiB",
        method: "POST",
        path: `${app(i)}/wechat/cgi-bin/media/upload?type=image`,
        headers: auth,
        upload: { bytes: UPLOAD_SMALL, chunked: false },
        expect: 200,
        check: uploaded
      })],
      [0.5, (i) => ({
        label: "proxy upload 2 MiB chunked",
        method: "POST",
        path: `${app(i)}/wechat/cgi-bin/media/upload?type=image`,
        headers: auth,
        upload: { bytes: UPLOAD_LARGE, chunked: true },
        expect: 200,
        check: uploaded
      })],
      [2, (i) => ({
        label: "proxy download 256 KiB",
        method: "GET",
        path: `${app(i)}/wechat/cgi-bin/media/get?media_id=${mediaId}`,
        headers: auth,
        expect: 200
      })],
      [0.5, (i) => ({
        label: "proxy download dropped halfway",
        method: "GET",
        path: `${app(i)}/wechat/cgi-bin/media/get?media_id=${mediaId}`,
        headers: auth,
        dropHalfway: true,
        expect: 200
      })],
      [
        3,
        (i) => ({
          label: "WeCom access-token",
          method: "GET",
          path: `${agentPath(i)}/access-token`,
          headers: auth,
          expect: 200
        })
      ],
      [
        1,
        (i) => ({
          label: "WeCom agent-ticket",
          method: "GET",
          path: `${agentPath(i)}/agent-ticket`,
          headers: auth,
          expect: 200
        })
      ],
      [
        1,
        (i) => ({
          label: "WeCom jssdk-config",
          method: "POST",
          path: `${agentPath(i)}/jssdk-config`,
          headers: json,
          body: page,
          expect: 200
        })
      ],
      [2, (i) => ({
        label: "WeCom proxy JSON call",
        method: "POST",
        path: `${agentPath(i)}/wechat/cgi-bin/message/send`,
        headers: json,
        body: weComMessage,
        expect: 200,
        check: sent
      })],
      [
        1,
        () => ({
          label: "component access-token",
          method: "GET",
          path: `/v1/components/${COMPONENT}/access-token`,
          headers: auth,
          expect: 200
        })
      ],
      [
        3,
        (i) => ({
          label: "authorizer access-token",
          method: "GET",
          path: `${authorizer(i)}/access-token`,
          headers: auth,
          expect: 200
        })
      ],
      [
        1,
        (i) => ({
          label: "authorizer jssdk-config",
          method: "POST",
          path: `${authorizer(i)}/jssdk-config`,
          headers: json,
          body: page,
          expect: 200
        })
      ],
      [2, (i) => ({
        label: "authorizer proxy JSON call",
        method: "POST",
        path: `${authorizer(i)}/wechat/cgi-bin/message/custom/send`,
        headers: json,
        body: message,
        expect: 200,
        check: sent
      })],
      [
        0.5,
        () => ({
          label: "authorizers page",
          method: "GET",
          path: `/v1/components/${COMPONENT}/authorizers?limit=10`,
          headers: auth,
          expect: 200
        })
      ],
      [2, (i) => ({ label: "401: no client key", method: "GET", path: `${app(i)}/access-token`, expect: 401 })],
      [1, (i) => ({
        label: "401: wrong key on the proxy",
        method: "POST",
        path: `${app(i)}/wechat/cgi-bin/message/custom/send`,
        headers: { authorization: "Bearer not-a-key-0123456789", "content-type": "application/json" },
        body: message,
        expect: 401
      })],
      [
        2,
        () => ({
          label: "404: unknown app",
          method: "GET",
          path: `/v1/apps/${UNKNOWN_APP}/access-token`,
          headers: auth,
          expect: 404
        })
      ],
      [
        1,
        (i) => ({
          label: "404: no such path",
          method: "GET",
          path: `${app(i)}/access-token/`,
          headers: auth,
          expect: 404
        })
      ],
      [1, (i) => ({
        label: "413: 20 KiB JS-SDK body",
        method: "POST",
        path: `${app(i)}/jssdk-config`,
        headers: json,
        body: JSON.stringify({ url: `https://shop.example.com/?q=${"x".repeat(20 * 1024)}` }),
        expect: 413
      })],
      [
        1,
        (i) => ({
          label: "400: malformed JSON",
          method: "POST",
          path: `${app(i)}/jssdk-config`,
          headers: json,
          body: "{\"url\":",
          expect: 400
        })
      ],
      [1, (i) => ({
        label: "403: proxy to cgi-bin/token",
        method: "GET",
        path: `${app(i)}/wechat/cgi-bin/token?grant_type=client_credential`,
        headers: auth,
        expect: 403
      })],
      [1, (i) => ({
        label: "400: access_token in a proxied query",
        method: "POST",
        path: `${app(i)}/wechat/cgi-bin/message/custom/send?access_token=mine`,
        headers: json,
        body: message,
        expect: 400
      })]
    ]
    const totalWeight = mix.reduce((sum, [weight]) => sum + weight, 0)

    const tally = {
      requests: 0,
      unexpected: 0,
      resets: 0,
      transportRetries: 0,
      upstreamResets: 0,
      forced: 0,
      byLabel: new Map<string, number>(),
      failures: new Map<string, { count: number; example: string }>()
    }
    const send = (call: Call) =>
      Effect.gen(function*() {
        // A transport failure (a kept-alive socket closed as the request went out, a reset on the client's
        // side) is counted apart and the request sent once more on a fresh socket; only a second failure,
        // or a wrong answer, counts against the server.
        const answer = yield* exchange(base, call).pipe(
          Effect.catchAll((failure) =>
            Effect.sync(() => {
              if (failure._tag === "Reset") tally.resets++
              else tally.transportRetries++
            }).pipe(Effect.zipRight(exchange(base, call, true)))
          ),
          Effect.timeoutFail({
            duration: REQUEST_TIMEOUT,
            onTimeout: (): Failure => ({ _tag: "Failed", message: `no answer in ${REQUEST_TIMEOUT}` })
          }),
          Effect.either
        )
        tally.requests++
        tally.byLabel.set(call.label, (tally.byLabel.get(call.label) ?? 0) + 1)
        // Counted by request and what went wrong; the first body of each is kept as the example.
        const failure: readonly [string, string] | undefined = answer._tag === "Left"
          ? [`${answer.left._tag === "Reset" ? "connection reset" : answer.left.message} on the retry too`, ""]
          : answer.right.status !== call.expect
          ? [`status ${answer.right.status}`, answer.right.body.slice(0, 200)]
          : call.check !== undefined && !call.check(answer.right.body)
          ? ["body", answer.right.body.slice(0, 200)]
          : undefined
        // The documented answer when WeChat closes a kept-alive socket just as the proxy reuses it: the
        // call may have been acted on, so it is not sent again. Counted apart, not hidden.
        if (failure !== undefined && /"upstream_unreachable".*ECONNRESET/.test(failure[1])) {
          tally.upstreamResets++
          return undefined
        }
        if (failure !== undefined) {
          tally.unexpected++
          const key = `${call.label}: ${failure[0]}`
          const known = tally.failures.get(key)
          tally.failures.set(key, { count: (known?.count ?? 0) + 1, example: known?.example ?? failure[1] })
          return undefined
        }
        return answer._tag === "Right" ? answer.right.body : undefined
      })

    const started = Date.now()
    const deadline = started + plan.seconds * 1000
    // Bounded in count as well as time: never more than the plan's rate would send.
    const budget = plan.rate * plan.seconds
    const spacing = (WORKERS * 1000) / plan.rate
    const worker = (index: number) =>
      Effect.gen(function*() {
        let i = index
        while (Date.now() < deadline && tally.requests < budget) {
          const began = Date.now()
          let pick = (yield* Random.next) * totalWeight
          const [, make] = mix.find(([weight]) => (pick -= weight) < 0) ?? mix[0]!
          const call = make(i++, began)
          const body = yield* send(call)
          if (body !== undefined && call.path.endsWith("/access-token")) remember(body, Date.now())
          const wait = spacing - (Date.now() - began)
          if (wait > 0) yield* Effect.sleep(wait)
        }
      })
    // Polled as Prometheus and a load balancer would; a forced refresh now and then.
    const every = (seconds: number, call: () => Call | undefined) =>
      Effect.gen(function*() {
        while (Date.now() + seconds * 1000 < deadline) {
          yield* Effect.sleep(`${seconds} seconds`)
          const next = call()
          if (next !== undefined) yield* send(next)
        }
      })
    const current = () => [...seen.keys()].at(-1)
    const forcedRefresh = () => {
      const token = current()
      if (token === undefined || tally.forced >= MAX_FORCED_REFRESHES) return undefined
      tally.forced++
      return {
        label: "refresh with the latest token seen (forced refresh)",
        method: "POST",
        path: `/v1/apps/${APPS[0]}/access-token/refresh`,
        headers: json,
        body: JSON.stringify({ stale_token: token }),
        expect: 200
      } as const
    }

    const samples: Array<Sample> = []
    let asked = 0
    let lastCollections = 0
    const sampler = Effect.gen(function*() {
      while (Date.now() < deadline) {
        const rss = rssMb(server.pid)
        const line = JSON.parse(yield* probe(server, ++asked)) as {
          heapUsed: number
          afterFullCollection: number | null
          fullCollections: number
        }
        const fresh = line.fullCollections > lastCollections && line.afterFullCollection !== null
        lastCollections = line.fullCollections
        samples.push({
          minute: (Date.now() - started) / 60_000,
          rssMb: rss ?? Number.NaN,
          heapUsedMb: line.heapUsed / MB,
          liveMb: fresh ? line.afterFullCollection! / MB : undefined
        })
        // The emulator logs every API call; the bench process must not grow either.
        yield* emulator.apis.resetCalls
        if (samples.length % Math.round(60 / plan.sampleSeconds) === 0) {
          const last = samples.at(-1)!
          console.error(
            `  soak ${last.minute.toFixed(0)}/${plan.seconds / 60} min: RSS ${last.rssMb.toFixed(1)} MB, heap ${
              last.heapUsedMb.toFixed(1)
            } MB, ${tally.requests.toLocaleString("en")} requests, ${tally.unexpected} unexpected`
          )
        }
        yield* Effect.sleep(`${plan.sampleSeconds} seconds`)
      }
    })

    const snapshotter = Effect.forEach(snapshotMinutes, (minute) =>
      Effect.sleep(Math.max(0, started + minute * 60_000 - Date.now())).pipe(
        Effect.zipRight(Effect.sync(() => process.kill(server.pid, "SIGWINCH"))),
        Effect.zipRight(Effect.sync(() => console.error(`  soak: heap snapshot asked at minute ${minute}`)))
      ), { discard: true })

    yield* Effect.all([
      ...Array.from({ length: WORKERS }, (_, index) =>
        worker(index)),
      snapshotter,
      every(15, () => ({ label: "GET /metrics", method: "GET", path: "/metrics", expect: 200 })),
      every(5, () => ({ label: "GET /readyz", method: "GET", path: "/readyz", expect: 200 })),
      every(plan.forcedRefreshSeconds, forcedRefresh),
      sampler
    ], { concurrency: "unbounded", discard: true })
    agent.destroy()

    const elapsedMinutes = (Date.now() - started) / 60_000
    const after = samples.filter((sample) =>
      sample.minute * 60 >= plan.warmUpSeconds
    )
    const live = after.flatMap((sample) => sample.liveMb === undefined ? [] : [[sample.minute, sample.liveMb] as const])
    const rss = after.map((sample) => sample.rssMb)
    const liveMb = live.map(([, mb]) => mb)
    const rssSlope = slope(after.map((sample) => [sample.minute, sample.rssMb] as const))
    const heapSlope = slope(live)
    const usedSlope = slope(after.map((sample) => [sample.minute, sample.heapUsedMb] as const))
    const rate = tally.requests / (elapsedMinutes * 60)
    const apps = Object.values((yield* emulator.stats).apps)
    const corp = yield* emulator.wecom.stats(CORP)
    const agents = yield* Effect.forEach(AGENTS, (agent) => emulator.wecom.stats(`${CORP}/${agent}`))
    const platform = yield* emulator.component.stats(COMPONENT)
    // Every token and ticket fetched: a refresh each, but for the first of each credential.
    const fetches = apps.reduce((sum, stats) => sum + stats.tokensIssued + stats.ticketCalls, 0) +
      corp.tokensIssued + corp.corpTicketCalls + agents.reduce((sum, stats) => sum + stats.agentTicketCalls, 0) +
      platform.componentTokensIssued + platform.authorizerTokensIssued

    const { reproduce, smoke } = plan
    const scenario = smoke ? "soak (1 min)" : `soak (${Math.round(elapsedMinutes)} min)`
    const warmUp = `after the first ${
      plan.warmUpSeconds % 60 === 0 ? `${plan.warmUpSeconds / 60} min` : `${plan.warmUpSeconds} s`
    }`
    const range = (values: ReadonlyArray<number>) =>
      values.length === 0 ? "none" : `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} MB`
    for (const [label, count] of [...tally.byLabel].sort(([a], [b]) => a.localeCompare(b))) {
      console.error(`  ${label}: ${count.toLocaleString("en")}`)
    }
    for (const [failure, { count, example }] of tally.failures) {
      console.error(`  UNEXPECTED ×${count}: ${failure} (e.g. ${example})`)
    }
    console.error(
      `  RSS ${warmUp}: ${range(rss)}; live heap after full collections: ${
        range(liveMb)
      } (${live.length} sampled); heap in use: ${range(after.map((sample) => sample.heapUsedMb))}`
    )
    const figures: ReadonlyArray<Figure> = [
      { scenario, name: "requests (mixed traffic)", value: tally.requests, unit: "", reproduce },
      { scenario, name: "requests a second", value: rate, unit: "req/s", reproduce },
      { scenario, name: "tokens and tickets fetched upstream", value: fetches, unit: "", reproduce },
      {
        scenario,
        name: "keep-alive sockets closed by the server as a request went out (retried)",
        value: tally.resets,
        unit: "",
        reproduce
      },
      {
        scenario,
        name: "other client-side transport failures (retried once on a fresh socket)",
        value: tally.transportRetries,
        unit: "",
        reproduce
      },
      {
        scenario,
        name: "proxied calls answered 502: WeChat closed a kept-alive socket as it was reused (documented)",
        value: tally.upstreamResets,
        unit: "",
        reproduce
      },
      {
        scenario,
        name: "unexpected answers (wrong status, body or transport error)",
        value: tally.unexpected,
        unit: "",
        goal: "= 0",
        met: tally.unexpected === 0,
        reproduce
      },
      { scenario, name: `RSS slope ${warmUp}`, value: rssSlope, unit: "MB/min", reproduce },
      { scenario, name: `RSS min ${warmUp}`, value: Math.min(...rss), unit: "MB", reproduce },
      { scenario, name: `RSS max ${warmUp}`, value: Math.max(...rss), unit: "MB", reproduce },
      {
        scenario,
        name: `live heap (after V8's full collections) slope ${warmUp}, ${live.length} collections`,
        value: heapSlope,
        unit: "MB/min",
        ...(smoke ? {} : { goal: `< ${GOAL_HEAP_SLOPE}`, met: heapSlope < GOAL_HEAP_SLOPE }),
        reproduce
      },
      { scenario, name: `live heap min ${warmUp}`, value: Math.min(...liveMb), unit: "MB", reproduce },
      { scenario, name: `live heap max ${warmUp}`, value: Math.max(...liveMb), unit: "MB", reproduce },
      {
        scenario,
        name: `live heap slope per request ${warmUp}`,
        value: (heapSlope * MB) / (rate * 60),
        unit: "bytes",
        reproduce
      },
      { scenario, name: `heap in use (garbage included) slope ${warmUp}`, value: usedSlope, unit: "MB/min", reproduce },
      {
        scenario,
        name: `full collections sampled ${warmUp}`,
        value: live.length,
        unit: "",
        // Without two there is no slope, and no verdict.
        ...(smoke ? {} : { goal: "≥ 2", met: live.length >= 2 }),
        reproduce
      }
    ]
    // A slope of fewer than two points, or the least of no values, is no figure (JSON would make it null).
    return figures.filter((figure) => Number.isFinite(figure.value))
  }))

export const run = runWith(FULL)

export const smoke = runWith(SMOKE)
