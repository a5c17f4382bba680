/**
 * The floor the serving bench compares against: bare `node:http` answering
 * the same JSON the token server sends (the body arrives in `BODY`), with no
 * routing, auth or framework. Prints its URL once it listens.
 */
import { createServer } from "node:http"

const body = process.env["BODY"] ?? "{}"
const length = String(Buffer.byteLength(body))
const server = createServer((_request, response) => {
  response.writeHead(200, { "content-type": "application/json", "content-length": length })
  response.end(body)
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address !== null && typeof address === "object") console.log(`Listening on http://127.0.0.1:${address.port}`)
})
