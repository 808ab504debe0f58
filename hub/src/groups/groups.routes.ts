/**
 * Groups under /hub/api/groups (contract §7.8, plus 5.x's `PUT /groups/:g/properties`). Every
 * write is one transaction, so a bad user name leaves nothing half-done. Membership changes
 * drop the identity cache: scopes filtered by `!group=` depend on it.
 */
import express, { Router, type Request } from 'express'
import type { HubContext } from '../context.js'
import type { Db } from '../db.js'
import type { Identity } from '../auth/request-auth.js'
import { grants, scopeFilters } from '../auth/scopes.js'
import { HttpError, missingScope } from '../errors.js'
import { caller, needScopeOn } from '../api/guards.js'
import { paginate, parsePage } from '../api/pagination.js'
import { findUserIdsByName } from '../users/user.repository.js'
import {
  addMembers, createGroups, deleteGroup, findGroup, listGroups, listMembersOfGroups, removeMembers, setGroupProperties, type GroupRecord,
} from './group.repository.js'

const MAX_NAMES = 10_000

const groupBody = express.json({ limit: '1mb', strict: false, type: () => true })

function noSuchGroup(name: string) {
  return new HttpError('HUB_GROUP_NOT_FOUND', `No such group: ${name}`)
}

/** 1-255 characters, no `/` (it would split the URL path). */
function checkGroupName(name: unknown): string {
  if (typeof name !== 'string' || name.length < 1 || name.length > 255 || name.includes('/')) {
    throw new HttpError('HUB_BAD_GROUP_NAME', `Invalid group name: ${JSON.stringify(name)?.slice(0, 300)} (1-255 characters, no '/')`)
  }
  return name
}

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError('HUB_BAD_REQUEST', 'Body must be a JSON dict or empty')
  return body as Record<string, unknown>
}

/** JupyterHub's `_check_group_model`: only known keys, each of the right type. */
function checkKeys(b: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(b).filter(k => !allowed.includes(k))
  if (extra.length > 0) throw new HttpError('HUB_BAD_JSON_KEYS', `Invalid JSON keys: ${extra.join(', ')}`)
}

function nameList(value: unknown, key: string): string[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) throw new HttpError('HUB_BAD_REQUEST', `${key} must be a list of strings`)
  if (value.length > MAX_NAMES) throw new HttpError('HUB_BAD_REQUEST', `${key}: at most ${MAX_NAMES} names per request`)
  return [...new Set(value as string[])]
}

function properties(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError('HUB_BAD_REQUEST', 'properties must be a JSON dict')
  return value as Record<string, unknown>
}

/** The users' ids, or 400 naming the first one that does not exist. */
async function userIds(tx: Db, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return []
  const byName = await findUserIdsByName(tx, names)
  const missing = names.find(n => !byName.has(n))
  if (missing !== undefined) throw new HttpError('HUB_USER_NOT_FOUND', `No such user: ${missing}`, { status: 400 }) // JupyterHub: a bad member list is 400
  return names.map(n => byName.get(n)!)
}

/** The group model; `users`, `roles` and `properties` only for a caller with read:groups on it (else the name alone). */
function groupModel(viewer: ReadonlySet<string>, g: GroupRecord, users: readonly string[]): Record<string, unknown> {
  const model: Record<string, unknown> = { kind: 'group', name: g.name }
  if (grants(viewer, 'read:groups', { group: g.name })) {
    model.users = [...users]
    model.roles = []
    model.properties = g.properties ?? {}
  }
  return model
}

async function groupModels(db: Db, viewer: ReadonlySet<string>, groups: readonly GroupRecord[]): Promise<Record<string, unknown>[]> {
  const members = await listMembersOfGroups(db, groups.map(g => g.id))
  return groups.map(g => groupModel(viewer, g, members.get(g.id) ?? []))
}

async function oneGroupModel(ctx: HubContext, viewer: ReadonlySet<string>, name: string): Promise<Record<string, unknown>> {
  const g = await findGroup(ctx.db, name)
  if (!g) throw noSuchGroup(name)
  return (await groupModels(ctx.db, viewer, [g]))[0]!
}

