/**
 * The third-party platform families (开放平台第三方平台): per configured
 * component its verify ticket and component token; per account a merchant
 * authorized to it (an authorizer, owner `componentAppId:authorizerAppId`)
 * its refresh token, access token and tickets.
 *
 * - `component_verify_ticket` (durable): pushed by WeChat every 10 minutes to
 *   the authorization-event URL and put into the engine by the push intake;
 *   valid 12 h, the latest wins. When none is held (first start, pushes
 *   stopped for 12 h) or WeChat rejects it (61005/61006), its issuer asks
 *   WeChat to push again (`api_start_push_ticket`) and fails with
 *   `MissingInput`, which `/readyz` and the routes report.
 * - `component_access_token`: from the latest ticket, fetched at start-up
 *   and refreshed ahead of expiry, one refresher per component across
 *   replicas (the engine's lease): another environment refreshing kills
 *   production's token 5 minutes later (`classic` overlap).
 * - `authorizer_refresh_token` (durable, the authorizer's presence): stored
 *   when an authorization is exchanged, replaced by whatever
 *   `api_authorizer_token` answers. Lost or refused (61023), it is recovered
 *   from `api_get_authorizer_list` before the merchant is declared lost.
 * - `authorizer_access_token`: fetched when the authorizer appears and then
 *   ahead of expiry with the component token and the refresh token
 *   (`classic`: every call issues a new one). 61003 retires the authorizer.
 * - `authorizer_jsapi_ticket`, `authorizer_wx_card_ticket`: as for an app.
 *
 * @since 0.3.0
 */
import { Effect, Option } from "effect"
import type { AccessTokenError } from "../../AccessToken.js"
import type * as AppId from "../../AppId.js"
import * as CredentialFamily from "../../CredentialFamily.js"
import { RuntimeOwners } from "../../internal/runtimeOwners.js"
import { type AuthorizerId, authorizerParts, isAuthorizer, type OwnerId } from "../../OwnerId.js"
import { MissingInput, type WeChatError } from "../../WeChatError.js"
import { ticketKind } from "../officialAccount/OfficialAccount.js"
import { WeChatApi, type WeChatApiShape } from "../officialAccount/WeChatApi.js"
import { ComponentApi, type ComponentApiShape, MAX_PAGE } from "./ComponentApi.js"
import { ComponentConfig, type ComponentConfigShape, type ComponentCredentials } from "./ComponentConfig.js"

/**
 * Tells whether `error` is WeChat's errcode among `codes` (the 61xxx codes
 * of the third-party platform arrive as `WeChatApiError`).
 *
 * @since 0.3.0
 * @category classification
 */
export const isErrcode = (error: AccessTokenError, ...codes: ReadonlyArray<number>): boolean =>
  error._tag === "WeChatApiError" && codes.includes(error.errcode)

/**
 * @since 0.3.0
 * @category kinds
 */
export const componentToken = "component_access_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const verifyTicket = "component_verify_ticket"

/**
 * @since 0.3.0
 * @category kinds
 */
export const authorizerToken = "authorizer_access_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const refreshToken = "authorizer_refresh_token"

/**
 * @since 0.3.0
 * @category kinds
 */
export const authorizerJsapiTicket = "authorizer_jsapi_ticket"

/**
 * @since 0.3.0
 * @category kinds
 */
export const authorizerWxCardTicket = "authorizer_wx_card_ticket"

/**
 * How long a verify ticket is valid after WeChat issued it.
 *
 * @since 0.3.0
 * @category constants
 */
export const VERIFY_TICKET_SECONDS = 12 * 3_600

/**
 * A refresh token has no expiry of its own (it lives until the merchant
 * authorizes again or revokes): recorded as ten years, so it is never
 * "refreshed" on a schedule.
 *
 * @since 0.3.0
 * @category constants
 */
export const REFRESH_TOKEN_SECONDS = 10 * 365 * 86_400

const REFUSED_TICKET = "WeChat refused the latest component_verify_ticket (61005/61006)"

