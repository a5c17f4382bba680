/**
 * A secret variable that may also be given as a file: `NAME` or `NAME_FILE`.
 * Orchestrators hand secrets over as files (Docker and Kubernetes secrets)
 * because a variable's value shows in `ps e`, `/proc/PID/environ` and crash
 * dumps; a path does not.
 */
import { Config, ConfigError, Either, Option, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { invalid } from "./credentialList.js"

// An editor or `echo` ends the file with a newline that is no part of the secret.
const TRAILING_NEWLINES = /[\r\n]+$/

/**
 * The content of the file `variable` names. The failure is a line naming the
 * variable and the reason (`ENOENT`, `EACCES`), never the content.
 */
export const readSecretFile = (variable: string, path: string): Either.Either<string, string> => {
  try {
    const content = readFileSync(path, "utf8").replace(TRAILING_NEWLINES, "")
    return content.trim() === "" ? Either.left(`${variable}: the file it names is empty`) : Either.right(content)
  } catch (error) {
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "unreadable"
    return Either.left(`${variable}: cannot read the file it names (${code})`)
  }
}

/**
 * `name`'s value, or the content of the file `name_FILE` names. Both set is
 * refused (which one wins would be a guess); neither set is missing data, so
 * `Config.option` and `Config.withDefault` work as for a plain variable.
 */
export const secret = (name: string): Config.Config<Redacted.Redacted<string>> => {
  const fileVariable = `${name}_FILE`
  return Config.all([Config.option(Config.string(name)), Config.option(Config.string(fileVariable))]).pipe(
    Config.mapOrFail(([value, file]): Either.Either<Redacted.Redacted<string>, ConfigError.ConfigError> => {
      if (Option.isSome(value) && Option.isSome(file)) {
        return Either.left(invalid(name, `set ${name} or ${fileVariable}, not both`))
      }
      // `NAME=` (a template left unfilled) is no secret: said as missing,
      // not accepted and then sent to WeChat as an empty one.
      if (Option.isSome(value) && value.value.trim() === "") {
        return Either.left(invalid(name, `missing (${name} is set but empty)`))
      }
      if (Option.isSome(value)) return Either.right(Redacted.make(value.value))
      if (Option.isSome(file)) {
        return Either.mapBoth(readSecretFile(fileVariable, file.value), {
          onLeft: (message) => ConfigError.InvalidData([fileVariable], message),
          onRight: Redacted.make
        })
      }
      return Either.left(
        ConfigError.MissingData([name], `${name}: missing (set ${name}, or ${fileVariable} to a file holding it)`)
      )
    })
  )
}

/** A secret list variable (`WECHAT_APPS`, …) parsed once read, from the variable or its file. */
export const secretList = <A>(
  name: string,
  parse: (name: string, raw: string) => Either.Either<A, ConfigError.ConfigError>
): Config.Config<A> => secret(name).pipe(Config.mapOrFail((raw) => parse(name, Redacted.value(raw))))
