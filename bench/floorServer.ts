/**
 * Effect's own HTTP floor for the serving bench: `@effect/platform-node`'s
 * server answering the same JSON (`BODY`) from one route, with no API
 * schema, auth, metrics or engine. Prints its URL once it listens.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import { createServer } from "node:http"

const body = process.env["BODY"] ?? "{}"

HttpRouter.empty.pipe(
  HttpRouter.get("/v1/apps/:appId/access-token", HttpServerResponse.text(body, { contentType: "application/json" })),
  HttpServer.serve(),
  HttpServer.withLogAddress,
  Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.launch,
  NodeRuntime.runMain
)
