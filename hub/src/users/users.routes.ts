/**
 * /hub/api/users (contract §7.5, anchors §1.1): list with SQL paging and filters, batch create,
 * read, create, update (admin flag, rename), delete (servers stopped first).
 */
import { Router, type Request } from 'express'
import type { HubContext } from '../context.js'
import { USERNAME_RULE } from '../auth/username.js'
import { grants, scopeFilters } from '../auth/scopes.js'
import { HttpError, userNotFound } from '../errors.js'
import { createUsers, deleteUser, findUserByName, updateUser } from './user.repository.js'
import { listUsers, type UserSort, type UserStateFilter } from './user-list.repository.js'
import { listUserServers } from '../servers/server.repository.js'
import { caller, needScope } from '../api/guards.js'
import { paginate, parsePage } from '../api/pagination.js'
import { userModel, userModels } from '../api/models.js'
import { findUserWithParts } from './user-parts.repository.js'
import { jsonBody } from '../api/body.js'

const STATES = new Set(['active', 'ready', 'inactive'])
const SORTS = new Set(['id', 'name', 'last_activity'])

function flag(req: Request, name: string): boolean {
  const v = req.query[name]
  return v !== undefined && v !== 'false' && v !== '0'
}

function checkNames(names: unknown): string[] {
  if (!Array.isArray(names) || names.length === 0) throw new HttpError('HUB_BAD_REQUEST', 'Must specify at least one user to create')
  if (names.length > 10_000) throw new HttpError('HUB_BAD_REQUEST', 'At most 10000 users per request')
  const out: string[] = []
  for (const n of names) {
    const name = typeof n === 'string' ? n.trim().toLowerCase() : ''
    if (!USERNAME_RULE.test(name)) throw new HttpError('HUB_BAD_USERNAME', `Invalid username: ${JSON.stringify(n)}`)
    out.push(name)
  }
  return [...new Set(out)]
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body))) return (body ?? {}) as Record<string, unknown>
  throw new HttpError('HUB_BAD_REQUEST', 'body must be a json dict')
}

