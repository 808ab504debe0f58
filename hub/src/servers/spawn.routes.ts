/**
 * Starting and stopping one's own server from the browser: /hub/spawn (a quick start goes straight
 * to the server, as JupyterHub does; a slow one to the progress page), /hub/stop and /hub/spawn-pending.
 */
import express, { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import { checkFormXsrf, xsrfToken } from '../auth/xsrf.js'
import { findServer } from './server.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import { HttpError } from '../errors.js'
import { within } from '../within.js'
import { spawnPendingPage } from './server-pages.js'
import { requireLogin, sendHtml } from '../pages/page-response.js'
import { safeNext } from '../pages/safe-next.js'

export function spawnRouter(ctx: HubContext): Router {
  const r = Router()
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 })

  const spawn = async (req: Request, res: Response) => {
    const me = requireLogin(req, res)
    if (!me) return
    const target = typeof req.params.user === 'string' ? req.params.user : me.name
    if (target !== me.name) throw new HttpError('HUB_FORBIDDEN', 'You can only start your own server.')
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
    if (!checkFormXsrf(req)) throw new HttpError('HUB_XSRF')
    await spawn(req, res)
  })

  r.post('/hub/stop', form, async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    if (!checkFormXsrf(req)) throw new HttpError('HUB_XSRF')
    const server = await findServer(ctx.db, me.userId, '')
    if (server) await ctx.spawns.stop(server, 'stopped by the user')
    res.redirect(303, '/hub/home')
  })

  r.get('/hub/spawn-pending/:user', async (req, res) => {
    const me = requireLogin(req, res)
    if (!me) return
    if (req.params.user !== me.name) throw new HttpError('HUB_FORBIDDEN', 'This is not your server.')
    const next = safeNext(req.query.next) || serverPrefix(me.name, '')
    const server = await findServer(ctx.db, me.userId, '')
    if (server?.state === 'running') return res.redirect(302, next)
    if (server?.state !== 'pending') return res.redirect(302, '/hub/home')
    sendHtml(res, 200, spawnPendingPage({ user: me.name, next, progressUrl: `/hub/api/users/${encodeURIComponent(me.name)}/server/progress`, serverLabel: 'your server', xsrf: xsrfToken(req, res), admin: res.locals.identity?.admin }))
  })

  return r
}
