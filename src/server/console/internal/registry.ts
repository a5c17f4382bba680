/**
 * The registry's page at `/console/registry`: the apps, WeCom apps and
 * client keys, and the forms that change them, for a session signed in with
 * an admin key. Plain forms (no script needed), each with its CSRF token and
 * a "Confirm" box the server checks too. Every change goes through the same
 * actions as the admin API (`RegistryActions`): the same validation, the
 * secret tried against WeChat or WeCom first, the same audit log, with the
 * admin key's same id. A secret is never put back into a page; a new client
 * key is shown once, in the answer that created it.
 */
import type * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as AdminApi from "../../../api/AdminApi.js"
import { BadRequest, NotFound, TokenUnavailable } from "../../../api/ApiError.js"
import { AppId } from "../../../AppId.js"
import { AgentKey, CorpId } from "../../../OwnerId.js"
import type { Refusal, RegistryActions } from "../../admin/internal/registryActions.js"
import { escape, head, header } from "./page.js"
import type { Session, Sessions } from "./session.js"

type Html = (body: string, status?: number) => HttpServerResponse.HttpServerResponse

/** What the page says after a form: the outcome, and the new client key once. */
interface Outcome {
  readonly status: number
  readonly message: string
  readonly key?: string
}

/** Audit entries the page lists, the newest first. */
const AUDIT_SHOWN = 20

const refusal = (status: number, message: string): Outcome => ({ status, message })

// The HTTP status the admin API answers each refusal with.
const statusOf = (error: Refusal): number =>
  error instanceof BadRequest
    ? 400
    : error instanceof NotFound
    ? 404
    : error instanceof AdminApi.ReadOnly
    ? 409
    : error instanceof AdminApi.SecretRejected
    ? 422
    : error instanceof TokenUnavailable
    ? 503
    : 500

// Each issue with the field it is about, never the value sent (it may be a secret).
const issues = (error: ParseResult.ParseError) =>
  Array.from(
    new Set(
      ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
        issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
      )
    )
  ).join("; ")

// The admin API's own schemas: a form is accepted exactly when the same JSON body would be.
const AppForm = Schema.Struct({ appId: AppId })
const AgentForm = Schema.Struct({ corpId: CorpId, agent: AgentKey })
const KeyIdForm = Schema.Struct({ id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)) })
const decode = <A, I>(schema: Schema.Schema<A, I>, input: unknown) =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all" })(input), issues)

// The form's fields of these names; one not sent is missing, as it would be from a JSON body.
const pick = (fields: Record<string, string>, ...names: ReadonlyArray<string>) =>
  Object.fromEntries(names.flatMap((name) => fields[name] === undefined ? [] : [[name, fields[name]]]))

const confirmBox = (what: string) =>
  `<label class="confirm"><input type="checkbox" name="confirm" value="yes" required> Confirm ${escape(what)}</label>`

const form = (session: Session, action: string, fields: string, button: string, danger = false) =>
  `<form method="post" action="/console/registry/${action}" class="registry-form">` +
  `<input type="hidden" name="csrf" value="${session.csrf}">${fields}` +
  `<button type="submit"${danger ? " class=\"danger\"" : ""}>${button}</button></form>`

const field = (name: string, label: string, attributes: string) =>
  `<label>${label} <input name="${name}" ${attributes}></label>`

const table = (caption: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<string>) =>
  `<div class="table-wrap" tabindex="0" role="region" aria-label="${caption}"><table>` +
  `<caption class="visually-hidden">${caption}</caption><thead><tr>` +
  columns.map((column) => `<th scope="col">${column}</th>`).join("") +
  `</tr></thead><tbody>${
    rows.length === 0 ? `<tr><td colspan="${columns.length}">None yet</td></tr>` : rows.join("")
  }</tbody></table></div>`

const removal = (session: Session, action: string, hidden: Record<string, string>, what: string, button: string) =>
  form(
    session,
    action,
    Object.entries(hidden).map(([name, value]) => `<input type="hidden" name="${name}" value="${escape(value)}">`)
      .join("") + confirmBox(what),
    button,
    true
  )