// Recovers a refresh token from the authorizer list, page by page (≤ 500 each).
const recoverRefreshToken = (
  api: ComponentApiShape,
  componentAppId: AppId.AppId,
  authorizerAppId: AppId.AppId,
  componentAccessToken: string
): Effect.Effect<string | undefined, WeChatError> =>
  Effect.iterate({ offset: 0, found: undefined as string | undefined, done: false }, {
    while: (state) => !state.done,
    body: ({ offset }) =>
      Effect.map(api.listAuthorizers(componentAppId, componentAccessToken, offset, MAX_PAGE), (page) => {
        const found = page.authorizers.find((entry) => entry.authorizerAppId === authorizerAppId)?.refreshToken
        const next = offset + page.authorizers.length
        return {
          offset: next,
          found,
          done: found !== undefined || page.authorizers.length === 0 || next >= page.totalCount
        }
      })
  }).pipe(Effect.map((state) => state.found))

/**
 * The families for the configured components over `api` (and `wechat` for
 * the authorizers' tickets): the component kinds (configured owners) and
 * the authorizer kinds (owners that come and go).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  config: ComponentConfigShape,
  api: ComponentApiShape,
  wechat: WeChatApiShape,
  runtime?: ReadonlyMap<string, ComponentCredentials>
): readonly [CredentialFamily.CredentialFamily, CredentialFamily.CredentialFamily] => {
  const components = new Map(config.components.map((component) => [component.componentAppId as string, component]))
  // The engine asks only for its owners: these components and those added at
  // run time, looked up at each fetch so a replaced secret is used from the next one on.
  const componentOf = (owner: string): ComponentCredentials => components.get(owner) ?? runtime!.get(owner)!
  const known = (componentAppId: string) => components.has(componentAppId) || runtime?.has(componentAppId) === true
  // The ticket WeChat last refused per component: not sent again, so a dead
  // ticket costs one upstream call, not one per caller, until a new one is pushed.
  const refusedTickets = new Map<string, string>()

  const askForTicket = (component: ComponentCredentials, detail: string) =>
    Effect.zipRight(
      api.startPushTicket(component),
      Effect.fail(
        new MissingInput({
          appId: component.componentAppId,
          kind: verifyTicket,
          detail: `${detail}; asked WeChat to push one (api_start_push_ticket). ` +
            `The authorization-event URL must point at /wechat/components/${component.componentAppId}/events`
        })
      )
    )

  const componentFamily = CredentialFamily.make({
    name: "component",
    owners: config.components.map((component) => component.componentAppId),
    // A component added at run time exists once its first verify ticket is
    // stored: WeChat pushes it every 10 minutes, and nothing works without it.
    dynamic: runtime === undefined ? undefined : {
      accepts: (owner) => !components.has(owner) && runtime.has(owner),
      presence: verifyTicket
    },
    kinds: [
      {
        kind: componentToken,
        overlap: "classic",
        storage: "cache",
        start: "eager",
        // A refused ticket is replaced: the ticket's issuer asks WeChat to
        // push one, which comes moments after it answers.
        inputs: [{ kind: verifyTicket, awaitsPush: true }],
        issue: ({ inputs: [ticket], owner }) => {
          const refused = (error: AccessTokenError) => new CredentialFamily.InputRejected({ input: 0, error })
          if (refusedTickets.get(owner) === ticket!.value) {
            return refused(new MissingInput({ appId: owner, kind: verifyTicket, detail: REFUSED_TICKET }))
          }
          return api.fetchComponentToken(componentOf(owner), ticket!.value).pipe(
            Effect.catchIf((error) => isErrcode(error, 61005, 61006), (error) => {
              refusedTickets.set(owner, ticket!.value)
              return refused(error)
            })
          )
        }
      },
      {
        kind: verifyTicket,
        // Usable until its 12 h end; asked for again only if no push replaced it by then.
        overlap: "stable",
        storage: "durable",
        start: "eager",
        issue: ({ owner }) =>
          askForTicket(
            componentOf(owner),
            refusedTickets.has(owner)
              ? REFUSED_TICKET
              : "no component_verify_ticket has been pushed yet, or pushes stopped"
          )
      }
    ]
  })

  const appIdOf = (owner: OwnerId) => authorizerParts(owner as AuthorizerId).authorizerAppId
  const componentOfAuthorizer = (owner: OwnerId): OwnerId => authorizerParts(owner as AuthorizerId).componentAppId

  const authorizerFamily = CredentialFamily.make({
    name: "component-authorizer",
    owners: [],
    dynamic: {
      accepts: (owner) => isAuthorizer(owner) && known(authorizerParts(owner).componentAppId),
      presence: refreshToken
    },
    kinds: [
      {
        kind: authorizerToken,
        overlap: "classic",
        storage: "cache",
        start: "eager",
        inputs: [{ kind: componentToken, ownerOf: componentOfAuthorizer }, { kind: refreshToken }],
        issue: ({ inputs: [token, refresh], owner }) => {
          const { authorizerAppId, componentAppId } = authorizerParts(owner as AuthorizerId)
          return api.fetchAuthorizerToken(componentAppId, token!.value, authorizerAppId, refresh!.value).pipe(
            Effect.map((answer) => ({
              issued: answer.accessToken,
              // WeChat may hand out a new refresh token: from now on only that one works.
              alongside: [{
                kind: refreshToken,
                issued: { value: answer.refreshToken, expiresInSeconds: REFRESH_TOKEN_SECONDS }
              }]
            })),
            Effect.mapError((error) =>
              error._tag === "InvalidCredential"
                ? new CredentialFamily.InputRejected({ input: 0, error })
                // A refused refresh token is recovered from the authorizer list, then asked once more.
                : isErrcode(error, 61023)
                ? new CredentialFamily.InputRejected({ input: 1, error })
                : isErrcode(error, 61003)
                ? new CredentialFamily.OwnerRevoked({ error })
                : error
            )
          )
        }
      },
      {
        kind: refreshToken,
        overlap: "stable",
        storage: "durable",
        start: "on-demand",
        inputs: [{ kind: componentToken, ownerOf: componentOfAuthorizer }],
        issue: ({ inputs: [token], owner }) =>
          Effect.gen(function*() {
            const { authorizerAppId, componentAppId } = authorizerParts(owner as AuthorizerId)
            const found = yield* recoverRefreshToken(api, componentAppId, authorizerAppId, token!.value)
            if (found === undefined) {
              return yield* new MissingInput({
                appId: owner,
                kind: refreshToken,
                detail: "the refresh token was refused and the authorizer list does not have it: " +
                  "the merchant must authorize the component again"
              })
            }
            yield* Effect.logWarning("authorizer refresh token recovered from the authorizer list").pipe(
              Effect.annotateLogs({ app: owner })
            )
            return { value: found, expiresInSeconds: REFRESH_TOKEN_SECONDS }
          })
      },
      ticketKind(wechat, authorizerJsapiTicket, "jsapi", authorizerToken, appIdOf),
      ticketKind(wechat, authorizerWxCardTicket, "wx_card", authorizerToken, appIdOf)
    ]
  })
  return [componentFamily, authorizerFamily]
}

/**
 * The families from the `ComponentConfig`, `ComponentApi` and `WeChatApi` in context.
 *
 * @since 0.3.0
 * @category constructors
 */
export const families: Effect.Effect<
  readonly [CredentialFamily.CredentialFamily, CredentialFamily.CredentialFamily],
  never,
  ComponentConfig | ComponentApi | WeChatApi
> = Effect.map(
  Effect.all([ComponentConfig, ComponentApi, WeChatApi, Effect.serviceOption(RuntimeOwners)]),
  ([config, api, wechat, runtime]) => make(config, api, wechat, Option.getOrUndefined(runtime)?.components)
)
