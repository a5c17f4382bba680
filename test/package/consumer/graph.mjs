// Records every module the imports below load (a resolve hook, so it sees
// the real module graph, not a grep), then prints the list as JSON.
import { register } from "node:module"
import { MessageChannel } from "node:worker_threads"

const { port1, port2 } = new MessageChannel()
const loaded = []
port1.on("message", (url) => loaded.push(url))
port1.unref()
register("./graph-hooks.mjs", { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] })

for (const specifier of process.argv.slice(2)) await import(specifier)
// Let the hook thread's last messages arrive.
await new Promise((resolve) => setTimeout(resolve, 100))
console.log(JSON.stringify(loaded))
