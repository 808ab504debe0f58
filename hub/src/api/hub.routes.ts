/** /hub/api/info, /proxy (contract §7.9) and /services (§7.10). */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { JUPYTERHUB_API_VERSION } from '../context.js'
import { grants } from '../auth/scopes.js'
import { HttpError } from '../errors.js'
import { needScope } from './guards.js'
import { serviceModel } from './models.js'
import { paginate, parsePage } from './pagination.js'

export function hubRouter(ctx: HubContext): Router {
  const r = Router()

  r.get('/info', (_req, res) => {
    needScope(res, ['read:hub'])
    res.json({
      version: JUPYTERHUB_API_VERSION, node: process.version, sys_executable: process.execPath,
      spawner: { class: ctx.settings.spawnerKind, version: JUPYTERHUB_API_VERSION },
      authenticator: { class: ctx.authenticator.kind, version: JUPYTERHUB_API_VERSION },
    })
  })

  r.get('/proxy', async (req, res) => {
    needScope(res, ['proxy'])
    const page = parsePage(req)
    const routes = await ctx.proxyRoutes.getRoutes()
    const all = Object.entries(routes).filter(([, r]) => r.jupyterhub === true).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const out: Record<string, unknown> = {}
    for (const [key, route] of all.slice(page.offset, page.offset + page.limit)) {
      const { target, jupyterhub: _j, ...data } = route
      const routespec = key === '/' ? '/' : `${key.split('/').map(encodeURIComponent).join('/')}/`
      out[routespec] = { routespec, target, data }
    }
    res.json(paginate(req, page, out, all.length))
  })

  r.post('/proxy', async (_req, res) => {
    needScope(res, ['proxy'])
    await ctx.routes.check()
    res.status(200).end()
  })

  r.get('/services', (_req, res) => {
    const id = needScope(res, ['list:services', 'read:services:name'])
    const out: Record<string, unknown> = {}
    for (const s of ctx.settings.services) if (grants(id.scopes, 'read:services:name') || grants(id.scopes, 'list:services')) out[s.name] = serviceModel(id.scopes, s)
    res.json(out)
  })

  r.get('/services/:name', (req, res) => {
    const id = needScope(res, ['read:services', 'read:services:name'])
    const s = ctx.settings.services.find(x => x.name === req.params.name)
    if (!s) throw new HttpError('HUB_SERVICE_NOT_FOUND', `No such service: ${req.params.name}`)
    res.json(serviceModel(id.scopes, s))
  })

  return r
}
