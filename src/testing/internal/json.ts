/**
 * JSON in and out of the emulator: WeChat's JSON answer, and the request
 * bodies and fields its POST endpoints read.
 *
 * @internal
 */
import type { EmulatorResponse } from "../WeChatEmulator.js"

/** A JSON answer with the content type WeChat itself sends. */
export const json = (body: unknown, status = 200): EmulatorResponse => ({
  _tag: "Respond",
  status,
  contentType: "application/json; encoding=utf-8",
  body: JSON.stringify(body)
})

/** The body as a JSON object; `undefined` for anything else (WeChat answers 47001). */
export const parseJsonObject = (body: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

/** A non-empty string field; WeChat treats an empty one as missing. */
export const stringField = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0 ? value : undefined
