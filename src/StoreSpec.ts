/**
 * Which `TokenStore` the `TOKEN_STORE` variable names, and the layer for it.
 * The file and Redis adapters are imported only when named, so a program on
 * the memory store never loads `@effect/platform-node` or `ioredis`.
 *
 * @since 0.2.0
 */
import { Config, ConfigError, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import * as RedisTarget from "./internal/redisTarget.js"
import * as SealedStore from "./internal/sealedStore.js"
import * as SecretBox from "./internal/secretBox.js"
import { readSecretFile, secret } from "./internal/secretConfig.js"
import * as StoreDocuments from "./StoreDocuments.js"
import { layerMemory as tokenStoreMemory, StoreError, TokenStore } from "./TokenStore.js"

/**
 * `memory`, `file:PATH` or a Redis URL (`redis://`, `rediss://`,
 * `redis+sentinel://`, `redis+cluster://`), parsed. A Redis store also
 * carries what the `REDIS_*` variables say: secrets (`Redacted`) and the
 * paths of TLS files, read when the store opens.
 *
 * @since 0.2.0
 * @category models
 */
export const StoreSpec = Schema.Union(
  Schema.TaggedStruct("Memory", {}),
  Schema.TaggedStruct("File", { path: Schema.NonEmptyString }),
  Schema.TaggedStruct("Redis", {
    url: Schema.String,
    /** `REDIS_PASSWORD[_FILE]`, when the URL carries none. @since 0.3.0 */
    password: Schema.optional(Schema.Redacted(Schema.String)),
    /** `REDIS_SENTINEL_PASSWORD[_FILE]`. @since 0.3.0 */
    sentinelPassword: Schema.optional(Schema.Redacted(Schema.String)),
    /** `REDIS_TLS`: TLS for `redis+sentinel://` and `redis+cluster://`. @since 0.3.0 */
    tls: Schema.optional(Schema.Boolean),
    /** `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`: PEM files. @since 0.3.0 */
    caFile: Schema.optional(Schema.String),
    certFile: Schema.optional(Schema.String),
    keyFile: Schema.optional(Schema.String)
  })
)

/**
 * @since 0.2.0
 * @category models
 */
export type StoreSpec = typeof StoreSpec.Type

const specError = (detail: string) =>
  ConfigError.InvalidData(
    ["TOKEN_STORE"],
    `TOKEN_STORE: ${detail}; expected "memory", "file:PATH", ${RedisTarget.FORMS}`
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
  if (RedisTarget.isRedisUrl(value)) {
    return Either.match(RedisTarget.parse(value), {
      onLeft: (detail) => Either.left(specError(detail)),
      onRight: () => Either.right({ _tag: "Redis", url: value })
    })
  }
  return Either.left(specError("unknown store"))
}

const optional = <A>(config: Config.Config<A>) => Config.map(Config.option(config), Option.getOrUndefined)

// The Redis variables; only the set ones end up in the spec.
const redisSettings = Config.all({
  password: optional(secret("REDIS_PASSWORD")),
  sentinelPassword: optional(secret("REDIS_SENTINEL_PASSWORD")),
  tls: optional(Config.boolean("REDIS_TLS")),
  caFile: optional(Config.string("REDIS_TLS_CA_FILE")),
  certFile: optional(Config.string("REDIS_TLS_CERT_FILE")),
  keyFile: optional(Config.string("REDIS_TLS_KEY_FILE"))
})

const settingsError = (detail: string) => ConfigError.InvalidData(["TOKEN_STORE"], `TOKEN_STORE: ${detail}`)

// Settings that cannot apply to the URL are refused rather than ignored: a
// CA file next to `redis://` means the operator expects TLS and would not get it.
const withSettings = (
  spec: StoreSpec,
  settings: typeof redisSettings extends Config.Config<infer A> ? A : never
): Either.Either<StoreSpec, ConfigError.ConfigError> => {
  const given = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined))
  if (spec._tag !== "Redis") return Either.right(spec)
  const target = Either.getOrThrow(RedisTarget.parse(spec.url))
  if (Option.isSome(target.password) && settings.password !== undefined) {
    return Either.left(settingsError("the URL carries a password and REDIS_PASSWORD[_FILE] is set; set one"))
  }
  if (settings.sentinelPassword !== undefined && target.mode !== "sentinel") {
    return Either.left(settingsError("REDIS_SENTINEL_PASSWORD[_FILE] needs redis+sentinel://"))
  }
  const tlsFile = settings.caFile ?? settings.certFile ?? settings.keyFile
  if (target.mode === "standalone" && !target.tls && (settings.tls === true || tlsFile !== undefined)) {
    return Either.left(settingsError("REDIS_TLS and REDIS_TLS_*_FILE need rediss://"))
  }
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
    return Either.left(settingsError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together"))
  }
  return Either.right({ ...spec, ...given })
}

/**
 * `TOKEN_STORE` read with Effect `Config`; `memory` when unset. A Redis
 * store takes `REDIS_PASSWORD[_FILE]`, `REDIS_SENTINEL_PASSWORD[_FILE]`,
 * `REDIS_TLS` and `REDIS_TLS_CA_FILE` / `_CERT_FILE` / `_KEY_FILE` too.
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<StoreSpec> = Config.all([
  Config.string("TOKEN_STORE").pipe(
    Config.mapOrFail(parse),
    Config.withDefault<StoreSpec>({ _tag: "Memory" })
  ),
  redisSettings
]).pipe(Config.mapOrFail(([spec, settings]) => withSettings(spec, settings)))

/**
 * `STORE_ENCRYPTION_KEY[_FILE]`: 32 bytes as 64 hex characters, sealing the
 * secrets a store keeps (refresh tokens, the credential registry).
 *
 * @since 0.3.0
 * @category config
 */