export function usersRouter(ctx: HubContext): Router {
  const r = Router()

  // one round trip: the user, their servers and groups
  const modelOf = async (viewer: ReadonlySet<string>, name: string, includeStopped = false) => {
    const parts = await findUserWithParts(ctx.db, name)
    if (!parts) return undefined
    return userModel(viewer, { ...parts, roles: ctx.auth.userRoles(parts.user) }, { includeStopped })
  }

  r.get('/users', async (req, res) => {
    const id = needScope(res, ['list:users'], {})
    const page = parsePage(req)
    const state = req.query.state
    if (state !== undefined && (typeof state !== 'string' || !STATES.has(state))) throw new HttpError('HUB_BAD_STATE_FILTER', `Unrecognized state filter: '${String(state)}'`)
    let sort = typeof req.query.sort === 'string' ? req.query.sort : 'id'
    const descending = sort.startsWith('-')
    if (descending) sort = sort.slice(1)
    if (!SORTS.has(sort)) throw new HttpError('HUB_BAD_SORT', `Unrecognized sort: '${String(req.query.sort)}'`)
    const nameFilter = typeof req.query.name_filter === 'string' ? req.query.name_filter.slice(0, 255) : undefined
    const filters = scopeFilters(id.scopes, 'list:users')
    const { users, total } = await listUsers(ctx.db, {
      offset: page.offset, limit: page.limit, state: state as UserStateFilter | undefined, nameFilter,
      sort: sort as UserSort, descending, visible: filters === 'all' ? 'all' : { users: filters.users, groups: filters.groups },
    })
    const includeStopped = flag(req, 'include_stopped_servers')
    const items = users.flatMap(p => userModel(id.scopes, { ...p, roles: ctx.auth.userRoles(p.user) }, { includeStopped }) ?? [])
    res.json(paginate(req, page, items, total))
  })

  r.post('/users', jsonBody, async (req, res) => {
    needScope(res, ['admin:users'])
    const body = bodyObject(req.body)
    const names = checkNames(body.usernames)
    if (body.admin !== undefined && typeof body.admin !== 'boolean') throw new HttpError('HUB_BAD_REQUEST', 'admin must be true or false')
    const users = await createUsers(ctx.db, names, body.admin === true)
    if (users.length === 0) throw new HttpError('HUB_USERS_EXIST', `All ${names.length} users already exist`)
    res.status(201).json(await userModels(ctx, caller(res).scopes, users))
  })

  r.get('/users/:name', async (req, res) => {
    const id = caller(res)
    const name = req.params.name as string
    const model = await modelOf(id.scopes, name, flag(req, 'include_stopped_servers'))
    if (!model) {
      if (['read:users', 'read:users:name', 'admin:users'].some(s => grants(id.scopes, s, { user: name }))) throw userNotFound(name)
      // filtered scopes cannot tell "no such user" from "not yours" (contract §7.1)
      if (['read:users', 'read:users:name'].some(s => [...id.scopes].some(h => h.startsWith(`${s}!`)))) throw new HttpError('HUB_NOT_FOUND', 'No access to resources or resources not found')
      needScope(res, ['read:users'], { user: name })
    }
    res.json(model)
  })

  r.post('/users/:name', jsonBody, async (req, res) => {
    const name = req.params.name as string
    needScope(res, ['admin:users'], { user: name })
    const [checked] = checkNames([name])
    const body = bodyObject(req.body)
    if (body.admin !== undefined && typeof body.admin !== 'boolean') throw new HttpError('HUB_BAD_REQUEST', 'admin must be true or false')
    const [created] = await createUsers(ctx.db, [checked!], body.admin === true)
    if (!created) throw new HttpError('HUB_USER_EXISTS', `User ${name} already exists`)
    res.status(201).json(await modelOf(caller(res).scopes, checked!))
  })

  r.patch('/users/:name', jsonBody, async (req, res) => {
    const name = req.params.name as string
    needScope(res, ['admin:users'], { user: name })
    const body = bodyObject(req.body)
    const user = await findUserByName(ctx.db, name)
    if (!user) throw userNotFound(name)
    const update: { admin?: boolean; name?: string } = {}
    if (body.admin !== undefined) {
      if (typeof body.admin !== 'boolean') throw new HttpError('HUB_BAD_REQUEST', 'admin must be true or false')
      update.admin = body.admin
    }
    if (body.name !== undefined && body.name !== name) {
      const [newName] = checkNames([body.name])
      if (await findUserByName(ctx.db, newName!)) throw new HttpError('HUB_USER_EXISTS', `User ${newName} already exists, username must be unique`, { status: 400 }) // JupyterHub: 400 on rename
      if ((await listUserServers(ctx.db, user.id)).some(s => s.state !== 'stopped')) throw new HttpError('HUB_USER_BUSY', `Cannot rename ${name} while a server is running`)
      update.name = newName
    }
    if (Object.keys(update).length > 0) {
      await updateUser(ctx.db, user.id, update)
      ctx.auth.invalidate({ userId: user.id })
      ctx.activity.forget(name)
    }
    res.json(await modelOf(caller(res).scopes, update.name ?? name))
  })

  r.delete('/users/:name', async (req, res) => {
    const name = req.params.name as string
    needScope(res, ['delete:users'], { user: name })
    const user = await findUserByName(ctx.db, name)
    if (!user) throw userNotFound(name)
    for (const s of await listUserServers(ctx.db, user.id)) {
      if (s.state === 'pending' || s.state === 'running') await ctx.spawns.stop(s, 'user deleted')
      else if (s.state === 'stopping') throw new HttpError('HUB_USER_BUSY', `${name}'s server is stopping; try again in a moment`)
    }
    await deleteUser(ctx.db, user.id)
    ctx.auth.invalidate({ userId: user.id })
    ctx.activity.forget(name)
    res.status(204).end()
  })

  return r
}
