/**
 * The native authenticator: accounts are the users an admin created (roster import on the admin
 * page, or the REST API); nobody signs themselves up. A user's first sign-in sets their password
 * (at least 8 characters; stored as a bcrypt hash, never the password); later sign-ins check it.
 * Failed attempts are rate-limited per username (and per client address, by the caller), so a
 * password cannot be guessed online; the limit is per hub process.
 */
import bcrypt from 'bcryptjs'
import type { Db } from '../db.js'
import type { Authenticator, AuthenticatorEntry, LoginResult } from './authenticator.js'
import { checkUsername, normalizeUsername } from './username.js'
import { findPasswordHash, setPasswordIfUnset } from '../users/user.repository.js'

export const MIN_PASSWORD_LENGTH = 8
const BCRYPT_COST = 10

export interface NativeAuthOptions {
  /** Failed attempts allowed per username per window before further attempts are refused. Default 5. */
  readonly maxFailures?: number
  /** The window, ms. Default 5 minutes. */
  readonly windowMs?: number
  readonly now?: () => number
}

/** Failures per key in a sliding window; bounded memory (old keys pruned as the map grows). */
export class FailureLimiter {
  readonly #max: number
  readonly #windowMs: number
  readonly #now: () => number
  readonly #failures = new Map<string, number[]>()

  constructor(o: NativeAuthOptions = {}) {
    this.#max = o.maxFailures ?? 5
    this.#windowMs = o.windowMs ?? 5 * 60_000
    this.#now = o.now ?? Date.now
  }

  /** Seconds until `key` may try again, or 0 when it may now. */
  blockedFor(key: string): number {
    const recent = this.#recent(key)
    if (recent.length < this.#max) return 0
    return Math.ceil((recent[0]! + this.#windowMs - this.#now()) / 1000)
  }

  fail(key: string): void {
    const recent = this.#recent(key)
    recent.push(this.#now())
    this.#failures.set(key, recent)
    if (this.#failures.size > 100_000) {
      for (const [k] of this.#failures) { if (this.#recent(k).length === 0) this.#failures.delete(k) }
    }
  }

  clear(key: string): void {
    this.#failures.delete(key)
  }

  #recent(key: string): number[] {
    const cutoff = this.#now() - this.#windowMs
    return (this.#failures.get(key) ?? []).filter(t => t > cutoff)
  }
}

let dummy: Promise<string> | undefined
const dummyHash = () => (dummy ??= bcrypt.hash('no such user', BCRYPT_COST))

export function createNativeAuthenticator(db: Db, options: NativeAuthOptions = {}): Authenticator {
  const limiter = new FailureLimiter(options)
  const refuse = (key: string): LoginResult => {
    limiter.fail(key)
    return { ok: false, error: 'Invalid username or password.' }
  }
  return {
    kind: 'native',
    login: { kind: 'password', hint: 'first-sign-in' },
    async authenticate(username, password) {
      const name = normalizeUsername(username)
      const bad = checkUsername(name)
      if (bad) return { ok: false, error: bad }
      const key = `user:${name}`
      const wait = limiter.blockedFor(key)
      if (wait > 0) return { ok: false, error: `Too many failed attempts. Try again in ${wait} seconds.` }
      const row = await findPasswordHash(db, name)
      if (!row) {
        // the same bcrypt work as a real check: the answer time does not tell who exists
        await bcrypt.compare(password, await dummyHash())
        return refuse(key)
      }
      if (row.passwordHash === null) {
        if (password.length < MIN_PASSWORD_LENGTH) return { ok: false, error: `First sign-in: choose a password of at least ${MIN_PASSWORD_LENGTH} characters.` }
        const hash = await bcrypt.hash(password, BCRYPT_COST)
        // only if still unset: two first sign-ins racing cannot both set it
        if (!await setPasswordIfUnset(db, row.id, hash)) return refuse(key)
        limiter.clear(key)
        return { ok: true, name }
      }
      if (!await bcrypt.compare(password, row.passwordHash)) return refuse(key)
      limiter.clear(key)
      return { ok: true, name }
    },
  }
}

export const nativeAuthenticator: AuthenticatorEntry = {
  help: 'native: accounts admins create, each password set at the user\'s first sign-in',
  describe: () => 'sign-in: native accounts (passwords hashed in the database)',
  create: (_settings, deps) => createNativeAuthenticator(deps.db),
}
