/**
 * The file adapter of `TokenStore`: one JSON file, for a single process that
 * must keep its tokens across restarts (a restart then neither burns quota
 * nor kills the token it handed out).
 *
 * - Document: `{"format":"effect-wechat-token/v1","records":{"<appId>/<kind>": record}}`,
 *   holding tokens and tickets only, never an app secret.
 * - Writes are serialized, compare-and-set by generation, and atomic: a
 *   temporary file in the same directory, fsync, rename over `path`. The file
 *   has mode 0600; a missing directory is created (mode 0700). Sets that
 *   arrive while a write is in flight share the next write; each returns
 *   once its record is durable.
 * - The document is kept in memory and read again only when the file
 *   changes. Every write rewrites the whole file: at 100,000 authorizers
 *   (tens of MB) that is a second or two per write, so beyond some
 *   thousands of credentials Redis, one key per record, is the better store.
 * - A missing file is an empty store. A corrupt, truncated, foreign or
 *   wrong-format file is an empty store too (logged, never trusted), and the
 *   next write moves it aside to `path.corrupt` instead of destroying it. A
 *   single malformed record is dropped (logged); the others are kept.
 * - A path that cannot be read at all (a directory, no permission, a file in
 *   the way of its directory) fails the layer with `StoreError`, so a server
 *   refuses to start instead of running without the store it was given.
 * - `lease` always grants, `changes` is empty, `healthy` is true: two
 *   processes sharing one file may lose each other's writes; share Redis instead.
 * - `StoreDocuments` (the credential registry) live beside it in `path.documents/`.
 *
 * @since 0.2.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Layer } from "effect"
import * as FileDocuments from "./internal/fileDocuments.js"
import * as FileStore from "./internal/fileStore.js"
import { StoreDocuments } from "./StoreDocuments.js"
import { type StoreError, TokenStore } from "./TokenStore.js"

/**
 * The file store on any `FileSystem`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  path: string
): Layer.Layer<TokenStore | StoreDocuments, StoreError, FileSystem.FileSystem> =>
  Layer.merge(Layer.effect(TokenStore, FileStore.make(path)), Layer.effect(StoreDocuments, FileDocuments.make(path)))

/**
 * The file store on Node's file system.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerNode = (path: string): Layer.Layer<TokenStore | StoreDocuments, StoreError> =>
  layer(path).pipe(Layer.provide(NodeFileSystem.layer))
