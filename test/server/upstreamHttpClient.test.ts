import * as HttpClient from "@effect/platform/HttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as UpstreamHttpClient from "../../src/server/internal/upstreamHttpClient.js"

describe("the server's upstream HttpClient", () => {
  it.scopedLive("calls one host over one kept-alive connection, and reads each answer whole", () =>
    Effect.gen(function*() {
      const connections: Array<Net.Socket> = []
      const server = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const server = Http.createServer((request, response) => {
            response.setHeader("content-type", "application/json")
            response.end(JSON.stringify({ path: request.url }))
          })
          server.on("connection", (socket) => connections.push(socket))
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            server.closeAllConnections()
          })
      )
      const base = `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`
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
})