const page = (
  session: Session,
  held: {
    readonly apps: Effect.Effect.Success<RegistryActions["listApps"]>
    readonly agents: Effect.Effect.Success<RegistryActions["listAgents"]>
    readonly keys: Effect.Effect.Success<RegistryActions["listKeys"]>
    readonly audit: Effect.Effect.Success<RegistryActions["auditLog"]>
  },
  outcome?: Outcome
) => {
  const environment = "<td>environment (read-only)</td>"
  const apps = held.apps.map((app) =>
    `<tr><th scope="row"><code>${app.appId}</code></th><td>${app.mode}</td><td>${app.source}</td><td>${
      app.source === "env" ? "—" : app.updatedAt
    }</td>` +
    (app.source === "env"
      ? environment
      : `<td>${removal(session, "apps/remove", { appId: app.appId }, `removing ${app.appId}`, "Remove")}</td>`) +
    `</tr>`
  )
  const agents = held.agents.map((agent) =>
    `<tr><th scope="row"><code>${escape(agent.owner)}</code></th><td>${agent.source}</td><td>${
      agent.source === "env" ? "—" : agent.updatedAt
    }</td>` +
    (agent.source === "env" ? environment : `<td>${
      removal(
        session,
        "wecom/remove",
        { corpId: agent.corpId, agent: agent.agent },
        `removing ${agent.owner}`,
        "Remove"
      )
    }</td>`) +
    `</tr>`
  )
  const keys = held.keys.map((key) =>
    `<tr><th scope="row"><code>${escape(key.id)}</code></th><td>${escape(key.label)}</td><td>${
      key.scope.length === 0 ? "every owner" : key.scope.map(escape).join(", ")
    }</td><td>${key.createdAt ?? "—"}</td><td>${key.lastUsedAt ?? "never"}</td>` +
    `<td>${removal(session, "keys/revoke", { id: key.id }, `revoking ${key.label}`, "Revoke")}</td></tr>`
  )
  const audit = held.audit.slice(0, AUDIT_SHOWN).map((entry) =>
    `<tr><td>${entry.at}</td><td>${escape(entry.actor)}</td><td>${escape(entry.action)}</td><td>${
      escape(entry.owner ?? "")
    }</td><td>${escape(entry.outcome)}</td></tr>`
  )
  return head("Registry · WeChat token console") + header(session, "console") +
    `<main class="registry"><h2>Apps, WeCom apps and client keys</h2>` +
    (outcome === undefined
      ? ""
      : outcome.status < 400
      ? `<p id="outcome" role="status" class="done">${escape(outcome.message)}</p>`
      : `<p id="outcome" role="alert" class="error">${escape(outcome.message)}</p>`) +
    (outcome?.key === undefined ? "" : `<p class="new-key"><label for="new-key">The new client key, shown this once: ` +
      `copy it now</label> <input id="new-key" readonly value="${escape(outcome.key)}" size="50"></p>`) +
    `<section aria-labelledby="apps-title"><h3 id="apps-title">Apps</h3>` +
    table("Apps", ["App ID", "Mode", "Source", "Changed", "Action"], apps) +
    `<h4>Add an app, or replace its secret</h4><p>The secret is tried against WeChat first: a secret WeChat refuses ` +
    `changes nothing.</p>` +
    form(
      session,
      "apps",
      field("appId", "App ID", `required pattern="wx[0-9a-f]{16}" maxlength="18" autocomplete="off"`) +
        field("secret", "AppSecret", `type="password" required maxlength="256" autocomplete="new-password"`) +
        confirmBox("adding or replacing this app"),
      "Add app"
    ) +
    `</section><section aria-labelledby="agents-title"><h3 id="agents-title">WeCom apps</h3>` +
    table("WeCom apps", ["Owner", "Source", "Changed", "Action"], agents) +
    `<h4>Add a WeCom app, or replace its secret</h4>` +
    form(
      session,
      "wecom",
      field("corpId", "Corp ID", `required maxlength="18" autocomplete="off"`) +
        field("agent", "AgentId or secret label", `required maxlength="32" autocomplete="off"`) +
        field("secret", "Secret", `type="password" required maxlength="256" autocomplete="new-password"`) +
        confirmBox("adding or replacing this WeCom app"),
      "Add WeCom app"
    ) +
    `</section><section aria-labelledby="keys-title"><h3 id="keys-title">Client keys</h3>` +
    table("Client keys", ["ID", "Label", "Scope", "Created", "Last used here", "Action"], keys) +
    `<h4>Create a client key</h4>` +
    form(
      session,
      "keys",
      field("label", "Label", `required maxlength="100" autocomplete="off"`) +
        field("scope", "Owners it may ask for (spaces or commas; empty: every owner)", `autocomplete="off" size="40"`) +
        confirmBox("creating a client key"),
      "Create key"
    ) +
    `</section><section aria-labelledby="audit-title"><h3 id="audit-title">Recent changes</h3>` +
    table("Recent changes", ["At", "By", "Action", "Owner", "Outcome"], audit) +
    `</section></main></body></html>`
}

/**
 * The registry's routes for admin sessions; an ops key's session gets `403`
 * and a sign-in form none.
 */
