/**
 * The admin API as a contract: owners and client keys changed at run time,
 * behind `Authorization: Bearer <admin key>` (`ADMIN_KEYS`). An admin key is
 * refused on client routes and a client key here, so a leaked client key
 * can never add an app or mint a key.
 *
 * Answers never carry a secret: an owner is listed with its id, mode,
 * source (`env`: from the environment, read-only; `admin`: from this API)
 * and when it last changed; a client key is shown once, in the answer that
 * created it.
 *
 * @since 0.3.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Context, Schema } from "effect"
import { AppId } from "../AppId.js"
import { ENCODING_AES_KEY, MESSAGE_TOKEN } from "../internal/credentialList.js"
import { AgentKey, CorpId, OwnerId, WeComAgentId } from "../OwnerId.js"
import { TokenMode } from "../Token.js"
import { BadRequest, ErrorDetail, NotFound, TokenUnavailable, Unauthorized } from "./ApiError.js"

/**
 * A new or replaced secret WeChat refused when it was tried (`40125`,
 * `40001`, `40013`, …; the code is the errcode): nothing changed, the old
 * secret stays in use.
 *
 * @since 0.3.0
 * @category errors
 */
export class SecretRejected extends Schema.Class<SecretRejected>("SecretRejected")(
  { error: ErrorDetail },
  HttpApiSchema.annotations({ status: 422, description: "WeChat refused the secret; nothing changed" })
) {}

/**
 * The owner or key comes from the environment (`WECHAT_APPS`, `CLIENT_KEYS`,
 * …): change it there, not here.
 *
 * @since 0.3.0
 * @category errors
 */
export class ReadOnly extends Schema.Class<ReadOnly>("ReadOnly")(
  { error: ErrorDetail },
  HttpApiSchema.annotations({ status: 409, description: "Configured by the environment; read-only here" })
) {}

/**
 * Who made an admin request: the id of the admin key it presented (a short
 * digest of the key, never the key), as the audit names it.
 *
 * @since 0.3.0
 * @category tags
 */
export class AdminCaller extends Context.Tag("effect-wechat-token/AdminCaller")<
  AdminCaller,
  { readonly id: string }
>() {}

/**
 * The admin key check: `Authorization: Bearer <admin key>`, one of `ADMIN_KEYS`.
 *
 * @since 0.3.0
 * @category tags
 */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("effect-wechat-token/AdminAuth", {
  failure: Unauthorized,
  provides: AdminCaller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Where an owner comes from.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Source = Schema.Literal("env", "admin")

// A field this API does not know is refused, not dropped: a typo such as
// "secert" must not look accepted.
const strict = { parseOptions: { onExcessProperty: "error" } } as const

// Secrets arrive in a body and are held `Redacted` from the first decode on.
const Secret = Schema.Redacted(
  Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)).annotations({
    title: "secret",
    description: "1 to 256 characters; never answered back"
  })
)

/**
 * @since 0.3.0
 * @category schemas
 */
export const PutAppRequest = Schema.Struct({ secret: Secret, mode: Schema.optional(TokenMode) }).annotations(strict)

/**
 * @since 0.3.0
 * @category schemas
 */
export const AppEntry = Schema.Struct({
  appId: AppId,
  mode: TokenMode,
  source: Source,
  updatedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "AdminAppEntry" })

/**
 * @since 0.3.0
 * @category schemas
 */
export const PutAgentRequest = Schema.Struct({ secret: Secret }).annotations(strict)

/**
 * A WeCom app (a corp's agent, or a special secret such as `contacts`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const AgentEntry = Schema.Struct({
  owner: WeComAgentId,
  corpId: CorpId,
  agent: AgentKey,
  source: Source,
  updatedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "AdminAgentEntry" })

/**
 * @since 0.3.0
 * @category schemas
 */
export const CreateKeyRequest = Schema.Struct({
  /** The owners the key may ask for; empty: every owner. */
  scope: Schema.Array(OwnerId).pipe(Schema.maxItems(1_000)),
  label: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)).annotations({
    title: "label",
    description: "1 to 100 characters"
  })
}).annotations(strict)

/**
 * @since 0.3.0
 * @category schemas
 */
export const KeyEntry = Schema.Struct({
  id: Schema.String,
  label: Schema.String,
  scope: Schema.Array(OwnerId),
  source: Source,
  createdAt: Schema.optional(Schema.String),
  lastUsedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "AdminKeyEntry" })

/**
 * The one answer that carries a client key.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CreatedKey = Schema.Struct({
  ...KeyEntry.fields,
  key: Schema.String.annotations({ description: "The client key; shown here once, kept only as a hash" })
}).annotations({ identifier: "AdminCreatedKey" })

/**
 * @since 0.3.0
 * @category schemas
 */
export const AuditRecord = Schema.Struct({
  at: Schema.String,
  actor: Schema.String.annotations({ description: "the admin key's id" }),
  action: Schema.String,
  owner: Schema.optional(Schema.String),
  outcome: Schema.String,
  detail: Schema.optional(Schema.String)
}).annotations({ identifier: "AdminAuditRecord" })

/**
 * A third-party platform's credentials: its AppSecret, and the message token
 * and EncodingAESKey its authorization-event URL is configured with.
 *
 * @since 0.3.0
 * @category schemas
 */
