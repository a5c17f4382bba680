/**
 * deploy/nginx/effect-wechat-token.conf passes `nginx -t` inside a wrapper
 * config (the file belongs in the http context), with a self-signed
 * certificate made by openssl in place of the deployment's, and exposes only
 * the push intakes on its public listener.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const site = readFileSync(new URL("../../deploy/nginx/effect-wechat-token.conf", import.meta.url).pathname, "utf8")

// Debian puts nginx in /usr/sbin, which a user's PATH may lack.
const nginx = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"

const serverBlocks = site.split(/^server \{$/m).slice(1)

describe("deploy/nginx", () => {
  it("passes nginx -t with a self-signed certificate", () => {
    const dir = mkdtempSync(join(tmpdir(), "ewt-nginx-"))
    try {
      const made = spawnSync("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=tokens.example.com",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem")
      ], { encoding: "utf8" })
      expect(made.status, made.stderr).toBe(0)
      const certificates = site
        .replace(/\/etc\/nginx\/tls\/[\w.-]+\.crt/g, join(dir, "cert.pem"))
        .replace(/\/etc\/nginx\/tls\/[\w.-]+\.key/g, join(dir, "key.pem"))
      writeFileSync(join(dir, "site.conf"), certificates)
      writeFileSync(
        join(dir, "nginx.conf"),
        `pid ${join(dir, "nginx.pid")};\nerror_log stderr;\nevents {}\nhttp {\n  include ${
          join(dir, "site.conf")
        };\n}\n`
      )
      const tested = spawnSync(nginx, ["-t", "-e", "stderr", "-p", dir, "-c", join(dir, "nginx.conf")], {
        encoding: "utf8"
      })
      expect(tested.error, "nginx is missing: .ci/ensure-tools.sh installs it").toBeUndefined()
      expect(tested.stderr).toContain("test is successful")
      expect(tested.stderr).not.toMatch(/\[(warn|emerg|alert|crit)\]/)
      expect(tested.status).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("proxies only the push intakes on the public listener; the rest only to an allow-list, streamed", () => {
    const [publicServer, privateServer] = serverBlocks
    expect(serverBlocks).toHaveLength(2)
    expect(publicServer).toMatch(/listen 443 ssl;/)
    const locations = [...publicServer!.matchAll(/location (?:\S+ )?(\S+) \{/g)].map((match) => match[1])
    expect(locations).toEqual(["/wechat/components/", "/wecom/suites/", "/"])
    expect(publicServer!.match(/proxy_pass/g)).toHaveLength(2)
    // WeCom verifies a suite's command URL with a GET; the component intake takes only POSTs.
    expect(publicServer).toMatch(/location \^~ \/wechat\/components\/ \{\s*limit_except POST \{ deny all; \}/)
    expect(publicServer).toMatch(/location \^~ \/wecom\/suites\/ \{\s*limit_except GET POST \{ deny all; \}/)
    expect(publicServer).toMatch(/location \/ \{\s*return 404;/)
    expect(privateServer).toMatch(/deny all;/)
    expect(privateServer).toMatch(/proxy_buffering off;/)
    expect(privateServer).toMatch(/proxy_request_buffering off;/)
  })
})
