/**
 * `effect-wechat-token/testing`: the bundled WeChat emulator and its faults.
 *
 * @since 0.1.0
 */
/**
 * @since 0.1.0
 * @category modules
 */
export * from "./WeChatEmulator.js"
