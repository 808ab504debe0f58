/**
 * The hub's express app: request ids and security headers, the OAuth provider and REST API under
 * /hub/api, the pages, and one error handler at the edge (error-handler.ts).
 */
import express, { type Router } from 'express'
import type { HubContext } from './context.js'
import { JUPYTERHUB_API_VERSION } from './context.js'
import { HttpError } from './errors.js'
import { errorHandler } from './error-handler.js'
import { requestLog } from './request-id.js'
import { apiRouter } from './api/api.routes.js'
import { oauthRouter } from './oauth/oauth.routes.js'
import { pagesRouter } from './pages/pages.routes.js'
import { adminRouter } from './admin/admin.routes.js'
import { createStaticAssets } from './pages/static-assets.js'
import { identifyApi } from './auth/identify.js'
import { needScope } from './api/guards.js'

/** `extraApiRouters` are mounted under /hub/api beside the REST API (the culler's admin routes). */
export function createApp(ctx: HubContext, extraApiRouters: readonly Router[] = []): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')

  const logRequests = requestLog(ctx.log)
  if (logRequests) app.use(logRequests)
  app.use((req, res, next) => {
    const api = req.path.startsWith('/hub/api')
    res.set({
      'x-jupyterhub-version': JUPYTERHUB_API_VERSION,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      'content-security-policy': api ? "frame-ancestors 'self'; default-src 'none'" : "frame-ancestors 'self'",
    })
    next()
  })

  app.use(ctx.metrics.middleware)
  app.get('/hub/metrics', identifyApi(ctx), async (_req, res) => {
    needScope(res, ['read:metrics'])
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics())
  })
  app.get('/hub/health', async (_req, res) => {
    await ctx.db.selectNoFrom(eb => eb.val(1).as('ok')).execute()
    res.json({ status: 'ok' })
  })
  app.use('/hub/api/oauth2', oauthRouter(ctx))
  app.use('/hub/api', apiRouter(ctx))
  for (const router of extraApiRouters) app.use('/hub/api', router)
  const assets = createStaticAssets()
  app.use(assets.router)
  app.use(adminRouter(ctx, assets))
  app.use(pagesRouter(ctx))
  app.use(req => {
    throw new HttpError('HUB_NOT_FOUND', req.path.startsWith('/hub/api') ? undefined : `Nothing here: ${req.path}`)
  })
  app.use(errorHandler(ctx.log))
  return app
}