export function groupsRouter(ctx: HubContext): Router {
  const r = Router()

  r.get('/groups', async (req, res) => {
    const id = caller(res)
    const filters = scopeFilters(id.scopes, 'list:groups')
    if (filters !== 'all' && !filters.users.length && !filters.groups.length && !filters.servers.length) throw missingScope(['list:groups'])
    const page = parsePage(req)
    // a filtered list:groups lists the groups it names (user/server filters name no group)
    const only = filters === 'all' ? undefined : filters.groups
    if (only?.length === 0) return void res.json(paginate(req, page, [], 0))
    const { groups, total } = await listGroups(ctx.db, { offset: page.offset, limit: page.limit, only })
    res.json(paginate(req, page, await groupModels(ctx.db, id.scopes, groups), total))
  })

  r.post('/groups', groupBody, async (req, res) => {
    const id = needScopeOn(res, ['admin:groups'], {})
    const b = bodyObject(req.body)
    checkKeys(b, ['groups', 'users', 'properties'])
    const names = nameList(b.groups, 'groups').map(checkGroupName)
    if (names.length === 0) throw new HttpError('HUB_NO_GROUPS', 'Must specify at least one group to create')
    const users = nameList(b.users, 'users')
    const props = properties(b.properties) ?? {}
    const created = await ctx.db.transaction().execute(async tx => {
      const ids = await userIds(tx, users)
      const rows = await createGroups(tx, names, props)
      if (rows.length === 0) throw new HttpError('HUB_GROUP_EXISTS', `All ${names.length} groups already exist`)
      await addMembers(tx, rows.map(g => g.id), ids)
      return rows
    })
    if (users.length > 0) ctx.auth.invalidateAll()
    ctx.log.info({ groups: created.map(g => g.name), by: id.name }, 'groups created')
    const order = new Map(names.map((n, i) => [n, i]))
    created.sort((a, b) => order.get(a.name)! - order.get(b.name)!)
    res.status(201).json(await groupModels(ctx.db, id.scopes, created))
  })

  r.get('/groups/:group', async (req, res) => {
    const name = req.params.group as string
    const id = needScopeOn(res, ['read:groups'], { group: name })
    res.json(await oneGroupModel(ctx, id.scopes, name))
  })

  r.post('/groups/:group', groupBody, async (req, res) => {
    const name = req.params.group as string
    const id = needScopeOn(res, ['admin:groups'], { group: name })
    checkGroupName(name)
    const b = bodyObject(req.body)
    checkKeys(b, ['users', 'properties', 'name'])
    if (b.name !== undefined && b.name !== name) throw new HttpError('HUB_BAD_REQUEST', `Group name in body (${String(b.name)}) does not match the URL (${name})`)
    const users = nameList(b.users, 'users')
    const props = properties(b.properties) ?? {}
    await ctx.db.transaction().execute(async tx => {
      const ids = await userIds(tx, users)
      const [row] = await createGroups(tx, [name], props)
      if (!row) throw new HttpError('HUB_GROUP_EXISTS', `Group ${name} already exists`)
      await addMembers(tx, [row.id], ids)
    })
    if (users.length > 0) ctx.auth.invalidateAll()
    ctx.log.info({ group: name, by: id.name }, 'group created')
    res.status(201).json(await oneGroupModel(ctx, id.scopes, name))
  })

  r.delete('/groups/:group', async (req, res) => {
    const name = req.params.group as string
    const id = needScopeOn(res, ['delete:groups'], { group: name })
    if (!await deleteGroup(ctx.db, name)) throw noSuchGroup(name)
    ctx.auth.invalidateAll()
    ctx.log.info({ group: name, by: id.name }, 'group deleted')
    res.status(204).end()
  })

  const changeMembers = (mode: 'add' | 'remove') => async (req: Request, res: express.Response) => {
    const name = req.params.group as string
    const id = needScopeOn(res, ['groups'], { group: name })
    const b = bodyObject(req.body)
    checkKeys(b, ['users'])
    if (b.users === undefined) throw new HttpError('HUB_NO_USERS', `Must specify users to ${mode === 'add' ? 'add' : 'delete'}`)
    const users = nameList(b.users, 'users')
    await ctx.db.transaction().execute(async tx => {
      const g = await findGroup(tx, name, { forUpdate: true })
      if (!g) throw noSuchGroup(name)
      const ids = await userIds(tx, users)
      if (mode === 'add') await addMembers(tx, [g.id], ids)
      else await removeMembers(tx, g.id, ids)
    })
    ctx.auth.invalidateAll()
    ctx.log.info({ group: name, users, by: id.name }, mode === 'add' ? 'group members added' : 'group members removed')
    res.json(await oneGroupModel(ctx, id.scopes, name))
  }
  r.post('/groups/:group/users', groupBody, changeMembers('add'))
  r.delete('/groups/:group/users', groupBody, changeMembers('remove'))

  // JupyterHub 5.x: replace the group's properties (a JSON dict), e.g. for KubeSpawner profiles
  r.put('/groups/:group/properties', groupBody, async (req, res) => {
    const name = req.params.group as string
    const id: Identity = needScopeOn(res, ['groups'], { group: name })
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) throw new HttpError('HUB_BAD_REQUEST', 'properties must be a JSON dict')
    if (!await setGroupProperties(ctx.db, name, req.body as Record<string, unknown>)) throw noSuchGroup(name)
    ctx.log.info({ group: name, by: id.name }, 'group properties set')
    res.json(await oneGroupModel(ctx, id.scopes, name))
  })

  return r
}