export const encryptionKey: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.option(
  secret("STORE_ENCRYPTION_KEY")
).pipe(
  Config.mapOrFail((key) =>
    Option.match(key, {
      onNone: () => Either.right(Option.none()),
      onSome: (value) =>
        Either.match(SecretBox.make(value), {
          onLeft: (reason) =>
            Either.left(ConfigError.InvalidData(["STORE_ENCRYPTION_KEY"], `STORE_ENCRYPTION_KEY ${reason}`)),
          onRight: () => Either.right(key)
        })
    })
  )
)

/**
 * `store` with the values of `kinds` sealed with `key` at rest (refresh
 * tokens, permanent codes). Values an earlier version stored in clear are
 * sealed when the layer is built.
 *
 * @since 0.3.0
 * @category layers
 */
export const sealing = (
  key: Redacted.Redacted<string>,
  kinds: Iterable<string>
): Layer.Layer<TokenStore, StoreError, TokenStore> =>
  Layer.effect(
    TokenStore,
    Effect.gen(function*() {
      const box = yield* Either.mapLeft(
        SecretBox.make(key),
        (reason) => new StoreError({ operation: "open", detail: `STORE_ENCRYPTION_KEY ${reason}` })
      )
      const store = SealedStore.make(yield* TokenStore, box, new Set(kinds))
      yield* SealedStore.sealStored(store, kinds)
      return store
    })
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

// A TLS file that cannot be read stops start-up naming the variable.
const readTlsFile = (variable: string, path: string | undefined) =>
  path === undefined ? Effect.succeed(undefined) : Either.match(readSecretFile(variable, path), {
    onLeft: (detail) => Effect.fail(new StoreError({ operation: "open", detail })),
    onRight: (content) => Effect.succeed(content)
  })

const tlsFiles = (spec: Extract<StoreSpec, { readonly _tag: "Redis" }>) =>
  Effect.all({
    ca: readTlsFile("REDIS_TLS_CA_FILE", spec.caFile),
    cert: readTlsFile("REDIS_TLS_CERT_FILE", spec.certFile),
    key: Effect.map(readTlsFile("REDIS_TLS_KEY_FILE", spec.keyFile), (key) =>
      key === undefined ? undefined : Redacted.make(key))
  })

/**
 * The store a spec names, with its `StoreDocuments`; the file store on Node's file system. Fails with
 * `StoreError` when the file cannot be read or the Redis adapter's `ioredis`
 * peer dependency is not installed.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  spec: StoreSpec,
  options: {
    /** Seals the values of `sealedKinds` with this key (`STORE_ENCRYPTION_KEY`). @since 0.3.0 */
    readonly encryptionKey?: Option.Option<Redacted.Redacted<string>> | undefined
    /** @since 0.3.0 */
    readonly sealedKinds?: Iterable<string> | undefined
  } = {}
): Layer.Layer<TokenStore | StoreDocuments.StoreDocuments, StoreError> => {
  const base = adapterLayer(spec)
  const key = Option.flatten(Option.fromNullable(options.encryptionKey))
  return Option.isNone(key) ? base : mapStore(base, sealing(key.value, options.sealedKinds ?? []))
}

/**
 * `base` with its `TokenStore` replaced by what `wrap` makes of it (the
 * documents pass through unchanged): sealing, spans.
 *
 * @since 0.3.0
 * @category layers
 */
export const mapStore = <E, E2>(
  base: Layer.Layer<TokenStore | StoreDocuments.StoreDocuments, E>,
  wrap: Layer.Layer<TokenStore, E2, TokenStore>
): Layer.Layer<TokenStore | StoreDocuments.StoreDocuments, E | E2> =>
  Layer.provide(Layer.merge(wrap, Layer.effect(StoreDocuments.StoreDocuments, StoreDocuments.StoreDocuments)), base)

const adapterLayer = (spec: StoreSpec): Layer.Layer<TokenStore | StoreDocuments.StoreDocuments, StoreError> => {
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
          Effect.zip(
            loadAdapter(() => import("./TokenStoreRedis.js"), "the Redis store needs ioredis: npm i ioredis@^5"),
            tlsFiles(spec)
          ),
          ([adapter, files]) =>
            adapter.layer(spec.url, {
              password: spec.password,
              sentinelPassword: spec.sentinelPassword,
              tls: spec.tls,
              ...files
            })
        )
      )
  }
}

/**
 * The memory store with its documents, in this process only: for tests and
 * a single process.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore | StoreDocuments.StoreDocuments> = Layer.merge(
  tokenStoreMemory,
  StoreDocuments.layerMemory
)

/**
 * The store `TOKEN_STORE` names, from the current `ConfigProvider`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  TokenStore | StoreDocuments.StoreDocuments,
  ConfigError.ConfigError | StoreError
> = Layer.unwrapEffect(
  Effect.map(config, layer)
)
