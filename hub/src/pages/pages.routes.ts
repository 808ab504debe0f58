/**
 * The browser pages (contract §5), each group in its own router: the authenticator's own routes
 * (OIDC's callback), login and logout, home, spawn, the "not running" page for /user/<name>/ when
 * no route exists, and the proxy's error target.
 */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { identifyBrowser } from '../auth/identify.js'
import { loginRouter } from '../auth/login.routes.js'
import { homeRouter } from './home.routes.js'
import { spawnRouter } from '../servers/spawn.routes.js'
import { notRunningRouter } from '../servers/not-running.routes.js'
import { errorTargetRouter } from './error-target.routes.js'

export function pagesRouter(ctx: HubContext): Router {
  const r = Router()
  r.use(identifyBrowser(ctx))
  const own = ctx.authenticator.routes?.(ctx)
  if (own) r.use(own)
  r.use(loginRouter(ctx), homeRouter(ctx), spawnRouter(ctx), notRunningRouter(ctx), errorTargetRouter())
  return r
}
