/**
 * Replacing a file so that a crash leaves the old content or the new, never
 * a mix: a temporary file in the same directory (rename is atomic only
 * within one file system), fsync, mode 0600, rename, fsync of the directory.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option, Random } from "effect"
import * as NodePath from "node:path"

/** Owner read/write only: store files hold tokens and sealed secrets. */
export const FILE_MODE = 0o600
/** Owner only. */
export const DIRECTORY_MODE = 0o700

/**
 * Writes `content` (text, or bytes already encoded) to `path` atomically. `beforeRename` runs with the
 * temporary file's path once it is complete, before it takes `path`'s place.
 */
export const write = <E = never>(
  fs: FileSystem.FileSystem,
  path: string,
  content: string | Uint8Array,
  beforeRename: (temp: string) => Effect.Effect<void, E> = () => Effect.void
) =>
  Effect.gen(function*() {
    const directory = NodePath.dirname(path)
    const suffix = (yield* Random.nextIntBetween(0, 2 ** 31)).toString(36)
    const temp = NodePath.join(directory, `.${NodePath.basename(path)}.${suffix}.tmp`)
    yield* Effect.gen(function*() {
      yield* Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open(temp, { flag: "wx", mode: FILE_MODE })
        yield* file.writeAll(typeof content === "string" ? new TextEncoder().encode(content) : content)
        yield* file.sync
      }))
      // The umask may have taken bits away; the mode must be exactly owner read/write.
      yield* fs.chmod(temp, FILE_MODE)
      yield* beforeRename(temp)
      yield* fs.rename(temp, path)
    }).pipe(Effect.onError(() => Effect.ignore(fs.remove(temp))))
    // fsync of the directory makes the rename itself durable; platforms that
    // cannot open a directory still get the atomic rename.
    yield* Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync)).pipe(Effect.ignore)
  })

/**
 * What tells a file changed without reading it: inode, size and modification
 * time. Any writer (an atomic replacement, an operator's edit) changes one.
 */
export const signature = (info: FileSystem.File.Info): string =>
  `${Option.getOrElse(info.ino, () => -1)}:${info.size}:${
    Option.match(info.mtime, { onNone: () => -1, onSome: (date) => date.getTime() })
  }`
