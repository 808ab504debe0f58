/**
 * Cookies of the single-user server: parsing, `Set-Cookie` formatting, and sealing.
 *
 * Sealed values are AES-256-GCM encrypted with a key that lives only in this process, with the
 * cookie name and expiry bound in as associated data: a value cannot be read, forged, moved to
 * another cookie name (e.g. state cookie -> auth cookie) or kept past its expiry. A restart makes
 * old cookies unreadable, which only costs the user a silent OAuth round trip.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    let value = part.slice(eq + 1).trim()
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1)
    // First one wins, as in browsers' ordering (most specific path first).
    if (!out.has(name)) out.set(name, value)
  }
  return out
}

export interface CookieOptions {
  readonly path: string
  readonly maxAgeS?: number
  readonly httpOnly?: boolean
  readonly sameSite?: 'Lax' | 'Strict'
}

export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path}`]
  if (options.maxAgeS !== undefined) {
    parts.push(`Max-Age=${options.maxAgeS}`, `Expires=${new Date(Date.now() + options.maxAgeS * 1000).toUTCString()}`)
  }
  if (options.httpOnly !== false) parts.push('HttpOnly')
  parts.push(`SameSite=${options.sameSite ?? 'Lax'}`)
  return parts.join('; ')
}

export function clearCookie(name: string, path: string): string {
  return `${name}=; Path=${path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax`
}

/** Encrypts and authenticates cookie values with a per-instance random key. */
export class CookieSealer {
  readonly #key = randomBytes(32)

  seal(name: string, value: string, maxAgeS: number): string {
    const expires = Math.floor(Date.now() / 1000) + maxAgeS
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(`${name}|${expires}`))
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()])
    return `${expires}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`
  }

  /** The original value, or undefined when the value is not ours, tampered with, or expired. */
  unseal(name: string, sealed: string | undefined): string | undefined {
    if (!sealed) return undefined
    const dot = sealed.indexOf('.')
    const expires = Number(sealed.slice(0, dot))
    if (dot <= 0 || !Number.isSafeInteger(expires) || expires < Date.now() / 1000) return undefined
    const raw = Buffer.from(sealed.slice(dot + 1), 'base64url')
    if (raw.length < 28) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12))
      decipher.setAAD(Buffer.from(`${name}|${expires}`))
      decipher.setAuthTag(raw.subarray(12, 28))
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }
}
