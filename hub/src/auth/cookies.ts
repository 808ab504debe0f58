import type { Response } from 'express'

export const SESSION_COOKIE = 'jupyterhub-session-id'
export const XSRF_COOKIE = '_xsrf'

/** Parse a Cookie header; the first occurrence of a name wins (RFC 6265 §5.4 ordering). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (!header) return out
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    const name = part.slice(0, i).trim()
    let value = part.slice(i + 1).trim()
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (name && !out.has(name)) {
      try { out.set(name, decodeURIComponent(value)) } catch { out.set(name, value) }
    }
  }
  return out
}

export interface CookieOptions {
  readonly path?: string
  readonly maxAgeSeconds?: number
  readonly secure?: boolean
}

/**
 * Every cookie the hub sets is HttpOnly and SameSite=Lax, and host-only: no Domain attribute,
 * so a cookie can never carry an IP-address domain.
 */
export function setCookie(res: Response, name: string, value: string, o: CookieOptions = {}): void {
  let c = `${name}=${encodeURIComponent(value)}; Path=${o.path ?? '/'}; HttpOnly; SameSite=Lax`
  if (o.maxAgeSeconds !== undefined) c += `; Max-Age=${o.maxAgeSeconds}`
  if (o.secure) c += '; Secure'
  res.append('Set-Cookie', c)
}

export function clearCookie(res: Response, name: string, path = '/'): void {
  res.append('Set-Cookie', `${name}=; Path=${path}; HttpOnly; SameSite=Lax; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`)
}
