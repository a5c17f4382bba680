/**
 * Failures the WeChat emulator can be told to produce: the ways the real
 * WeChat (or the network in front of it) lets a token engine down.
 *
 * @since 0.1.0
 */
import { Data, Duration } from "effect"

// `{}`: a variant that carries no data, as `Data.TaggedEnum` spells it.
/* eslint-disable @typescript-eslint/no-empty-object-type */
/**
 * - `Busy`: `{"errcode":-1,"errmsg":"system error"}`, WeChat's "system busy".
 * - `HttpStatus`: a non-200 status with a gateway-style HTML body.
 * - `Malformed`: HTTP 200 with a body that is not the endpoint's schema.
 * - `Slow`: waits `delay` (Effect `sleep`, so `TestClock` drives it), then answers normally.
 * - `Errcode`: any `{"errcode","errmsg"}` answer, e.g. 89503.
 * - `ConnectionRefused` / `ConnectionReset`: no HTTP answer at all. The
 *   in-process client fails with a `RequestError` of reason `Transport`; the
 *   real server destroys the socket.
 *
 * @since 0.1.0
 * @category models
 */
export type Fault = Data.TaggedEnum<{
  Busy: {}
  HttpStatus: { readonly status: number; readonly body: string }
  Malformed: { readonly body: string }
  Slow: { readonly delay: Duration.Duration }
  Errcode: { readonly errcode: number; readonly errmsg: string }
  ConnectionRefused: {}
  ConnectionReset: {}
}>
/* eslint-enable @typescript-eslint/no-empty-object-type */

const tagged = Data.taggedEnum<Fault>()

/**
 * What `Malformed()` answers by default: a success body cut off mid-string,
 * as when a proxy drops the connection after the headers.
 *
 * @since 0.1.0
 * @category constants
 */
export const TRUNCATED_BODY = "{\"access_token\":\"81_TRUNCATED"

const gatewayPage = (status: number): string =>
  `<html>\r\n<head><title>${status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`

/**
 * Constructors of each fault, with the defaults a test usually wants, plus
 * `$is` and `$match` over the union.
 *
 * @since 0.1.0
 * @category utils
 */
export const Fault = {
  Busy: (): Fault => tagged.Busy(),
  /** Default status 500; the body defaults to an nginx-style error page. */
  HttpStatus: (status: number = 500, body?: string): Fault =>
    tagged.HttpStatus({ status, body: body ?? gatewayPage(status) }),
  /** Default body: truncated JSON (`TRUNCATED_BODY`); pass e.g. `{"access_token":123}` for a well-formed wrong shape. */
  Malformed: (body: string = TRUNCATED_BODY): Fault => tagged.Malformed({ body }),
  Slow: (delay: Duration.DurationInput): Fault => tagged.Slow({ delay: Duration.decode(delay) }),
  Errcode: (errcode: number, errmsg: string): Fault => tagged.Errcode({ errcode, errmsg }),
  ConnectionRefused: (): Fault => tagged.ConnectionRefused(),
  ConnectionReset: (): Fault => tagged.ConnectionReset(),
  $is: tagged.$is,
  $match: tagged.$match
}

/**
 * The emulated endpoints, named as in `FaultRule.endpoints` and in stats.
 *
 * @since 0.1.0
 * @category models
 */
export type Endpoint = "token" | "stable_token" | "getticket" | "getcallbackip"

/**
 * The emulated WeCom endpoints: `gettoken`, the corp ticket
 * (`get_jsapi_ticket`), the agent ticket (`ticket/get`) and `agent/get`.
 *
 * @since 0.2.0
 * @category models
 */
export type WeComEndpoint = "gettoken" | "get_jsapi_ticket" | "ticket_get" | "agent_get"

/**
 * The emulated third-party platform endpoints (`cgi-bin/component/…`).
 *
 * @since 0.3.0
 * @category models
 */
export type ComponentEndpoint =
  | "api_component_token"
  | "api_start_push_ticket"
  | "api_create_preauthcode"
  | "api_query_auth"
  | "api_authorizer_token"
  | "api_get_authorizer_list"

/**
 * The emulated WeCom service-provider endpoints (`cgi-bin/service/…`).
 *
 * @since 0.3.0
 * @category models
 */
export type SuiteEndpoint =
  | "get_suite_token"
  | "get_pre_auth_code"
  | "set_session_info"
  | "get_permanent_code"
  | "get_auth_info"
  | "get_corp_token"
  | "get_provider_token"

/**
 * When to inject a fault: on the listed endpoints (all when absent), for one
 * app (all when absent; for `getticket`/`getcallbackip` the app owning the
 * presented token), the next `times` matching requests (until `clearFaults`
 * when absent). For WeCom endpoints `appId` names a corp id or one of its
 * apps as `corpid/agent`; for component endpoints the component appid (or,
 * for `api_authorizer_token`, the authorizer appid). The first matching rule wins.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultRule {
  readonly fault: Fault
  readonly endpoints?: ReadonlyArray<Endpoint | WeComEndpoint | ComponentEndpoint | SuiteEndpoint>
  readonly appId?: string
  readonly times?: number
}
