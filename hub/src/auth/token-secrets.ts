/**
 * Token and secret material. API tokens are 32 hex characters like JupyterHub's; only a short
 * prefix (indexed) and a sha256 hash are stored. Tokens are 128 random bits, so a fast hash is
 * enough (no dictionary to attack); comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const TOKEN_PREFIX_LENGTH = 4

export function newToken(): string {
  return randomBytes(16).toString('hex')
}

/** OAuth access tokens and codes: 30 alphanumerics, as JupyterHub issues them. */
export function newOauthToken(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = randomBytes(30)
  let s = ''
  for (const b of bytes) s += alphabet[b % alphabet.length] // 256 % 62 bias is negligible at 178 bits
  return s
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function tokenPrefix(token: string): string {
  return token.slice(0, TOKEN_PREFIX_LENGTH)
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex'), y = Buffer.from(b, 'hex')
  return x.length === y.length && timingSafeEqual(x, y)
}
