/**
 * The JupyterHub REST API under /hub/api (contract §7). Each handler checks its scope first.
 */
import { Router, type Request, type Response } from 'express'
import { jsonBody } from './body.js'
import { usersRouter } from './users.routes.js'
import { hubRouter } from './hub.routes.js'
import type { HubContext } from '../context.js'
import { JUPYTERHUB_API_VERSION } from '../context.js'
import { identifyApi } from '../auth/identify.js'
import { tokensRouter } from './tokens.routes.js'
import { groupsRouter } from './groups.routes.js'
import { HttpError, userNotFound } from '../errors.js'
import { findUserByName, type User } from '../users/user.repository.js'
import { findServer } from '../servers/server.repository.js'
import { caller, needScope } from './guards.js'
import { streamProgress } from './progress.js'
import { selfModel } from './models.js'
import { parseActivity } from './activity.js'
import { within } from '../within.js'

const PACKAGE_VERSION = '0.1.0'

export { jsonBody }

async function loadUser(ctx: HubContext, name: string): Promise<User> {
  const user = await findUserByName(ctx.db, name)
  if (!user) throw userNotFound(name)
  return user
}

function serverNameParam(req: Request): string {
  const s = req.params.server
  return typeof s === 'string' ? s : ''
}

const SERVER_NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/** Named servers: enabled by config, names safe in URLs and pod names, at most N per user. */
async function checkNamedServer(ctx: HubContext, userId: string, serverName: string): Promise<void> {
  if (!ctx.settings.allowNamedServers) throw new HttpError('HUB_NAMED_SERVERS_DISABLED')
  if (!SERVER_NAME_RULE.test(serverName)) throw new HttpError('HUB_BAD_SERVER_NAME', `Invalid server name: '${serverName}' (1-63 letters, digits, . _ -)`)
  const limit = ctx.settings.namedServerLimitPerUser
  if (limit > 0) {
    const existing = await ctx.db.selectFrom('servers').select('name').where('user_id', '=', userId).where('name', '<>', '').execute()
    if (!existing.some(s => s.name === serverName) && existing.length >= limit) {
      throw new HttpError('HUB_NAMED_SERVER_LIMIT', `User already has the maximum of ${limit} named servers. One must be deleted before a new server can be created`)
    }
  }
}