export const PutComponentRequest = Schema.Struct({
  secret: Secret,
  token: Schema.Redacted(
    Schema.String.pipe(Schema.pattern(MESSAGE_TOKEN)).annotations({
      title: "token",
      description: "the message token (消息校验Token): 3 to 32 letters and digits; never answered back"
    })
  ),
  encodingAesKey: Schema.Redacted(
    Schema.String.pipe(Schema.pattern(ENCODING_AES_KEY)).annotations({
      title: "encodingAesKey",
      description: "the EncodingAESKey (消息加解密Key): 43 letters and digits; never answered back"
    })
  )
}).annotations(strict)

/**
 * A third-party platform.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ComponentEntry = Schema.Struct({
  componentAppId: AppId,
  source: Source,
  updatedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "AdminComponentEntry" })

const AppPath = Schema.Struct({ appId: AppId })
const ComponentPath = Schema.Struct({ componentAppId: AppId })
const AgentPath = Schema.Struct({ corpId: CorpId, agent: AgentKey })
const CorpPath = Schema.Struct({ corpId: CorpId })
const KeyPath = Schema.Struct({ id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)) })

/**
 * @since 0.3.0
 * @category models
 */
export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.put("putApp", "/v1/admin/apps/:appId")
      .setPath(AppPath)
      .setPayload(PutAppRequest)
      .addSuccess(AppEntry)
      .addError(SecretRejected)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Adds or replaces an app; the secret is tried against WeChat first")
  )
  .add(
    HttpApiEndpoint.del("deleteApp", "/v1/admin/apps/:appId")
      .setPath(AppPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Removes an app everywhere (its routes answer 404)")
  )
  .add(
    HttpApiEndpoint.get("listApps", "/v1/admin/apps")
      .addSuccess(Schema.Struct({ apps: Schema.Array(AppEntry) }))
      .annotate(OpenApi.Summary, "Every app, from the environment and from this API; no secret")
  )
  .add(
    HttpApiEndpoint.put("putAgent", "/v1/admin/wecom/:corpId/agents/:agent")
      .setPath(AgentPath)
      .setPayload(PutAgentRequest)
      .addSuccess(AgentEntry)
      .addError(SecretRejected)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Adds or replaces a WeCom app; the secret is tried against WeCom first")
  )
  .add(
    HttpApiEndpoint.del("deleteAgent", "/v1/admin/wecom/:corpId/agents/:agent")
      .setPath(AgentPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Removes a WeCom app everywhere (its routes answer 404)")
  )
  .add(
    HttpApiEndpoint.get("listCorpAgents", "/v1/admin/wecom/:corpId/agents")
      .setPath(CorpPath)
      .addSuccess(Schema.Struct({ agents: Schema.Array(AgentEntry) }))
      .annotate(OpenApi.Summary, "The WeCom apps of one corp, from the environment and from this API; no secret")
  )
  .add(
    HttpApiEndpoint.get("listAgents", "/v1/admin/wecom")
      .addSuccess(Schema.Struct({ agents: Schema.Array(AgentEntry) }))
      .annotate(OpenApi.Summary, "Every WeCom app, from the environment and from this API; no secret")
  )
  .add(
    HttpApiEndpoint.put("putComponent", "/v1/admin/components/:componentAppId")
      .setPath(ComponentPath)
      .setPayload(PutComponentRequest)
      .addSuccess(ComponentEntry)
      .addError(SecretRejected)
      .addError(ReadOnly)
      .annotate(
        OpenApi.Summary,
        "Adds or replaces a third-party platform; the secret is tried with the verify ticket held, if any"
      )
  )
  .add(
    HttpApiEndpoint.del("deleteComponent", "/v1/admin/components/:componentAppId")
      .setPath(ComponentPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Removes a third-party platform everywhere (its routes answer 404)")
  )
  .add(
    HttpApiEndpoint.get("listComponents", "/v1/admin/components")
      .addSuccess(Schema.Struct({ components: Schema.Array(ComponentEntry) }))
      .annotate(OpenApi.Summary, "Every third-party platform, from the environment and from this API; no secret")
  )
  .add(
    HttpApiEndpoint.post("createKey", "/v1/admin/keys")
      .setPayload(CreateKeyRequest)
      .addSuccess(CreatedKey, { status: 201 })
      .annotate(OpenApi.Summary, "Creates a client key; the key is in this answer only")
  )
  .add(
    HttpApiEndpoint.get("listKeys", "/v1/admin/keys")
      .addSuccess(Schema.Struct({ keys: Schema.Array(KeyEntry) }))
      .annotate(OpenApi.Summary, "Every client key's id, label, scope and use; never a key")
  )
  .add(
    HttpApiEndpoint.del("revokeKey", "/v1/admin/keys/:id")
      .setPath(KeyPath)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(ReadOnly)
      .annotate(OpenApi.Summary, "Revokes a client key on every replica")
  )
  .add(
    HttpApiEndpoint.get("audit", "/v1/admin/audit")
      .addSuccess(Schema.Struct({ entries: Schema.Array(AuditRecord) }))
      .annotate(OpenApi.Summary, "The last 1,000 admin actions, newest first; never a secret")
  )
  .addError(BadRequest)
  .addError(NotFound)
  // The store could not take the change (or WeChat could not be reached to try a secret): nothing changed.
  .addError(TokenUnavailable)
  .middleware(AdminAuth)
  .annotate(
    OpenApi.Description,
    "Owners and client keys at run time; every route needs `Authorization: Bearer <admin key>` (`ADMIN_KEYS`)"
  )
{}
