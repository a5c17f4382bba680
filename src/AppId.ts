/**
 * WeChat application ids.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * `wx` followed by 16 lowercase hex characters.
 *
 * @since 0.3.0
 * @category constants
 */
export const PATTERN = /^wx[0-9a-f]{16}$/

/**
 * A WeChat app id: `wx` followed by 16 lowercase hex characters.
 *
 * Validating the shape up front is also what keeps an id safe to use as a
 * file-store key, a Redis key segment and a URL path segment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AppId = Schema.String.pipe(
  Schema.pattern(PATTERN, {
    message: () => "a WeChat app id is \"wx\" followed by 16 lowercase hex characters"
  }),
  Schema.brand("AppId")
)

/**
 * @since 0.1.0
 * @category models
 */
export type AppId = typeof AppId.Type

/**
 * Decodes an unknown value into an `AppId`, failing with a `ParseError`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const decode = Schema.decodeUnknown(AppId)

/**
 * Narrows a string to an `AppId`; use at boundaries where a boolean answer is enough.
 *
 * @since 0.1.0
 * @category schemas
 */
export const is = Schema.is(AppId)

/**
 * Builds an `AppId` from a literal, throwing on a malformed id: for tests and examples.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Schema.decodeSync(AppId)
