/**
 * The proxy routes as a contract: their patterns, and their operations in
 * the OpenAPI document. The server serves them in front of the `HttpApi`
 * router (their bodies stream), so no `HttpApiEndpoint` describes them; this
 * adds them to the document the API generates.
 *
 * @since 0.3.0
 */

/**
 * The route of official accounts and mini programs.
 *
 * @since 0.3.0
 * @category constants
 */
export const APP_PATTERN = "/v1/apps/{appId}/wechat/{path}"

/**
 * The route of WeCom apps.
 *
 * @since 0.3.0
 * @category constants
 */
export const WECOM_PATTERN = "/v1/wecom/{corpId}/agents/{agent}/wechat/{path}"

/**
 * The route of a third-party platform's authorizers.
 *
 * @since 0.3.0
 * @category constants
 */
export const AUTHORIZER_PATTERN = "/v1/components/{componentAppId}/authorizers/{authorizerAppId}/wechat/{path}"

/**
 * The route of the corps that installed a WeCom suite.
 *
 * @since 0.3.0
 * @category constants
 */
export const SUITE_CORP_PATTERN = "/v1/wecom-suites/{suiteId}/corps/{corpId}/wechat/{path}"

/**
 * Every proxy route, and the methods it forwards (HEAD too, wherever GET).
 *
 * @since 0.3.0
 * @category constants
 */
export const ROUTES: ReadonlyArray<{ readonly pattern: string; readonly methods: ReadonlyArray<string> }> = [
  APP_PATTERN,
  WECOM_PATTERN,
  AUTHORIZER_PATTERN,
  SUITE_CORP_PATTERN
].map((pattern) => ({ pattern, methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] }))

type Operation = Record<string, unknown>

const error = (schema: string, description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } }
})

const pathParameter = {
  name: "path",
  in: "path",
  required: true,
  description:
    "The WeChat API path, slashes included, e.g. `cgi-bin/message/custom/send`. Paths that mint or reset credentials are refused (403).",
  schema: { type: "string" }
}

const ownerParameters: Record<string, ReadonlyArray<Record<string, unknown>>> = {
  [APP_PATTERN]: [
    { name: "appId", in: "path", required: true, description: "A configured app id", schema: { type: "string" } }
  ],
  [AUTHORIZER_PATTERN]: [
    {
      name: "componentAppId",
      in: "path",
      required: true,
      description: "A configured third-party platform (component) app id",
      schema: { type: "string" }
    },
    {
      name: "authorizerAppId",
      in: "path",
      required: true,
      description: "The app id of an account authorized to it",
      schema: { type: "string" }
    }
  ],
  [SUITE_CORP_PATTERN]: [
    {
      name: "suiteId",
      in: "path",
      required: true,
      description: "A suite id configured in `WECOM_SUITES`",
      schema: { type: "string" }
    },
    {
      name: "corpId",
      in: "path",
      required: true,
      description: "The corp id of a corp that installed the suite's app",
      schema: { type: "string" }
    }
  ],
  [WECOM_PATTERN]: [
    {
      name: "corpId",
      in: "path",
      required: true,
      description: "A configured WeCom corp id",
      schema: { type: "string" }
    },
    {
      name: "agent",
      in: "path",
      required: true,
      description: "The app's AgentId (or label) in `WECOM_APPS`",
      schema: { type: "string" }
    }
  ]
}

const operation = (pattern: string, method: "get" | "post", id: string, summary: string): Operation => ({
  tags: ["proxy"],
  operationId: `proxy.${id}`,
  summary,
  description:
    "Forwarded to WeChat with the caller's query (without `access_token`, which is refused with 400), body and " +
    "`Content-Type`, and the current token added. The answer is WeChat's own (status, `Content-Type`, body, " +
    "streamed); on errcode 40001/40014/42001 the call is replayed once with a refreshed token. Every other method " +
    "is forwarded the same way.",
  parameters: [...(ownerParameters[pattern] ?? []), pathParameter],
  security: [{ bearer: [] }],
  ...(method === "post"
    ? {
      requestBody: {
        description: "Any body WeChat takes (JSON, multipart media), up to `PROXY_MAX_BODY_BYTES`",
        content: { "*/*": { schema: { type: "string", format: "binary" } } }
      }
    }
    : {}),
  responses: {
    "200": {
      description:
        "WeChat's answer, as WeChat sent it (JSON with `errcode`, or a media file), with any access token in it masked by as many `*`",
      content: { "*/*": { schema: { type: "string", format: "binary" } } }
    },
    "400": error(
      "BadRequest",
      "A caller-supplied access_token (in any case or escape), or a path outside WeChat's grammar (segments of letters, digits, `_` and `-`)"
    ),
    "401": error("Unauthorized", "Missing or wrong client key"),
    "403": {
      description:
        "The path, in any spelling, mints or resets credentials, or is outside `PROXY_ALLOW` (`path_not_allowed`)",
      content: { "application/json": { schema: { $ref: "#/components/schemas/BadRequest" } } }
    },
    "404": error("NotFound", "Unknown app"),
    "413": error("PayloadTooLarge", "Request body over `PROXY_MAX_BODY_BYTES`"),
    "502": {
      description:
        "WeChat could not be reached (`upstream_unreachable`), or answered compressed though asked not to (`upstream_encoding`: the proxy passes on only answers it can check for the token)",
      content: { "application/json": { schema: { $ref: "#/components/schemas/BadRequest" } } }
    },
    "503": error("TokenUnavailable", "No valid token obtainable; the code names the upstream cause"),
    "504": {
      description: "WeChat did not answer in time (`upstream_timeout`)",
      content: { "application/json": { schema: { $ref: "#/components/schemas/BadRequest" } } }
    }
  }
})

/**
 * Adds the proxy operations (GET and POST of each proxy route) and their tag to `spec`.
 *
 * @since 0.3.0
 * @category utils
 */
export const document = (spec: Record<string, unknown>): Record<string, unknown> => ({
  ...spec,
  tags: [
    ...(Array.isArray(spec.tags) ? spec.tags : []),
    {
      name: "proxy",
      description: "WeChat's own APIs called through the server: business servers hold only a client key, never a token"
    }
  ],
  paths: {
    ...(typeof spec.paths === "object" ? spec.paths : {}),
    [APP_PATTERN]: {
      get: operation(APP_PATTERN, "get", "appGet", "Call a WeChat API of an app (GET)"),
      post: operation(APP_PATTERN, "post", "appPost", "Call a WeChat API of an app (POST)")
    },
    [WECOM_PATTERN]: {
      get: operation(WECOM_PATTERN, "get", "weComGet", "Call a WeCom API of an app (GET)"),
      post: operation(WECOM_PATTERN, "post", "weComPost", "Call a WeCom API of an app (POST)")
    },
    [AUTHORIZER_PATTERN]: {
      get: operation(AUTHORIZER_PATTERN, "get", "authorizerGet", "Call a WeChat API of an authorizer (GET)"),
      post: operation(AUTHORIZER_PATTERN, "post", "authorizerPost", "Call a WeChat API of an authorizer (POST)")
    },
    [SUITE_CORP_PATTERN]: {
      get: operation(SUITE_CORP_PATTERN, "get", "suiteCorpGet", "Call a WeCom API of a suite's corp (GET)"),
      post: operation(SUITE_CORP_PATTERN, "post", "suiteCorpPost", "Call a WeCom API of a suite's corp (POST)")
    }
  }
})
