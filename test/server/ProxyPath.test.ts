/**
 * The path policy on its own, as a table: what each spelling becomes, and
 * which paths are refused. The live proxy's use of it is in Proxy.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ProxyPath from "../../src/server/ProxyPath.js"

describe("ProxyPath", () => {
  it("normalize: escapes decoded once, dot segments resolved, empty segments dropped", () => {
    for (
      const [raw, path] of [
        ["cgi-bin/message/custom/send", "cgi-bin/message/custom/send"],
        ["cgi-bin//message/", "cgi-bin/message"],
        ["./cgi-bin/./message", "cgi-bin/message"],
        ["cgi-bin/x/../message", "cgi-bin/message"],
        ["cgi-bin/%2e%2E/wxa/msg_sec_check", "wxa/msg_sec_check"],
        ["CGI-BIN/Media/Get", "CGI-BIN/Media/Get"]
      ] as const
    ) {
      expect({ raw, result: ProxyPath.normalize(raw) }).toEqual({ raw, result: { path } })
    }
  })

  it("normalize: climbing above the root, a second escape layer, odd characters and empty paths are invalid", () => {
    for (
      const raw of [
        "cgi-bin%2Fmessage",
        "cgi-bin%5Cmessage",
        "cgi-bin/message.",
        "cgi-bin/message~",
        "cgi-bin/media.get",
        "cgi-bin/%",
        "..",
        "a/../..",
        "%2e%2e/x",
        "a%252fb",
        "a;b",
        "a\\b",
        "a b",
        "a%00b",
        "%E4%BD%A0",
        "%zz",
        "",
        "/",
        "./"
      ]
    ) {
      expect({ raw, code: (ProxyPath.normalize(raw) as { code?: string }).code }).toEqual({ raw, code: "invalid_path" })
    }
  })

  it("normalize: a segment outside the grammar whose plain reading is a refused path is path_not_allowed", () => {
    for (
      const [raw, code] of [
        ["cgi-bin/token.", "path_not_allowed"],
        ["cgi-bin/stable_token.", "path_not_allowed"],
        ["cgi-bin/gettoken.", "path_not_allowed"],
        ["cgi-bin/ticket./getticket", "path_not_allowed"],
        ["cgi-bin/component./api_component_token", "path_not_allowed"],
        ["cgi-bin/token~", "path_not_allowed"],
        ["cgi-bin/TOKEN%2E", "path_not_allowed"],
        ["cgi-bin/token;x=1", "path_not_allowed"],
        ["cgi-bin/token.json", "path_not_allowed"],
        ["cgi-bin/clear_quota.x", "path_not_allowed"],
        ["cgi-bin/tokens.", "invalid_path"],
        ["cgi-bin/STABLE~1", "invalid_path"],
        ["cgi-bin/%2574oken", "invalid_path"]
      ] as const
    ) {
      expect({ raw, code: (ProxyPath.normalize(raw) as { code?: string }).code }).toEqual({ raw, code })
    }
  })

  it("check: the credential paths are refused in any case, the rest forwarded", () => {
    for (
      const [path, refused] of [
        ["cgi-bin/token", true],
        ["Cgi-Bin/TOKEN", true],
        ["cgi-bin/stable_token", true],
        ["cgi-bin/gettoken", true],
        ["cgi-bin/get_jsapi_ticket", true],
        ["cgi-bin/ticket", true],
        ["cgi-bin/ticket/getticket", true],
        ["cgi-bin/component", true],
        ["cgi-bin/component/api_authorizer_token", true],
        ["cgi-bin/clear_quota", true],
        ["cgi-bin/clear_quota/v2", true],
        ["cgi-bin/tokens", false],
        ["cgi-bin/token_info", false],
        ["cgi-bin/tickets", false],
        ["cgi-bin/message/custom/send", false],
        ["cgi-bin/media/upload", false],
        ["wxa/getwxacodeunlimit", false]
      ] as const
    ) {
      expect({ path, refused: ProxyPath.check(path, undefined) !== undefined }).toEqual({ path, refused })
    }
  })

  it("check: PROXY_ALLOW covers a prefix and what is under it, segment by segment, and never lifts a refusal", () => {
    const allow = ["cgi-bin/message", "/wxa/", "cgi-bin"]
    expect(ProxyPath.check("cgi-bin/message/custom/send", ["cgi-bin/message"])).toBeUndefined()
    expect(ProxyPath.check("cgi-bin/message", ["cgi-bin/message"])).toBeUndefined()
    expect(ProxyPath.check("cgi-bin/messages/x", ["cgi-bin/message"])?.code).toBe("path_not_allowed")
    expect(ProxyPath.check("wxa/msg_sec_check", allow)).toBeUndefined()
    expect(ProxyPath.check("datacube/getusersummary", allow)?.code).toBe("path_not_allowed")
    expect(ProxyPath.check("cgi-bin/token", allow)?.code).toBe("path_not_allowed")
  })

  it("covers: a PROXY_ALLOW prefix is read in the form paths are checked in", () => {
    expect(ProxyPath.covers("cgi-bin//message/", "cgi-bin/message/custom/send")).toBe(true)
    expect(ProxyPath.covers("CGI-BIN/Message", "cgi-bin/message/custom/send")).toBe(true)
    expect(ProxyPath.covers("cgi-bin/%6dessage", "cgi-bin/message/custom/send")).toBe(true)
    // Outside the grammar it covers nothing: `cgi-bin/message.` must not be read as a wider `cgi-bin/message`.
    expect(ProxyPath.covers("cgi-bin/message.", "cgi-bin/message/custom/send")).toBe(false)
    expect(ProxyPath.covers("cgi-bin/media.get", "cgi-bin/media/get")).toBe(false)
    expect(ProxyPath.covers("cgi-bin/message", "cgi-bin/messages/x")).toBe(false)
  })

  it("prefixOf: the first two segments, in lower case", () => {
    expect(ProxyPath.prefixOf("cgi-bin/message/custom/send")).toBe("cgi-bin/message")
    expect(ProxyPath.prefixOf("WXA/getwxacode")).toBe("wxa/getwxacode")
    expect(ProxyPath.prefixOf("single")).toBe("single")
  })
})
