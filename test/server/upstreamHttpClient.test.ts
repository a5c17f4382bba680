import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Either, Option, Stream } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Upstream from "../../src/internal/upstream.js"
import * as UpstreamHttpClient from "../../src/server/internal/upstreamHttpClient.js"

// A loopback server answering with `handler`; every connection it accepted is kept.
const listen = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly connections: Array<Net.Socket> }>((resume) => {
      const connections: Array<Net.Socket> = []
      const server = Http.createServer(handler)
      server.on("connection", (socket) => connections.push(socket))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, connections })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ connections, server }) => ({
    base: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`,
    connections
  })))

// The body a request carried, as the server read it.
const readBody = (request: Http.IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

describe("the server's upstream HttpClient", () => {
  it.scopedLive("calls one host over one kept-alive connection, and reads each answer whole", () =>
    Effect.gen(function*() {
      const { base, connections } = yield* listen((request, response) => {
        response.setHeader("content-type", "application/json")
        response.end(JSON.stringify({ path: request.url }))
      })
      const client = yield* HttpClient.HttpClient
      const answers = []
      for (const path of ["/cgi-bin/token?a=1", "/cgi-bin/token?a=2", "/cgi-bin/token?a=3"]) {
        const response = yield* client.get(`${base}${path}`)
        answers.push(yield* response.json)
      }
      expect(answers).toEqual([
        { path: "/cgi-bin/token?a=1" },
        { path: "/cgi-bin/token?a=2" },
        { path: "/cgi-bin/token?a=3" }
      ])
      expect(connections).toHaveLength(1)
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("sends a JSON body, its URL parameters and headers, and answers status, headers and cookies", () =>
    Effect.gen(function*() {
      const { base } = yield* listen((request, response) => {
        void readBody(request).then((body) => {
          response.setHeader("set-cookie", ["a=1; Path=/", "b=2"])
          response.setHeader("x-echo", request.headers["x-asked"] ?? "")
          response.writeHead(201, { "content-type": "application/json" })
          response.end(JSON.stringify({ method: request.method, url: request.url, body: JSON.parse(body) }))
        })
      })
      const client = yield* HttpClient.HttpClient
      const response = yield* client.execute(
        HttpClientRequest.post(`${base}/cgi-bin/component/api_authorizer_token`).pipe(
          HttpClientRequest.setUrlParams({ component_access_token: "T 1" }),
          HttpClientRequest.setHeader("x-asked", "yes"),
          HttpClientRequest.bodyUnsafeJson({ authorizer_appid: "wx1" })
        )
      )
      expect(response.status).toBe(201)
      expect(response.headers["x-echo"]).toBe("yes")
      expect(response.cookies.cookies["a"]?.value).toBe("1")
      expect(response.cookies.cookies["b"]?.value).toBe("2")
      // Read twice: the second reader gets the same bytes.
      expect(yield* response.json).toEqual({
        method: "POST",
        url: "/cgi-bin/component/api_authorizer_token?component_access_token=T+1",
        body: { authorizer_appid: "wx1" }
      })
      expect(JSON.parse(yield* response.text)).toMatchObject({ method: "POST" })
      expect(Chunk.size(yield* Stream.runCollect(response.stream))).toBe(1)
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("a streamed body goes out whole, through the platform's client on the same agents", () =>
    Effect.gen(function*() {
      const { base, connections } = yield* listen((request, response) => {
        void readBody(request).then((body) => response.end(body))
      })
      const client = yield* HttpClient.HttpClient
      const streamed = yield* client.execute(
        HttpClientRequest.post(`${base}/upload`).pipe(
          HttpClientRequest.bodyStream(Stream.make("one ", "two ", "three").pipe(Stream.encodeText))
        )
      )
      expect(yield* streamed.text).toBe("one two three")
      const plain = yield* client.get(`${base}/again`)
      expect(plain.status).toBe(200)
      expect(connections).toHaveLength(1)
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("a refused connection, a malformed URL and a request Node cannot send are typed request errors", () =>
    Effect.gen(function*() {
      const client = yield* HttpClient.HttpClient
      const refused = yield* Effect.flip(client.get("http://127.0.0.1:9/cgi-bin/token"))
      expect(refused._tag).toBe("RequestError")
      expect(refused.reason).toBe("Transport")
      const malformed = yield* Effect.flip(client.get("http://[::1/cgi-bin/token"))
      expect(malformed._tag).toBe("RequestError")
      expect(malformed.reason).toBe("InvalidUrl")
      const unsendable = yield* Effect.flip(client.get("ftp://127.0.0.1/cgi-bin/token"))
      expect(unsendable).toMatchObject({ _tag: "RequestError", reason: "Encode" })
      const badHeader = yield* Effect.flip(
        client.execute(HttpClientRequest.get("http://127.0.0.1:9/").pipe(HttpClientRequest.setHeader("x-a", "1\r\n2")))
      )
      expect(badHeader).toMatchObject({ _tag: "RequestError", reason: "Encode" })
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("a body larger than the reader's limit is a decode error, and its connection is closed", () =>
    Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      const { base } = yield* listen((_, response) => {
        response.socket?.on("close", () => Effect.runSync(Deferred.succeed(closed, undefined)))
        response.write("x".repeat(64 * 1024))
        response.write("x".repeat(64 * 1024))
      })
      const client = yield* HttpClient.HttpClient
      const response = yield* client.get(`${base}/big`)
      const failed = yield* Effect.flip(IncomingMessage.withMaxBodySize(response.text, Option.some(1024)))
      expect(failed._tag).toBe("ResponseError")
      expect(failed.reason).toBe("Decode")
      expect(yield* Deferred.await(closed).pipe(Effect.timeout(Duration.seconds(1)), Effect.either)).toEqual(
        Either.right(undefined)
      )
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("a call cut short while waiting for the head or the body closes its connection", () =>
    Effect.gen(function*() {
      const closed: Array<string> = []
      const { base } = yield* listen((request, response) => {
        request.socket.on("close", () => closed.push(request.url ?? ""))
        // `/silent` never answers; `/drip` sends its head and one byte of a longer body.
        if (request.url === "/drip") {
          response.writeHead(200, { "content-length": "100" })
          response.write("{")
        }
      })
      const send = yield* Upstream.makeSend(Duration.millis(200))
      for (const path of ["/silent", "/drip"]) {
        const failed = yield* Effect.flip(send("api_authorizer_token", HttpClientRequest.get(`${base}${path}`)))
        expect(failed).toMatchObject({ _tag: "UpstreamUnavailable", reason: "timeout" })
      }
      // The server sees both connections end once its side notices (a second at most).
      yield* Effect.sleep(Duration.millis(50)).pipe(Effect.repeat({ until: () => closed.length === 2, times: 20 }))
      expect(closed.sort()).toEqual(["/drip", "/silent"])
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))

  it.scopedLive("an answer that breaks off is a typed error, not a hang", () =>
    Effect.gen(function*() {
      const { base } = yield* listen((request, response) => {
        response.writeHead(200, { "content-length": "100" })
        response.write("{\"access")
        setTimeout(() => request.socket.destroy(), 20)
      })
      const send = yield* Upstream.makeSend(Duration.seconds(5))
      const failed = yield* Effect.either(send("api_authorizer_token", HttpClientRequest.get(`${base}/cut`)))
      expect(Either.isLeft(failed) && failed.left).toMatchObject({ _tag: "UpstreamUnavailable", reason: "network" })
    }).pipe(Effect.provide(UpstreamHttpClient.layer)))
})
