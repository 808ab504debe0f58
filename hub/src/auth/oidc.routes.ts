/**
 * The OpenID Connect sign-in routes (JupyterHub GenericOAuthenticator's paths):
 * GET /hub/oauth_login starts the flow, GET /hub/oauth_callback finishes it and opens the same
 * kind of session as the password login. Failures are HttpErrors, which the app's error handler
 * shows as an HTML error page with their status (400 bad state, 403 refused, 502 provider down).
 */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { clearCookie, parseCookies, setCookie, SESSION_COOKIE } from './cookies.js'
import { decide, type Claims } from './oidc-claims.js'
import { STATE_MAX_AGE, type OidcConfig } from './oidc-config.js'
import { HttpError } from '../errors.js'
import { createSession } from './session.repository.js'
import { ensureUser, updateUser } from '../users/user.repository.js'
import { safeNext } from '../pages/safe-next.js'

/** The flow's secrets between login and callback, in the browser that started it (auth/oidc-authenticator.ts). */
const OIDC_STATE_COOKIE = 'fleethub-oidc-state'

/** What these routes need of the OIDC authenticator (auth/oidc-authenticator.ts implements it). */
export interface OidcFlow {
  readonly config: OidcConfig
  readonly redirectUrl: string
  begin(next: string): Promise<{ url: string; cookie: string }>
  finish(query: URLSearchParams, cookie: string | undefined): Promise<{ claims: Claims; next: string }>
}

function hostnameOf(host: string | undefined): string {
  try { return new URL(`http://${host ?? ''}`).hostname } catch { return '' }
}

export function oidcRouter(ctx: HubContext, oidc: OidcFlow): Router {
  const r = Router()
  const secure = oidc.redirectUrl.startsWith('https:')

  r.get('/hub/oauth_login', async (req, res) => {
    const next = safeNext(req.query.next)
    // The state cookie must be set on the host the provider returns to (localhost vs 127.0.0.1,
    // or a second name for the hub), else every callback fails its state check. Hop there once.
    const home = new URL(oidc.redirectUrl)
    if (hostnameOf(req.headers.host) !== home.hostname && req.query.hop === undefined) {
      return res.redirect(302, `${home.origin}/hub/oauth_login?hop=1${next ? `&next=${encodeURIComponent(next)}` : ''}`)
    }
    const { url, cookie } = await oidc.begin(next)
    setCookie(res, OIDC_STATE_COOKIE, cookie, { path: '/hub/', maxAgeSeconds: STATE_MAX_AGE, secure })
    res.set('cache-control', 'no-store').redirect(302, url)
  })

  r.get('/hub/oauth_callback', async (req, res) => {
    const cookie = parseCookies(req.headers.cookie).get(OIDC_STATE_COOKIE)
    clearCookie(res, OIDC_STATE_COOKIE, '/hub/') // single use, whatever happens next
    const q = req.originalUrl.indexOf('?')
    const query = new URLSearchParams(q < 0 ? '' : req.originalUrl.slice(q + 1))
    const { claims, next } = await oidc.finish(query, cookie)
    const d = decide(claims, oidc.config, ctx.settings.adminUsers)
    if (!d.ok) {
      ctx.log.info({ user: d.name, code: d.code }, 'oidc login refused')
      throw new HttpError(d.code, d.message)
    }
    const user = await ensureUser(ctx.db, d.name, { admin: d.admin ?? ctx.settings.adminUsers.has(d.name) })
    if (d.admin === false && user.admin) {
      // admin groups are authoritative: someone who left them is no longer an admin
      await updateUser(ctx.db, user.id, { admin: false })
      ctx.auth.invalidate({ userId: user.id })
    }
    const session = await createSession(ctx.db, user.id, ctx.settings.sessionMaxAge)
    setCookie(res, SESSION_COOKIE, session.cookie, { path: '/', maxAgeSeconds: ctx.settings.sessionMaxAge, secure })
    ctx.log.info({ user: user.name, admin: d.admin ?? user.admin }, 'login')
    res.set('cache-control', 'no-store').redirect(302, next || '/hub/home')
  })

  return r
}