export const routes = (
  router: HttpApiBuilder.Router["Type"],
  options: {
    readonly actions: RegistryActions
    readonly sessions: Sessions
    readonly html: Html
    readonly signIn: Effect.Effect<HttpServerResponse.HttpServerResponse>
  }
) => {
  const { actions, html, sessions } = options
  const render = (session: Session, outcome?: Outcome) =>
    Effect.map(
      Effect.all({
        apps: actions.listApps,
        agents: actions.listAgents,
        keys: actions.listKeys,
        audit: actions.auditLog
      }),
      (held) => html(page(session, held, outcome), outcome?.status ?? 200)
    )
  const adminOnly = (session: Session) =>
    html(
      head("Registry · WeChat token console") + header(session, "console") +
        `<main><p class="error" role="alert">The registry's actions need an admin key (ADMIN_KEYS); ` +
        `this session signed in with an ops key.</p></main></body></html>`,
      403
    )

  // Every form: a session, an admin key, its CSRF token, the box ticked;
  // then the change, whose outcome (or refusal) the page shows.
  const change = (
    what: string,
    run: (
      fields: Record<string, string>
    ) => Either.Either<Effect.Effect<Outcome, Refusal, AdminApi.AdminCaller>, string>
  ) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const session = yield* sessions.current(request.headers.cookie)
      if (session === undefined) return yield* options.signIn
      const fields: Record<string, string> = {}
      for (const [name, value] of yield* Effect.orElseSucceed(request.urlParamsBody, () => [])) {
        if (!(name in fields)) fields[name] = value
      }
      // An ops key's session is refused before anything of the registry is rendered.
      const actor = session.actor
      if (actor === undefined) return adminOnly(session)
      if (!sessions.csrfMatches(session, fields["csrf"])) {
        return yield* render(session, refusal(403, "This form is stale or not from this session: nothing changed."))
      }
      if (fields["confirm"] !== "yes") {
        return yield* render(session, refusal(400, `Tick "Confirm" to ${what}: nothing changed.`))
      }
      const outcome = yield* Either.match(run(fields), {
        onLeft: (problem) => Effect.succeed(refusal(400, `${problem}: nothing changed.`)),
        onRight: (change) =>
          change.pipe(
            Effect.catchAll((error) => Effect.succeed(refusal(statusOf(error), error.error.message))),
            Effect.provideService(AdminApi.AdminCaller, { id: actor })
          )
      })
      return yield* render(session, outcome)
    })

  return Effect.all([
    router.get(
      "/console/registry",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const session = yield* sessions.current(request.headers.cookie)
        if (session === undefined) return yield* options.signIn
        return session.actor === undefined ? adminOnly(session) : yield* render(session)
      })
    ),
    router.post(
      "/console/registry/apps",
      change("add or replace the app", (fields) =>
        Either.map(
          Either.all([
            decode(AppForm, pick(fields, "appId")),
            decode(AdminApi.PutAppRequest, pick(fields, "secret"))
          ]),
          ([{ appId }, payload]) =>
            Effect.as(actions.putApp(appId, payload), { status: 200, message: `Added ${appId}; its secret works.` })
        ))
    ),
    router.post(
      "/console/registry/apps/remove",
      change("remove the app", (fields) =>
        Either.map(
          decode(AppForm, pick(fields, "appId")),
          ({ appId }) => Effect.as(actions.deleteApp(appId), { status: 200, message: `Removed ${appId}.` })
        ))
    ),
    router.post(
      "/console/registry/wecom",
      change("add or replace the WeCom app", (fields) =>
        Either.map(
          Either.all([
            decode(AgentForm, pick(fields, "corpId", "agent")),
            decode(AdminApi.PutAgentRequest, pick(fields, "secret"))
          ]),
          ([{ agent, corpId }, payload]) =>
            Effect.map(actions.putAgent(corpId, agent, payload), (entry) => ({
              status: 200,
              message: `Added ${entry.owner}; its secret works.`
            }))
        ))
    ),
    router.post(
      "/console/registry/wecom/remove",
      change("remove the WeCom app", (fields) =>
        Either.map(
          decode(AgentForm, pick(fields, "corpId", "agent")),
          ({ agent, corpId }) =>
            Effect.as(actions.deleteAgent(corpId, agent), { status: 200, message: `Removed ${corpId}/${agent}.` })
        ))
    ),
    router.post(
      "/console/registry/keys",
      change("create a client key", (fields) =>
        Either.map(
          decode(AdminApi.CreateKeyRequest, {
            ...pick(fields, "label"),
            scope: (fields["scope"] ?? "").split(/[\s,]+/).filter((owner) => owner !== "")
          }),
          (payload) =>
            Effect.map(actions.createKey(payload), (created) => ({
              status: 200,
              message: `Created the client key ${created.id} (${created.label}).`,
              key: created.key
            }))
        ))
    ),
    router.post(
      "/console/registry/keys/revoke",
      change("revoke the client key", (fields) =>
        Either.map(
          decode(KeyIdForm, pick(fields, "id")),
          ({ id }) => Effect.as(actions.revokeKey(id), { status: 200, message: `Revoked the client key ${id}.` })
        ))
    )
  ])
}
