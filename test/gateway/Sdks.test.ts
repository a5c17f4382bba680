/**
 * Real WeChat SDKs from npm, unmodified but for their API host, against the
 * gateway on the emulator: `co-wechat-api` (`api.prefix`), `wechat-api`
 * (`api.endpoint`) and `node-easywechat` (`http.baseURL`, official account
 * and mini program), installed in test/gateway/sdk/ by .ci/gateway-sdks.sh
 * (`npm test`'s pretest). Each SDK runs in a process of its own, through a
 * recording front that keeps every byte the server answered it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync } from "node:fs"
import { createServer, request as httpRequest } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { APP, KEY, SECRET, startProxyStack } from "../server/ProxyStack.js"
import { awaitReady } from "../support/serverStack.js"

const sdkDir = new URL("./sdk/", import.meta.url).pathname

/** Every answer the server gave the SDK, as text, and the URLs and bodies the SDK sent. */
interface Recording {
  readonly url: string
  readonly answers: Array<string>
  readonly requests: Array<string>
}

// A loopback front that forwards to `target` and keeps what passes in both directions.
const recordingFront = (target: string) =>
  Effect.acquireRelease(
    Effect.async<Recording & { readonly close: () => void }>((resume) => {
      const answers: Array<string> = []
      const requests: Array<string> = []
      const server = createServer((incoming, outgoing) => {
        const sent: Array<Buffer> = []
        incoming.on("data", (chunk: Buffer) => sent.push(chunk))
        const upstream = httpRequest(`${target}${incoming.url}`, {
          method: incoming.method,
          headers: { ...incoming.headers, host: new URL(target).host }
        }, (answer) => {
          const received: Array<Buffer> = []
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.on("data", (chunk: Buffer) => {
            received.push(chunk)
            outgoing.write(chunk)
          })
          answer.on("end", () => {
            answers.push(Buffer.concat(received).toString("latin1"))
            outgoing.end()
          })
        })
        incoming.on("end", () => requests.push(`${incoming.url} ${Buffer.concat(sent).toString("latin1")}`))
        incoming.pipe(upstream)
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}`,
          answers,
          requests,
          close: () => {
            server.closeAllConnections()
            server.close()
          }
        }))
      })
    }),
    (front) => Effect.sync(front.close)
  )

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each SDK's answers, asserted field by field
type Results = Record<string, any>

/** Runs the driver for `sdk`: phase 1, then `between`, then phase 2. */
const drive = (sdk: string, gateway: string, between: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [join(sdkDir, "drive.mjs")], {
          cwd: sdkDir,
          env: {
            PATH: process.env["PATH"] ?? "",
            SDK: sdk,
            GATEWAY: gateway,
            APP_ID: APP,
            CLIENT_KEY: KEY,
            WORK: mkdtempSync(join(tmpdir(), `gateway-${sdk}-`))
          }
        })
      ),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    const next = Effect.promise(async () => {
      const line = await lines.next()
      if (line.done === true) throw new Error(`${sdk}: the driver ended early:\n${stderr}`)
      return JSON.parse(line.value) as { readonly phase: number; readonly results: Results }
    })
    const first = yield* next
    yield* between
    child.stdin.write("go\n")
    const second = yield* next
    return { first: first.results, second: second.results }
  })

const DEAD = new Set([40001, 40014, 42001])

describe.each(["co-wechat-api", "wechat-api", "node-easywechat"])("SDK %s through the gateway", (sdk) => {
  it.scopedLive("token, message, media up and down, JS-SDK ticket and config, login; a real-token kill unseen", () =>
    Effect.gen(function*() {
      if (!existsSync(join(sdkDir, "node_modules", sdk))) {
        return yield* Effect.dieMessage(`${sdk} is not installed: run bash .ci/gateway-sdks.sh (npm test does)`)
      }
      const { base, emulator, engine } = yield* startProxyStack({ gateway: true })
      yield* awaitReady(base)
      const front = yield* recordingFront(base)
      const issuedAtStart = (yield* emulator.appStats(APP)).tokensIssued
      const { first, second } = yield* drive(
        sdk,
        front.url,
        // Another process refreshed long ago: every real token of the app dies now.
        emulator.killTokens(APP)
      )

      for (const [phase, results] of [["before the kill", first], ["after the kill", second]] as const) {
        expect({ phase, token: results.token }).toEqual({ phase, token: expect.stringMatching(/^gw1\./) })
        expect({ phase, message: results.message }).toEqual({ phase, message: { errcode: 0, errmsg: "ok" } })
        expect({ phase, upload: results.upload }).toEqual({
          phase,
          upload: expect.objectContaining({ type: "image", media_id: expect.any(String) })
        })
        // The emulator serves back the very file uploaded: the 3,000 bytes the driver made.
        expect({ phase, download: results.download.bytes === 3000 })
          .toEqual({ phase, download: true })
        expect({ phase, ticketValid: yield* emulator.isValidTicket(results.ticket, "jsapi") }).toEqual({
          phase,
          ticketValid: true
        })
        expect({ phase, signed: results.jsConfigSignedWith, appId: results.jsConfig.appId }).toEqual({
          phase,
          signed: true,
          appId: APP
        })
      }
      if (sdk === "wechat-api") {
        expect(first.code2Session).toEqual({ unsupported: "wechat-api has no mini-program login" })
      } else {
        expect(first.code2Session).toMatchObject({
          openid: expect.stringMatching(/^o/),
          session_key: expect.any(String)
        })
      }
      // The kill cost one refresh, whatever the SDK did.
      expect((yield* emulator.appStats(APP)).tokensIssued - issuedAtStart).toBe(1)

      // WeChat saw only real tokens (the dead one answered 40001 once, then replayed) and the real secret.
      const calls = yield* emulator.apis.calls
      const realTokens = new Set([...calls.map((call) => call.token ?? ""), (yield* engine.get(APP)).value])
      realTokens.delete("")
      for (const call of calls) {
        if (call.path.startsWith("/sns/")) expect(call.query["secret"]).toBe(SECRET)
        else expect(call.owner === APP || DEAD.has(call.errcode)).toBe(true)
      }
      const seenUpstream = JSON.stringify(calls)
      expect(seenUpstream).not.toContain(KEY)
      expect(seenUpstream).not.toContain("gw1.")
      // The SDK never got a real token, nor the secret, in any answer.
      expect(front.answers.length).toBeGreaterThan(0)
      for (const answer of front.answers) {
        expect(answer).not.toContain(SECRET)
        for (const token of realTokens) expect(answer.includes(token)).toBe(false)
      }
      expect(front.requests.join("\n")).not.toContain(SECRET)
    }))
})
