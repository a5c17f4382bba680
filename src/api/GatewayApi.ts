/**
 * The WeChat-compatible gateway in the OpenAPI document. The gateway answers
 * at WeChat's own paths, in front of the router, so no `HttpApiEndpoint`
 * describes it; this adds its own endpoints (the ones that take a client key
 * in place of the app secret) and a tag saying what happens on every other
 * path.
 *
 * @since 0.3.0
 */

type Operation = Record<string, unknown>

const wechatError = {
  type: "object",
  description: "WeChat's error shape, with HTTP 200 as WeChat answers",
  required: ["errcode", "errmsg"],
  properties: { errcode: { type: "integer" }, errmsg: { type: "string" } }
}

const tokenAnswer = (extra: Record<string, unknown> = {}) => ({
  type: "object",
  required: ["access_token", "expires_in"],
  properties: {
    ...extra,
    access_token: {
      type: "string",
      maxLength: 512,
      description: "A gateway token: use it as WeChat's access_token with this server; WeChat never sees it"
    },
    expires_in: { type: "integer", description: "7200, as WeChat; the token is accepted 300 s longer" }
  }
})

const query = (name: string, description: string) => ({
  name,
  in: "query",
  required: true,
  description,
  schema: { type: "string" }
})

const hasErrcode = (schema: Record<string, unknown>): boolean =>
  typeof schema.properties === "object" && schema.properties !== null && "errcode" in schema.properties

const operation = (
  id: string,
  summary: string,
  description: string,
  answer: Record<string, unknown>,
  input: Partial<Pick<Operation, "parameters" | "requestBody">>
): Operation => ({
  tags: ["gateway"],
  operationId: `gateway.${id}`,
  summary,
  description,
  ...input,
  // The client key travels where WeChat puts the secret, not in a header.
  security: [],
  responses: {
    "200": {
      description: "WeChat's shape: the answer, or `errcode`/`errmsg` (40125 wrong key, 40013 app not served to it)",
      content: {
        // An answer that has `errcode` itself (WeCom's, the tickets') covers the error shape too.
        "application/json": {
          schema: hasErrcode(answer) ? answer : { oneOf: [answer, wechatError] }
        }
      }
    },
    "408": {
      description: "The request did not arrive within the request timeout",
      content: { "application/json": { schema: { $ref: "#/components/schemas/RequestTimeout" } } }
    }
  }
})

const clientKey = query("secret", "A client key (`CLIENT_KEYS`) in place of the app secret")

/**
 * Adds the gateway's operations and tag to `spec`.
 *
 * @since 0.3.0
 * @category utils
 */
