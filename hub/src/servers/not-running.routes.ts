/**
 * /user/<name>/... reaches the hub only when the proxy has no route for that server (its default
 * route points here). Bounce to /hub/user/<name>/..., which starts, waits for, or explains the server.
 */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { findServer } from './server.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import { HttpError } from '../errors.js'
import { notRunningPage } from './server-pages.js'
import { requireLogin, sendHtml } from '../pages/page-response.js'

/** Hops back to the proxy before giving up: a route being repaired appears within a few. */
const MAX_HOPS = 5
/**
 * A bounce that came back (the route still missing) waits before the next: 250 ms, 500 ms, 1 s,
 * 2 s, so the hops cover ~4 s of a route on its way (a proxy reloading its table, notifications
 * late on a busy database) rather than a few milliseconds. JupyterHub sleeps min(2^n, 10) s here.
 * At 5,000 users with two route-store proxies, a user went through all ten redirects a browser
 * client allowed in well under a second, and failed (bench-results round 9, restart-5000).
 */
export function bounceDelayMs(hops: number): number {
  return hops <= 0 ? 0 : Math.min(250 * 2 ** (hops - 1), 4000)
}

export function notRunningRouter(ctx: HubContext): Router {
  const r = Router()
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
    if (owner !== me.name) throw new HttpError('HUB_FORBIDDEN', `You do not have access to the server of ${owner}.`)
    const server = await findServer(ctx.db, me.userId, '')
    const selfUrl = `/hub/user/${encodeURIComponent(owner)}/${rest}`
    if (server?.state === 'pending') return res.redirect(303, `/hub/spawn-pending/${encodeURIComponent(owner)}?next=${encodeURIComponent(selfUrl)}`)
    if (server?.state === 'running') {
      // The route exists now (or is being repaired): bounce back, counting hops to break loops.
      const hops = Number(req.query.redirects ?? 0) || 0
      if (hops >= MAX_HOPS) throw new HttpError('HUB_ROUTE_MISSING')
      if (hops > 0) await new Promise(resolve => setTimeout(resolve, bounceDelayMs(hops)))
      return res.redirect(302, `${serverPrefix(owner, '')}${rest}?redirects=${hops + 1}`)
    }
    const spawnUrl = `/hub/spawn/${encodeURIComponent(owner)}?next=${encodeURIComponent(selfUrl)}`
    if (rest.startsWith('api/') && !req.accepts('html')) {
      res.locals.errorFormat = 'json' // a notebook frontend's API call: JupyterHub answers it in JSON
      throw new HttpError('HUB_SERVER_NOT_RUNNING', `Server no longer running at /user/${owner}/${rest}. Restart the server at ${spawnUrl}`)
    }
    sendHtml(res, 424, notRunningPage({ user: me.name, owner, spawnUrl, lastError: server?.lastError ?? null }))
  })

  return r
}
