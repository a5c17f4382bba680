/**
 * Console sessions: an ops or admin key presented once on the sign-in form
 * buys a session of short, sliding lifetime, carried in an `HttpOnly`,
 * `SameSite=Strict` cookie scoped to `/console`; each session has its own
 * CSRF token, which every action must send back.
 */
import { Clock, Effect, Redacted } from "effect"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import * as ClientAuth from "../../ClientAuth.js"

export const COOKIE = "console_session"

/** Sessions beyond this many push out the oldest: the keys are few, their holders fewer. */
const MAX_SESSIONS = 1_000

export interface Session {
  readonly id: string
  readonly csrf: string
  /** Who signed in, for the audit line: a fingerprint of the key, never the key. */
  readonly who: string
  /** Signed in with an admin key: the id the registry's audit names it by. Ops keys have none. */
  readonly actor: string | undefined
  expiresAt: number
}

export interface Sessions {
  /** A new session for `key` when it is one that may sign in. */
  readonly signIn: (key: string) => Effect.Effect<Session | undefined>
  /** The live session a `Cookie` header names, its lifetime extended; `undefined` when none. */
  readonly current: (cookieHeader: string | undefined) => Effect.Effect<Session | undefined>
  readonly end: (session: Session) => Effect.Effect<void>
  /** Whether `presented` is the session's CSRF token, compared in constant time. */
  readonly csrfMatches: (session: Session, presented: string | undefined) => boolean
}

const fingerprint = (key: string) => `key ${createHash("sha256").update(key, "utf8").digest("hex").slice(0, 8)}`

// Session ids and CSRF tokens are bearer secrets: they come from the
// operating system's CSPRNG, never from a seedable generator.
const secret = () => randomBytes(32).toString("base64url")

export const cookieValue = (header: string | undefined, name: string): string | undefined => {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=")
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export const make = (
  keys: ReadonlyArray<Redacted.Redacted<string>>,
  lifetimeMillis: number,
  admin: { readonly keys: ReadonlyArray<Redacted.Redacted<string>>; readonly actor: (key: string) => string } = {
    keys: [],
    actor: () => ""
  }
): Sessions => {
  const match = ClientAuth.matcher(keys.map((key) => ({ key })))
  const isAdmin = ClientAuth.matcher(admin.keys.map((key) => ({ key })))
  const sessions = new Map<string, Session>()
  const live = (id: string | undefined, now: number) => {
    const session = id === undefined ? undefined : sessions.get(id)
    if (session === undefined || session.expiresAt > now) return session
    sessions.delete(session.id)
    return undefined
  }
  return {
    signIn: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = key === "" ? undefined : match(key)
        if (entry === undefined) return undefined
        for (const [id, held] of sessions) {
          if (sessions.size < MAX_SESSIONS && held.expiresAt > now) break
          sessions.delete(id)
        }
        const session: Session = {
          id: secret(),
          csrf: secret(),
          who: fingerprint(Redacted.value(entry.key)),
          actor: isAdmin(key) === undefined ? undefined : admin.actor(key),
          expiresAt: now + lifetimeMillis
        }
        sessions.set(session.id, session)
        return session
      }),
    current: (header) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const session = live(cookieValue(header, COOKIE), now)
        if (session !== undefined) session.expiresAt = now + lifetimeMillis
        return session
      }),
    end: (session) => Effect.sync(() => sessions.delete(session.id)),
    csrfMatches: (session, presented) => {
      if (presented === undefined) return false
      const expected = Buffer.from(session.csrf)
      const given = Buffer.from(presented)
      return given.length === expected.length && timingSafeEqual(given, expected)
    }
  }
}
