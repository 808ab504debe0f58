/**
 * The JSON models of the REST API (contract §7.2), with fields shown according to the caller's
 * scopes, as JupyterHub does.
 */
import type { HubContext } from '../context.js'
import type { Identity } from '../auth/request-auth.js'
import { grants } from '../auth/scopes.js'
import { listServersOfUsers, type ServerRecord } from '../servers/server.repository.js'
import type { User } from '../users/user.repository.js'
import { findUserWithPartsById } from '../users/user-parts.repository.js'
import { listGroupNamesOfUsers } from '../groups/group.repository.js'
import { serverPrefix } from '../proxy/route-sync.js'
import { urlEscape } from '../servers/url-escape.js'

/** JupyterHub's timestamp format: UTC, microseconds, `Z`. */
export function isoTime(d: Date | null | undefined): string | null {
  if (!d) return null
  // toISOString always ends in `.sssZ`; a regex here was a visible share of listing 200 users
  return `${d.toISOString().slice(0, -1)}000Z`
}

export function serverModel(user: string, s: ServerRecord, o: { state?: boolean } = {}): Record<string, unknown> {
  const progressUrl = s.name === '' ? `/hub/api/users/${urlEscape(user)}/server/progress` : `/hub/api/users/${urlEscape(user)}/servers/${urlEscape(s.name)}/progress`
  const model: Record<string, unknown> = {
    name: s.name,
    last_activity: isoTime(s.lastActivity),
    started: s.state === 'stopped' ? null : isoTime(s.started),
    pending: s.state === 'pending' ? 'spawn' : s.state === 'stopping' ? 'stop' : null,
    ready: s.state === 'running',
    stopped: s.state === 'stopped',
    url: serverPrefix(user, s.name),
    user_options: s.userOptions ?? {},
    progress_url: progressUrl,
  }
  if (o.state) model.state = s.state === 'stopped' ? {} : s.spawnerState
  return model
}

export interface UserModelParts {
  readonly user: User
  readonly servers: readonly ServerRecord[]
  readonly groups: readonly string[]
  readonly roles: readonly string[]
}

/** A user model as `viewer` may see it; undefined when it may not even see the name. */
export function userModel(viewer: ReadonlySet<string>, p: UserModelParts, o: { includeStopped?: boolean } = {}): Record<string, unknown> | undefined {
  const target = { user: p.user.name, groups: p.groups }
  if (!grants(viewer, 'read:users:name', target)) return undefined
  const model: Record<string, unknown> = { kind: 'user', name: p.user.name, admin: p.user.admin }
  if (grants(viewer, 'read:users:groups', target)) model.groups = [...p.groups]
  if (grants(viewer, 'read:users', target)) {
    const def = p.servers.find(s => s.name === '')
    model.created = isoTime(p.user.created)
    model.last_activity = isoTime(p.user.lastActivity)
    model.roles = [...p.roles]
    model.pending = def?.state === 'pending' ? 'spawn' : def?.state === 'stopping' ? 'stop' : null
    model.server = def?.state === 'running' ? serverPrefix(p.user.name, '') : null
  } else if (grants(viewer, 'read:users:activity', target)) {
    model.last_activity = isoTime(p.user.lastActivity)
  }
  if (grants(viewer, 'read:servers', target)) {
    const showState = grants(viewer, 'admin:server_state', target)
    const servers: Record<string, unknown> = {}
    for (const s of p.servers) {
      if (s.state === 'stopped' && !o.includeStopped) continue
      servers[s.name] = serverModel(p.user.name, s, { state: showState })
    }
    model.servers = servers
  }
  if (grants(viewer, 'admin:auth_state', target)) model.auth_state = null
  return model
}

/**
 * A service as `viewer` may see it (JupyterHub's service_model access map): kind, name and admin
 * always; `roles` (the configured role names) with read:roles:services; the rest with read:services.
 */
export function serviceModel(viewer: ReadonlySet<string>, s: { readonly name: string; readonly roles: readonly string[] }): Record<string, unknown> {
  const model: Record<string, unknown> = { kind: 'service', name: s.name, admin: false }
  if (grants(viewer, 'read:roles:services')) model.roles = [...s.roles]
  if (grants(viewer, 'read:services')) Object.assign(model, { url: '', prefix: '', command: [], pid: 0, info: {}, display: true })
  return model
}

/** GET /hub/api/user: what the caller may see of itself, plus `session_id` and expanded `scopes`. */
export async function selfModel(ctx: HubContext, id: Identity): Promise<Record<string, unknown>> {
  const scopes = [...id.scopes].sort()
  if (id.kind === 'service') {
    // the service's roles from config, not its token's (a config service token holds none of its own)
    const roles = ctx.settings.services.find(s => s.name === id.name)?.roles ?? []
    return { ...serviceModel(id.scopes, { name: id.name, roles }), session_id: null, scopes }
  }
  // one round trip (this is every single-user server's token check)
  const parts = await findUserWithPartsById(ctx.db, id.userId!)
  const groups = parts?.groups ?? []
  const servers = parts && grants(id.scopes, 'read:servers', { user: id.name }) ? parts.servers : []
  const user: User = parts?.user ?? { id: id.userId!, name: id.name, admin: id.admin, created: new Date(0), lastActivity: null }
  const model = userModel(id.scopes, { user, servers, groups, roles: ctx.auth.userRoles(user) }) ?? {}
  return { ...model, kind: 'user', name: id.name, admin: id.admin, groups: model.groups ?? groups, session_id: id.sessionId ?? null, scopes }
}

/** Models for a page of users: their servers and groups in two queries, not two per user. */
export async function userModels(ctx: HubContext, viewer: ReadonlySet<string>, users: readonly User[], o: { includeStopped?: boolean } = {}): Promise<Record<string, unknown>[]> {
  const ids = users.map(u => u.id)
  const [servers, groups] = await Promise.all([listServersOfUsers(ctx.db, ids), listGroupNamesOfUsers(ctx.db, ids)])
  const out: Record<string, unknown>[] = []
  for (const u of users) {
    const m = userModel(viewer, { user: u, servers: servers.get(u.id) ?? [], groups: groups.get(u.id) ?? [], roles: ctx.auth.userRoles(u) }, o)
    if (m) out.push(m)
  }
  return out
}
