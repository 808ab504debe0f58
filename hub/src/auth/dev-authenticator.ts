/**
 * The development authenticator: any valid username, one shared password. Usernames follow the
 * rule below so they are safe in URLs, routes, pod names and file names without escaping.
 */
import { timingSafeEqual, createHash } from 'node:crypto'

export const USERNAME_RULE = /^[a-z0-9][a-z0-9._-]{0,63}$/

export interface LoginResult {
  readonly ok: boolean
  readonly name?: string
  /** Shown on the login page when not ok. */
  readonly error?: string
}

/** What any login method implements: check a submitted form, return the user name or why not. */
export interface Authenticator {
  readonly kind: string
  authenticate(username: string, password: string): Promise<LoginResult>
}

export function normalizeUsername(raw: string): string {
  return raw.trim().toLowerCase()
}

export function checkUsername(name: string): string | undefined {
  if (name === '') return 'Enter a username.'
  if (!USERNAME_RULE.test(name)) {
    return 'Usernames are 1-64 characters: lowercase letters, digits, and . _ - (starting with a letter or digit).'
  }
  return undefined
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function createDevAuthenticator(password: string): Authenticator {
  const expected = digest(password)
  return {
    kind: 'dev',
    async authenticate(username, submitted) {
      const name = normalizeUsername(username)
      const bad = checkUsername(name)
      if (bad) return { ok: false, error: bad }
      if (!timingSafeEqual(digest(submitted), expected)) return { ok: false, error: 'Invalid username or password.' }
      return { ok: true, name }
    },
  }
}
