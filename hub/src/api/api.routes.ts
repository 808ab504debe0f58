/**
 * The JupyterHub REST API under /hub/api (contract §7): the caller's identity, then each feature's
 * routes. Each handler checks its scope first.
 */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { JUPYTERHUB_API_VERSION } from '../context.js'
import { identifyApi } from '../auth/identify.js'
import { activityRouter } from '../servers/activity.routes.js'
import { serverRouter } from '../servers/server.routes.js'
import { usersRouter } from '../users/users.routes.js'
import { tokensRouter } from '../tokens/tokens.routes.js'
import { groupsRouter } from '../groups/groups.routes.js'
import { hubRouter } from './hub.routes.js'
import { caller } from './guards.js'
import { selfModel } from './models.js'

const PACKAGE_VERSION = '0.1.0'

export function apiRouter(ctx: HubContext): Router {
  const r = Router()
  r.use(identifyApi(ctx))
  // The hottest routes first (every layer before a match is a path test per request): activity
  // reports from every server, token checks, spawns and stops; the other sub-routers after them.
  // No two of these routes' paths overlap, so the order changes no answer.
  r.use(activityRouter(ctx))
  r.get(['/', ''], (_req, res) => {
    res.json({ version: JUPYTERHUB_API_VERSION, fleethub: PACKAGE_VERSION })
  })

  r.get('/user', async (_req, res) => {
    const id = caller(res)
    res.json(await selfModel(ctx, id))
  })

  r.use(serverRouter(ctx))
  // Last: each sub-router is one more stack of path tests for every request that reaches it.
  r.use(usersRouter(ctx))
  r.use(tokensRouter(ctx))
  r.use(groupsRouter(ctx))
  r.use(hubRouter(ctx))
  return r
}
