/**
 * The hub's express app: security headers, the OAuth provider and REST API under /hub/api, the
 * pages, and one error handler at the edge that maps errors to JupyterHub's error body.
 */
import express, { type ErrorRequestHandler, type Router } from 'express'
import { randomBytes } from 'node:crypto'
import type { HubContext } from './context.js'
import { JUPYTERHUB_API_VERSION } from './context.js'
import { HttpError } from './errors.js'
import { apiRouter } from './api/api.routes.js'
import { oauthRouter } from './oauth/oauth.routes.js'
import { pagesRouter } from './pages/pages.routes.js'
import { adminRouter } from './admin/admin.routes.js'
import { errorPage } from './pages/pages.js'
import { createStaticAssets } from './pages/static-assets.js'
import { identifyApi } from './auth/identify.js'
import { needScope } from './api/guards.js'

/** `extraApiRouters` are mounted under /hub/api beside the REST API (the culler's admin routes). */
export function createApp(ctx: HubContext, extraApiRouters: readonly Router[] = []): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')

  app.use((req, res, next) => {
    const api = req.path.startsWith('/hub/api')
    res.set({
      'x-jupyterhub-version': JUPYTERHUB_API_VERSION,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      'content-security-policy': api ? "frame-ancestors 'self'; default-src 'none'" : "frame-ancestors 'self'",
    })
    if (ctx.log.isLevelEnabled('debug')) {
      const started = process.hrtime.bigint()
      res.on('finish', () => ctx.log.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request'))
    }
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
  app.use('/hub/api', (_req, _res, next) => next(new HttpError(404, 'HUB_NOT_FOUND', 'Not Found')))
  app.use((req, res) => {
    res.status(404).type('html').send(errorPage({ status: 404, message: `Nothing here: ${req.path}`, user: res.locals.identity?.name }))
  })
  app.use(errorHandler(ctx))
  return app
}

/** body-parser's errors carry `type`; map them to our codes. */
function classify(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err
  const e = err as { type?: string; status?: number; limit?: number }
  if (e?.type === 'entity.parse.failed') return new HttpError(400, 'HUB_BAD_JSON', 'Invalid JSON in body of request')
  if (e?.type === 'entity.too.large') return new HttpError(413, 'HUB_BODY_TOO_LARGE', `Request body larger than ${e.limit ?? 'the limit'} bytes`)
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new HttpError(e.status, 'HUB_BAD_REQUEST', String((err as Error).message ?? 'Bad request'))
  if ((err as { code?: string })?.code === 'HUB_SPAWN_QUEUE_FULL') return new HttpError(429, 'HUB_SPAWN_QUEUE_FULL', 'Too many servers are starting; try again shortly', { headers: { 'retry-after': '10' } })
  return undefined
}

function errorHandler(ctx: HubContext): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err)
    const known = classify(err)
    const status = known?.statusCode ?? 500
    const code = known?.code ?? 'HUB_INTERNAL'
    const message = known ? known.message : 'Internal error'
    if (status >= 500) {
      const errorId = randomBytes(4).toString('hex')
      ctx.log.error({ err, errorId, path: req.path }, 'request failed')
    } else {
      ctx.log.info({ code, path: req.path, status }, 'request rejected')
    }
    if (known) res.set(known.headers)
    if (req.path.startsWith('/hub/api')) {
      res.status(status).json({ status, message, code })
    } else {
      res.status(status).type('html').send(errorPage({ status, message, user: res.locals.identity?.name }))
    }
  }
}
