import { describe, expect, it } from "@effect/vitest"
import * as RefreshPolicy from "../src/RefreshPolicy.js"
import * as WeChatError from "../src/WeChatError.js"

const token = { appId: "wx0123456789abcdef", site: "token-endpoint" } as const
const api = { appId: "wx0123456789abcdef", site: "api-call" } as const

describe("WeChatError.fromErrcode", () => {
  it("classifies WeChat's global return codes", () => {
    expect(WeChatError.fromErrcode(-1, "system error", api)._tag).toBe("UpstreamUnavailable")
    expect(WeChatError.fromErrcode(40001, "invalid credential", api)._tag).toBe("InvalidCredential")
    expect(WeChatError.fromErrcode(40014, "invalid access_token", api)._tag).toBe("InvalidCredential")
    expect(WeChatError.fromErrcode(42001, "access_token expired", api)._tag).toBe("InvalidCredential")
    expect(WeChatError.fromErrcode(40013, "invalid appid", token)._tag).toBe("InvalidAppId")
    expect(WeChatError.fromErrcode(40125, "invalid appsecret", token)._tag).toBe("InvalidAppSecret")
    expect(WeChatError.fromErrcode(45011, "minute quota", token)._tag).toBe("QuotaExceeded")
    expect(WeChatError.fromErrcode(89503, "risk", token)._tag).toBe("AdminConfirmationRequired")
    expect(WeChatError.fromErrcode(40002, "invalid grant_type", token)._tag).toBe("WeChatApiError")
    expect(WeChatError.fromErrcode(41004, "appsecret missing", token)._tag).toBe("WeChatApiError")
  })

  it("reads 40001 on the token endpoint as a wrong secret", () => {
    const error = WeChatError.fromErrcode(40001, "invalid credential, access_token is invalid or not latest", token)
    expect(error._tag).toBe("InvalidAppSecret")
    expect(RefreshPolicy.failureClass(error)).toBe("configuration")
  })

  it("names the refused IP from the errmsg", () => {
    const error = WeChatError.fromErrcode(
      40164,
      "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist",
      token
    )
    expect(error).toMatchObject({ _tag: "IpNotWhitelisted", ip: "203.0.113.9" })
    expect(error.message).toContain("203.0.113.9")
    expect(WeChatError.causeCode(error)).toBe("40164")
  })

  it("tells the daily quota from the minute quota and mentions clear_quota", () => {
    const day = WeChatError.fromErrcode(45009, "reach max api daily quota limit", token)
    expect(RefreshPolicy.failureClass(day)).toBe("quota")
    expect(day.message).toContain("clear_quota")
    expect(RefreshPolicy.failureClass(WeChatError.fromErrcode(45011, "minute", token))).toBe("transient")
  })
})
