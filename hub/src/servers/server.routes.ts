/**
 * A user's servers under /hub/api/users/:name (contract §7): start, stop (and remove a named
 * server), and follow a start's progress as an event stream.
 */
import { Router, type Request, type Response } from 'express'
import type { HubContext } from '../context.js'
import { HttpError, userNotFound } from '../errors.js'
import { findUserByName, type User } from '../users/user.repository.js'
import { deleteStoppedServer, findServer, listNamedServerNames } from './server.repository.js'
import { jsonBody } from '../api/body.js'
import { needScope } from '../api/guards.js'
import { streamProgress } from './progress-stream.js'
import { within } from '../within.js'

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
    const existing = await listNamedServerNames(ctx.db, userId)
    if (!existing.includes(serverName) && existing.length >= limit) {
      throw new HttpError('HUB_NAMED_SERVER_LIMIT', `User already has the maximum of ${limit} named servers. One must be deleted before a new server can be created`)
    }
  }
}

export function serverRouter(ctx: HubContext): Router {
  const r = Router()

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
        await deleteStoppedServer(ctx.db, server.id)
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

  return r
}
