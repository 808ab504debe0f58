/**
 * Signing in and out (contract §5): GET /hub/login shows what the authenticator asks for (a
 * password form, or a provider's button), POST /hub/login checks the form and opens a session,
 * GET /hub/logout ends it.
 */
import express, { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import type { LoginMethod } from './authenticator.js'
import { normalizeUsername, checkUsername } from './username.js'
import { clearCookie, setCookie, SESSION_COOKIE, XSRF_COOKIE } from './cookies.js'
import { checkFormXsrf, xsrfToken } from './xsrf.js'
import { createSession, deleteSession } from './session.repository.js'
import { ensureUser } from '../users/user.repository.js'
import { loginPage, oidcLoginPage } from './login-page.js'
import { sendHtml } from '../pages/page-response.js'
import { safeNext } from '../pages/safe-next.js'

const withNext = (path: string, next: string) => `${path}${next ? `?next=${encodeURIComponent(next)}` : ''}`

function passwordForm(req: Request, res: Response, login: LoginMethod, o: { next: string; error?: string; username?: string }): string {
  const hint = login.kind === 'password' ? login.hint : undefined
  return loginPage({ ...o, xsrf: xsrfToken(req, res), devPasswordHint: hint === 'dev-password', firstSignInHint: hint === 'first-sign-in' })
}

export function loginRouter(ctx: HubContext): Router {
  const r = Router()
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 })
  const { login } = ctx.authenticator

  r.get('/hub/login', (req, res) => {
    const next = safeNext(req.query.next)
    if (res.locals.identity?.kind === 'user') return res.redirect(302, next || '/hub/home')
    if (login.kind === 'provider') {
      const start = withNext(login.startPath, next)
      if (login.autoLogin) return res.redirect(302, start)
      return sendHtml(res, 200, oidcLoginPage({ providerName: login.providerName, loginUrl: start }))
    }
    sendHtml(res, 200, passwordForm(req, res, login, { next }))
  })

  r.post('/hub/login', form, async (req, res) => {
    const next = safeNext(req.query.next)
    if (login.kind === 'provider') return res.redirect(303, withNext('/hub/login', next)) // no passwords here
    const body = (req.body ?? {}) as Record<string, unknown>
    const username = typeof body.username === 'string' ? body.username : ''
    const password = typeof body.password === 'string' ? body.password : ''
    const again = (status: number, error: string) => sendHtml(res, status, passwordForm(req, res, login, { next, error, username }))
    if (!checkFormXsrf(req)) return again(403, 'Your session expired or the form came from another site. Please sign in again.')
    const badName = checkUsername(normalizeUsername(username))
    if (badName) return again(400, badName)
    if (password === '') return again(400, 'Enter your password.')
    const result = await ctx.authenticator.authenticate(username, password)
    if (!result.ok || !result.name) {
      ctx.log.info({ user: normalizeUsername(username) }, 'login failed')
      return again(403, result.error ?? 'Invalid username or password.')
    }
    const user = await ensureUser(ctx.db, result.name, { admin: ctx.settings.adminUsers.has(result.name) })
    const session = await createSession(ctx.db, user.id, ctx.settings.sessionMaxAge)
    setCookie(res, SESSION_COOKIE, session.cookie, { path: '/', maxAgeSeconds: ctx.settings.sessionMaxAge })
    ctx.log.info({ user: user.name }, 'login')
    res.redirect(302, next || '/hub/home')
  })

  r.get('/hub/logout', async (_req, res) => {
    const id = res.locals.identity
    if (id?.sessionId) {
      await deleteSession(ctx.db, id.sessionId) // also revokes the OAuth tokens issued for it
      ctx.auth.invalidate({ sessionId: id.sessionId })
      ctx.log.info({ user: id.name }, 'logout')
    }
    clearCookie(res, SESSION_COOKIE, '/')
    clearCookie(res, XSRF_COOKIE, '/hub/')
    res.redirect(302, '/hub/login')
  })

  return r
}