export function apiRouter(ctx: HubContext): Router {
  const r = Router()
  r.use(identifyApi(ctx))
  // The hottest routes first (every layer before a match is a path test per request): activity
  // reports from every server, token checks, spawns and stops; the sub-routers after them. No two
  // of these routes' paths overlap, so the order changes no answer.
  r.post('/users/:name/activity', jsonBody, async (req, res) => {
    const name = req.params.name as string
    needScope(res, ['users:activity'], { user: name })
    let report: ReturnType<typeof parseActivity>
    try {
      report = parseActivity(req.body)
    } catch (err) {
      // an unknown user is a 404 before the body is judged, as JupyterHub answers
      if (!await ctx.activity.target(name)) throw userNotFound(name)
      throw err
    }
    // the user's id and the ids of the servers named in the report: cached, else one round trip
    const found = await ctx.activity.target(name, report.servers.keys())
    if (!found) throw userNotFound(name)
    for (const serverName of report.servers.keys()) {
      if (!found.servers.has(serverName)) throw new HttpError('HUB_BAD_REQUEST', `No such server '${serverName}' for user ${name}`)
    }
    if (report.lastActivity) ctx.activity.recordUser(found.userId, report.lastActivity)
    for (const [serverName, at] of report.servers) {
      ctx.activity.recordServer(found.servers.get(serverName)!, at)
      ctx.activity.recordUser(found.userId, at)
    }
    res.status(200).type('json').end()
  })

  r.get(['/', ''], (_req, res) => {
    res.json({ version: JUPYTERHUB_API_VERSION, fleethub: PACKAGE_VERSION })
  })

  r.get('/user', async (_req, res) => {
    const id = caller(res)
    res.json(await selfModel(ctx, id))
  })

  const startServer = async (req: Request, res: Response) => {
    const name = req.params.name as string
    const serverName = serverNameParam(req)
    needScope(res, ['servers'], { user: name, server: `${name}/${serverName}` })
    // the default server: the claim finds the user (one round trip per spawn); named servers check their limit first
    const user: { id?: string; name: string } = serverName ? await loadUser(ctx, name) : { name }
    if (serverName) await checkNamedServer(ctx, user.id!, serverName)
    const options = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body as Record<string, unknown> : {}
    const outcome = await ctx.spawns.spawn(user, serverName, options)
    const label = serverName ? `${name}:${serverName}` : name
    if (outcome.status === 'running') throw new HttpError('HUB_SERVER_ALREADY_RUNNING', `${label} is already running`)
    if (outcome.status === 'started') {
      const p = ctx.spawns.progressFor(outcome.server.id)
      if (p && !p.done) await within(p.finished, ctx.settings.slowSpawnTimeoutMs)
      if (p?.phase === 'failed') throw new HttpError('HUB_SPAWN_FAILED', p.events[p.events.length - 1]?.message ?? 'Spawn failed')
      if (p?.phase === 'ready') return void res.status(201).type('text/plain').end()
    }
    res.status(202).type('text/plain').end()
  }
  r.post(['/users/:name/server', '/users/:name/servers/:server'], jsonBody, startServer)

  const stopServer = async (req: Request, res: Response) => {
    const name = req.params.name as string
    const serverName = serverNameParam(req)
    needScope(res, ['delete:servers', 'servers'], { user: name, server: `${name}/${serverName}` })
    const user = await loadUser(ctx, name)
    const server = await findServer(ctx.db, user.id, serverName)
    if (!server) {
      if (serverName) throw new HttpError('HUB_NOT_FOUND', `${name} has no server named '${serverName}'`)
      return void res.status(204).end()
    }
    if (server.state === 'pending') throw new HttpError('HUB_SERVER_PENDING', `${serverName ? `${name}:${serverName}` : name} is pending spawn, please wait`)
    const remove = (req.body as { remove?: unknown } | undefined)?.remove === true
    if (remove && !serverName) throw new HttpError('HUB_DEFAULT_SERVER')
    const stopped = ctx.spawns.stop(server, 'stopped through the API').then(async result => {
      if (remove && result !== 'stopping') {
        await ctx.db.deleteFrom('servers').where('id', '=', server.id).where('state', '=', 'stopped').execute()
        ctx.activity.forget(name)
      }
      return result
    })
    // JupyterHub's slow_stop_timeout (contract §7): a stop that takes longer is answered 202 and goes
    // on in the background (a Kubernetes pod can take its whole grace period).
    const result = await within(stopped, ctx.settings.slowStopTimeoutMs)
    if (result === undefined) stopped.catch(err => ctx.log.error({ err, user: name, server: serverName }, 'stop failed after its 202'))
    res.status(result === undefined || result === 'stopping' ? 202 : 204).end()
  }
  r.delete(['/users/:name/server', '/users/:name/servers/:server'], jsonBody, stopServer)

  r.get(['/users/:name/server/progress', '/users/:name/servers/:server/progress'], async (req, res) => {
    const name = req.params.name as string
    const serverName = serverNameParam(req)
    needScope(res, ['read:servers'], { user: name, server: `${name}/${serverName}` })
    const user = await loadUser(ctx, name)
    await streamProgress(ctx, req, res, await findServer(ctx.db, user.id, serverName))
  })

  // Last: each sub-router is one more stack of path tests for every request that reaches it.
  r.use(usersRouter(ctx))
  r.use(tokensRouter(ctx))
  r.use(groupsRouter(ctx))
  r.use(hubRouter(ctx))
  return r
}