export const document = (spec: Record<string, unknown>): Record<string, unknown> => ({
  ...spec,
  tags: [
    ...(Array.isArray(spec.tags) ? spec.tags : []),
    {
      name: "gateway",
      description: "WeChat's own API at WeChat's own paths (`GATEWAY`, on by default), for SDKs that can change " +
        "their API host: a client key stands in for the app secret and gets a gateway token. Every path that is " +
        "not a route of this server takes `access_token=<gateway token>` and is forwarded to WeChat with the real " +
        "token, as the proxy forwards (paths that mint credentials refused, one replay on 40001/40014/42001, the " +
        "token masked); any other access_token gets 40001 and goes nowhere. Answers have WeChat's shape."
    }
  ],
  paths: {
    ...(typeof spec.paths === "object" ? spec.paths : {}),
    "/cgi-bin/token": {
      get: operation(
        "token",
        "A gateway token for a client key (WeChat's classic token endpoint)",
        "Nothing is fetched from WeChat. The token holds across real-token refreshes and works on every replica " +
          "with the same `CLIENT_KEYS`, until its key is removed.",
        tokenAnswer(),
        {
          parameters: [
            query("grant_type", "`client_credential`"),
            query("appid", "A configured app id the key may use"),
            clientKey
          ]
        }
      )
    },
    "/cgi-bin/stable_token": {
      post: operation(
        "stableToken",
        "A gateway token for a client key (WeChat's stable token endpoint)",
        "`force_refresh` never forces WeChat: the answer is a gateway token as for any call; a real token WeChat " +
          "rejects is refreshed once, for every caller, by the next forwarded call.",
        tokenAnswer(),
        {
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["grant_type", "appid", "secret"],
                  properties: {
                    grant_type: { type: "string", enum: ["client_credential"] },
                    appid: { type: "string" },
                    secret: { type: "string", description: "A client key in place of the app secret" },
                    force_refresh: { type: "boolean" }
                  }
                }
              }
            }
          }
        }
      )
    },
    "/cgi-bin/gettoken": {
      get: operation(
        "weComToken",
        "A gateway token for a WeCom app (WeCom's gettoken)",
        "The key stands for the corp's app it is scoped to; a key that may use several apps of the corp names one " +
          "as `corpsecret=AGENTID:CLIENT_KEY`.",
        tokenAnswer({ errcode: { type: "integer" }, errmsg: { type: "string" } }),
        {
          parameters: [
            query("corpid", "A configured WeCom corp id"),
            query("corpsecret", "A client key, or `AGENTID:CLIENT_KEY`")
          ]
        }
      )
    },
    "/cgi-bin/ticket/getticket": {
      get: operation(
        "ticket",
        "The app's jsapi or wx_card ticket, from the server (no WeChat call while one is held)",
        "WeCom's `cgi-bin/get_jsapi_ticket` and `cgi-bin/ticket/get?type=agent_config` are answered the same way.",
        {
          type: "object",
          required: ["errcode", "errmsg", "ticket", "expires_in"],
          properties: {
            errcode: { type: "integer" },
            errmsg: { type: "string" },
            ticket: { type: "string" },
            expires_in: { type: "integer" }
          }
        },
        { parameters: [query("access_token", "A gateway token"), query("type", "`jsapi` or `wx_card`")] }
      )
    },
    "/cgi-bin/component/api_component_token": {
      post: operation(
        "componentToken",
        "A gateway component token for a client key (a third-party platform's token endpoint)",
        "Nothing is fetched. `component_verify_ticket` is not used: WeChat pushes the ticket to the server. With " +
          "the token (`component_access_token=`), `api_query_auth` exchanges a code through the server and " +
          "`api_authorizer_token` answers a gateway authorizer token, both with the placeholder refresh token " +
          "`refreshtoken@@@held-by-the-token-server` (the real one stays on the server); other component " +
          "endpoints are forwarded with the real component token, refresh tokens in their answers replaced.",
        {
          type: "object",
          required: ["component_access_token", "expires_in"],
          properties: {
            component_access_token: { type: "string", maxLength: 512, description: "A gateway component token" },
            expires_in: { type: "integer" }
          }
        },
        {
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["component_appid", "component_appsecret"],
                  properties: {
                    component_appid: { type: "string" },
                    component_appsecret: { type: "string", description: "A client key in place of the AppSecret" },
                    component_verify_ticket: { type: "string", description: "Not used" }
                  }
                }
              }
            }
          }
        }
      )
    },
    "/sns/jscode2session": {
      get: operation(
        "code2Session",
        "Mini-program login, forwarded with the real secret in place of the client key",
        "`sns/oauth2/access_token` (web OAuth) is forwarded the same way. The client key never goes to WeChat; " +
          "the secret never comes back.",
        {
          type: "object",
          required: ["openid", "session_key"],
          properties: { openid: { type: "string" }, session_key: { type: "string" }, unionid: { type: "string" } }
        },
        {
          parameters: [
            query("appid", "A configured app id the key may use"),
            clientKey,
            query("js_code", "The code from wx.login"),
            query("grant_type", "`authorization_code`")
          ]
        }
      )
    }
  }
})
