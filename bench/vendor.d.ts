// Neither bench-only devDependency ships types: just the parts the bench uses.

declare module "co-wechat-api" {
  interface AccessToken {
    readonly accessToken: string
    readonly expireTime: number
  }
  class API {
    constructor(appid: string, appsecret: string)
    /** Base of every `cgi-bin` URL; the bench points it at the emulator. */
    prefix: string
    /** Options for every request (httpx): `timeout` in milliseconds. */
    setOpts(options: { readonly timeout?: number }): void
    ensureAccessToken(): Promise<AccessToken>
  }
  export default API
}

declare module "autocannon" {
  interface Histogram {
    readonly average: number
    readonly p50: number
    readonly p99: number
  }
  interface Options {
    readonly url: string
    readonly connections?: number
    readonly duration?: number
    readonly headers?: Readonly<Record<string, string>>
  }
  interface Result {
    readonly requests: Histogram & { readonly total: number }
    readonly latency: Histogram
    readonly duration: number
    readonly errors: number
    readonly non2xx: number
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
