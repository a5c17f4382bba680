/**
 * Which `TokenStore` the `TOKEN_STORE` variable names, and the layer for it.
 * The file and Redis adapters are imported only when named, so a program on
 * the memory store never loads `@effect/platform-node` or `ioredis`.
 *
 * @since 0.2.0
 */
import { Config, ConfigError, Effect, Either, Layer, Schema } from "effect"
import { layerMemory, StoreError, TokenStore } from "./TokenStore.js"

/**
 * `memory`, `file:PATH` or `redis://HOST:PORT[/DB]`, parsed.
 *
 * @since 0.2.0
 * @category models
 */
export const StoreSpec = Schema.Union(
  Schema.TaggedStruct("Memory", {}),
  Schema.TaggedStruct("File", { path: Schema.NonEmptyString }),
  Schema.TaggedStruct("Redis", { url: Schema.String })
)

/**
 * @since 0.2.0
 * @category models
 */
export type StoreSpec = typeof StoreSpec.Type

const specError = (detail: string) =>
  ConfigError.InvalidData(
    ["TOKEN_STORE"],
    `TOKEN_STORE: ${detail}; expected "memory", "file:PATH" or "redis://HOST:PORT[/DB]"`
  )

/**
 * Parses a `TOKEN_STORE` value. Messages name the variable and never echo
 * the value: a Redis URL may carry a password.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parse = (raw: string): Either.Either<StoreSpec, ConfigError.ConfigError> => {
  const value = raw.trim()
  if (value === "memory") return Either.right({ _tag: "Memory" })
  if (value.startsWith("file:")) {
    const path = value.slice("file:".length)
    return path === "" ? Either.left(specError("file: needs a path")) : Either.right({ _tag: "File", path })
  }
  if (value.startsWith("redis://")) {
    const url = URL.canParse(value) ? new URL(value) : undefined
    if (url === undefined || url.hostname === "") return Either.left(specError("the Redis URL has no host"))
    if (!/^(\/\d*)?$/.test(url.pathname)) return Either.left(specError("the Redis database must be a number"))
    if (url.search !== "" || url.hash !== "") {
      return Either.left(specError("the Redis URL takes no query or fragment"))
    }
    return Either.right({ _tag: "Redis", url: value })
  }
  return Either.left(specError("unknown store"))
}

/**
 * `TOKEN_STORE` read with Effect `Config`; `memory` when unset.
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<StoreSpec> = Config.string("TOKEN_STORE").pipe(
  Config.mapOrFail(parse),
  Config.withDefault<StoreSpec>({ _tag: "Memory" })
)

// An adapter whose module (or its peer dependency) cannot be loaded is a
// deployment mistake: say which package to install, not a stack trace.
const loadAdapter = <A>(load: () => Promise<A>, needs: string) =>
  Effect.tryPromise({
    try: load,
    catch: (cause) =>
      new StoreError({
        operation: "open",
        detail: `${needs} (${cause instanceof Error ? cause.message : String(cause)})`
      })
  })

/**
 * The store a spec names; the file store on Node's file system. Fails with
 * `StoreError` when the file cannot be read or the Redis adapter's `ioredis`
 * peer dependency is not installed.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (spec: StoreSpec): Layer.Layer<TokenStore, StoreError> => {
  switch (spec._tag) {
    case "Memory":
      return layerMemory
    case "File":
      return Layer.unwrapEffect(
        Effect.map(
          loadAdapter(
            () => import("./TokenStoreFile.js"),
            "the file store needs @effect/platform-node: npm i @effect/platform-node@^0.108"
          ),
          (adapter) => adapter.layerNode(spec.path)
        )
      )
    case "Redis":
      return Layer.unwrapEffect(
        Effect.map(
          loadAdapter(() => import("./TokenStoreRedis.js"), "the Redis store needs ioredis: npm i ioredis@^5"),
          (adapter) => adapter.layer(spec.url)
        )
      )
  }
}

/**
 * The store `TOKEN_STORE` names, from the current `ConfigProvider`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig: Layer.Layer<TokenStore, ConfigError.ConfigError | StoreError> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
