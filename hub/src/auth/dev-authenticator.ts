/**
 * The development authenticator (`--authenticator dev`, the default): any valid username, one
 * shared password (FLEETHUB_DEV_PASSWORD, or a random one printed at start).
 */
import { timingSafeEqual, createHash } from 'node:crypto'
import type { Authenticator, AuthenticatorEntry } from './authenticator.js'
import { checkUsername, normalizeUsername } from './username.js'

const digest = (s: string) => createHash('sha256').update(s).digest()

export function createDevAuthenticator(password: string): Authenticator {
  const expected = digest(password)
  return {
    kind: 'dev',
    login: { kind: 'password', hint: 'dev-password' },
    async authenticate(username, submitted) {
      const name = normalizeUsername(username)
      const bad = checkUsername(name)
      if (bad) return { ok: false, error: bad }
      if (!timingSafeEqual(digest(submitted), expected)) return { ok: false, error: 'Invalid username or password.' }
      return { ok: true, name }
    },
  }
}

export const devAuthenticator: AuthenticatorEntry = {
  help: 'dev: any username + the dev password',
  describe: s => s.devPasswordGenerated
    ? `development login: any username (lowercase letters, digits, . _ -), password: ${s.devPassword}`
    : 'development login: any username, with the password in FLEETHUB_DEV_PASSWORD',
  create: s => createDevAuthenticator(s.devPassword),
}
