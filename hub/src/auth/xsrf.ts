/**
 * Cross-site request protection for cookie-authenticated requests.
 * Forms: a double-submit token (an HttpOnly `_xsrf` cookie echoed in a hidden field) plus an
 * Origin check. Cookie-authenticated API calls: the request must come from our own origin
 * (Origin, else Referer; JupyterHub 3's rule, which its own pages' fetch/EventSource satisfy).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { Request, Response } from 'express'
import { parseCookies, setCookie, XSRF_COOKIE } from './cookies.js'

/** The xsrf token for this browser, set as a cookie if it has none yet. */
export function xsrfToken(req: Request, res: Response): string {
  const existing = parseCookies(req.headers.cookie).get(XSRF_COOKIE)
  if (existing && /^[A-Za-z0-9_-]{16,64}$/.test(existing)) return existing
  const token = randomBytes(18).toString('base64url')
  setCookie(res, XSRF_COOKIE, token, { path: '/hub/' })
  return token
}

function originOf(url: string): string | undefined {
  try { return new URL(url).origin } catch { return undefined }
}

/** Our own origin as the browser sees it (through the proxy, which keeps Host). */
function expectedOrigin(req: Request): string {
  const proto = (req.headers['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() || req.protocol
  return `${proto}://${req.headers.host ?? ''}`
}

/** True when Origin (or, lacking it, Referer) names our origin; false when either names another or both are absent. */
export function isSameOrigin(req: Request): boolean {
  const site = req.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return false
  const want = expectedOrigin(req)
  const origin = req.headers.origin
  if (origin && origin !== 'null') return origin === want
  const referer = req.headers.referer
  return referer !== undefined && originOf(referer) === want
}

/** A form post is genuine when its `_xsrf` field matches the cookie and no foreign Origin sent it. */
export function checkFormXsrf(req: Request): boolean {
  const cookie = parseCookies(req.headers.cookie).get(XSRF_COOKIE)
  const field = (req.body as Record<string, unknown> | undefined)?._xsrf
  if (!cookie || typeof field !== 'string' || cookie.length !== field.length) return false
  if (!timingSafeEqual(Buffer.from(cookie), Buffer.from(field))) return false
  const origin = req.headers.origin
  if (origin && origin !== 'null' && origin !== expectedOrigin(req)) return false
  return req.headers['sec-fetch-site'] !== 'cross-site'
}
