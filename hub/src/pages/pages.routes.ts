/**
 * The browser pages (contract §5): login, logout, home, spawn, spawn-pending, the "not running"
 * page for /user/<name>/ when no route exists, and the proxy's error target.
 */
import express, { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import { checkUsername, normalizeUsername } from '../auth/dev-authenticator.js'
import { clearCookie, setCookie, SESSION_COOKIE, XSRF_COOKIE } from '../auth/cookies.js'
import { identifyBrowser } from '../auth/identify.js'
import { checkFormXsrf, xsrfToken } from '../auth/xsrf.js'
import { createSession, deleteSession } from '../sessions/session.repository.js'
import { ensureUser } from '../users/user.repository.js'
import { findServer, type ServerRecord } from '../servers/server.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import { tokenPage } from './token-page.js'
import { oidcRouter } from './oidc.routes.js'
import { isOidcAuthenticator } from '../auth/oidc-authenticator.js'
import { errorPage, homePage, loginPage, notRunningPage, oidcLoginPage, spawnPendingPage, type ProfileOption, type ServerView } from './pages.js'
import { HttpError } from '../errors.js'
import { within } from '../within.js'

/** Only same-site paths: `/x`, never `//evil.example` or `/\evil.example`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return ''
  return next
}

function sendHtml(res: Response, status: number, body: string): void {
  res.status(status).type('html').set('cache-control', 'no-store').send(body)
}

function requireLogin(req: Request, res: Response): { name: string; userId: string } | undefined {
  const id = res.locals.identity
  if (id?.kind === 'user' && id.userId) return { name: id.name, userId: id.userId }
  res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`)
  return undefined
}

function view(server: ServerRecord | undefined, user: string): ServerView {
  return {
    name: server?.name ?? '', state: server?.state ?? 'stopped', url: serverPrefix(user, server?.name ?? ''),
    lastError: server?.lastError ?? null, lastActivity: server?.lastActivity ?? null,
  }
}

/** The spawner's profiles, if it offers any (the Kubernetes spawner does). */
function spawnerProfiles(ctx: HubContext): ProfileOption[] | undefined {
  const spawner = ctx.spawns.spawner as { profiles?: () => ProfileOption[] }
  return spawner.profiles?.()
}

export function pagesRouter(ctx: HubContext): Router {
  const r = Router()
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 })
  r.use(identifyBrowser(ctx))

  const root = (_req: Request, res: Response) => res.redirect(302, res.locals.identity ? '/hub/home' : '/hub/login')
  r.get('/', root)
  r.get(['/hub', '/hub/'], root)

  // Single sign-on: the login page is a button (or, with autoLogin, a redirect) to the provider.
  const oidc = isOidcAuthenticator(ctx.authenticator) ? ctx.authenticator : undefined
  if (oidc) r.use(oidcRouter(ctx, oidc))

  r.get('/hub/login', (req, res) => {
    const next = safeNext(req.query.next)
    if (res.locals.identity?.kind === 'user') return res.redirect(302, next || '/hub/home')
    if (oidc) {
      const start = `/hub/oauth_login${next ? `?next=${encodeURIComponent(next)}` : ''}`
      if (oidc.config.autoLogin) return res.redirect(302, start)
      return sendHtml(res, 200, oidcLoginPage({ providerName: oidc.config.providerName, loginUrl: start }))
    }
    sendHtml(res, 200, loginPage({ next, xsrf: xsrfToken(req, res), devPasswordHint: ctx.settings.devLogin, firstSignInHint: ctx.authenticator.kind === 'native' }))
  })

  r.post('/hub/login', form, async (req, res) => {
    const next = safeNext(req.query.next)
    if (oidc) return res.redirect(303, `/hub/login${next ? `?next=${encodeURIComponent(next)}` : ''}`) // no passwords here
    const body = (req.body ?? {}) as Record<string, unknown>
    const username = typeof body.username === 'string' ? body.username : ''
    const password = typeof body.password === 'string' ? body.password : ''
    const again = (status: number, error: string) =>
      sendHtml(res, status, loginPage({ next, xsrf: xsrfToken(req, res), error, username, devPasswordHint: ctx.settings.devLogin, firstSignInHint: ctx.authenticator.kind === 'native' }))
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

  r.get('/hub/home', async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    const server = await findServer(ctx.db, me.userId, '')
    sendHtml(res, 200, homePage({ user: me.name, server: view(server, me.name), xsrf: xsrfToken(req, res), admin: res.locals.identity?.admin, profiles: spawnerProfiles(ctx) }))
  })

  r.get('/hub/token', (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    sendHtml(res, 200, tokenPage({ user: me.name, admin: res.locals.identity?.admin }))
  })

  const spawn = async (req: Request, res: Response) => {
    const me = requireLogin(req, res)
    if (!me) return
    const target = typeof req.params.user === 'string' ? req.params.user : me.name
    if (target !== me.name) throw new HttpError(403, 'HUB_FORBIDDEN', 'You can only start your own server.')
    const next = safeNext(req.query.next)
    // a profile picked in the start form; the spawner validates it (unknown -> a clear failure)
    const profile = (req.body as Record<string, unknown> | undefined)?.profile ?? req.query.profile
    const userOptions = typeof profile === 'string' && profile !== '' ? { profile: profile.slice(0, 100) } : {}
    const outcome = await ctx.spawns.spawn({ id: me.userId, name: me.name }, '', userOptions)
    // Wait a moment: a fast spawn goes straight to the server, as JupyterHub does.
    const p = ctx.spawns.progressFor(outcome.server.id)
    if (p && !p.done) await within(p.finished, ctx.settings.spawnPageWaitMs)
    const pending = `/hub/spawn-pending/${encodeURIComponent(me.name)}${next ? `?next=${encodeURIComponent(next)}` : ''}`
    res.redirect(302, p?.phase === 'ready' || outcome.status === 'running' ? (next || serverPrefix(me.name, '')) : pending)
  }
  r.get(['/hub/spawn', '/hub/spawn/:user'], spawn)
  r.post('/hub/spawn', form, async (req, res) => {
    if (!checkFormXsrf(req)) throw new HttpError(403, 'HUB_XSRF', 'The form came from another site or your session expired; reload the page and try again.')
    await spawn(req, res)
  })

  r.post('/hub/stop', form, async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    if (!checkFormXsrf(req)) throw new HttpError(403, 'HUB_XSRF', 'The form came from another site or your session expired; reload the page and try again.')
    const server = await findServer(ctx.db, me.userId, '')
    if (server) await ctx.spawns.stop(server, 'stopped by the user')
    res.redirect(303, '/hub/home')
  })

  r.get('/hub/spawn-pending/:user', async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    if (req.params.user !== me.name) throw new HttpError(403, 'HUB_FORBIDDEN', 'This is not your server.')
    const next = safeNext(req.query.next) || serverPrefix(me.name, '')
    const server = await findServer(ctx.db, me.userId, '')
    if (server?.state === 'running') return res.redirect(302, next)
    if (server?.state !== 'pending') return res.redirect(302, '/hub/home')
    sendHtml(res, 200, spawnPendingPage({ user: me.name, next, progressUrl: `/hub/api/users/${encodeURIComponent(me.name)}/server/progress`, serverLabel: 'your server', xsrf: xsrfToken(req, res), admin: res.locals.identity?.admin }))
  })

  // No route for this user server exists, so the proxy's default route brought the request here.
  r.all('/user/:user/{*rest}', (req, res) => {
    const q = req.originalUrl.indexOf('?')
    const path = q < 0 ? req.originalUrl : req.originalUrl.slice(0, q)
    res.redirect(302, `/hub${path}${q < 0 ? '' : req.originalUrl.slice(q)}`)
  })
  r.all('/user/:user', (req, res) => res.redirect(302, `/hub/user/${encodeURIComponent(req.params.user)}/`))

  r.get(['/hub/user/:user', '/hub/user/:user/{*rest}'], async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    const owner = req.params.user as string
    const rest = Array.isArray(req.params.rest) ? (req.params.rest as string[]).map(encodeURIComponent).join('/') : ''
    if (owner !== me.name) {
      return sendHtml(res, 403, errorPage({ status: 403, user: me.name, message: `You do not have access to the server of ${owner}.` }))
    }
    const server = await findServer(ctx.db, me.userId, '')
    const selfUrl = `/hub/user/${encodeURIComponent(owner)}/${rest}`
    if (server?.state === 'pending') return res.redirect(303, `/hub/spawn-pending/${encodeURIComponent(owner)}?next=${encodeURIComponent(selfUrl)}`)
    if (server?.state === 'running') {
      // The route exists now (or is being repaired): bounce back, counting hops to break loops.
      const hops = Number(req.query.redirects ?? 0) || 0
      if (hops >= 5) return sendHtml(res, 503, errorPage({ status: 503, user: me.name, message: 'Your server is running but the proxy does not route to it yet. Try again in a moment.' }))
      return res.redirect(302, `${serverPrefix(owner, '')}${rest}?redirects=${hops + 1}`)
    }
    const spawnUrl = `/hub/spawn/${encodeURIComponent(owner)}?next=${encodeURIComponent(selfUrl)}`
    if (rest.startsWith('api/') && !req.accepts('html')) {
      return res.status(424).json({ status: 424, message: `Server no longer running at /user/${owner}/${rest}. Restart the server at ${spawnUrl}` })
    }
    sendHtml(res, 424, notRunningPage({ user: me.name, owner, spawnUrl, lastError: server?.lastError ?? null }))
  })

  // The proxy's error target (contract §2.6): GET /hub/error/<code>?url=<original path>.
  r.get('/hub/error/:code', (req, res) => {
    const code = Number(req.params.code)
    const status = Number.isInteger(code) && code >= 400 && code < 600 ? code : 500
    const url = typeof req.query.url === 'string' ? req.query.url : undefined
    const message = status === 404 ? 'Nothing is served at this address.' : status === 503 ? 'The server did not answer.' : 'Something went wrong.'
    sendHtml(res, 200, errorPage({ status, message, url, user: res.locals.identity?.name }))
  })

  return r
}

