/**
 * JupyterHub's scopes: names, the hierarchy that expands a scope into the scopes it implies, the
 * filters (`!user=alice`, `!server=alice/foo`, `!group=g`), the `self` metascope and the default
 * roles. Pure functions over strings; the hub keeps scopes expanded so a check is a set lookup.
 * See shared/spec/anchors.md §1.2 and the contract §7.2/§7.11.
 */
import { HubError } from '../errors.js'

/** scope -> the scopes it directly implies (JupyterHub's scope_definitions). */
const SUBSCOPES: Readonly<Record<string, readonly string[]>> = {
  'admin:users': ['admin:auth_state', 'users', 'read:roles:users', 'delete:users'],
  'admin:auth_state': [],
  users: ['read:users', 'list:users', 'users:activity'],
  'delete:users': [],
  'list:users': ['read:users:name'],
  'read:users': ['read:users:name', 'read:users:groups', 'read:users:activity'],
  'read:users:name': [],
  'read:users:groups': [],
  'read:users:activity': [],
  'users:activity': ['read:users:activity'],
  'read:roles': ['read:roles:users', 'read:roles:services', 'read:roles:groups'],
  'read:roles:users': [],
  'read:roles:services': [],
  'read:roles:groups': [],
  'admin:servers': ['admin:server_state', 'servers'],
  'admin:server_state': [],
  servers: ['read:servers', 'delete:servers'],
  'read:servers': ['read:users:name'],
  'delete:servers': [],
  'access:servers': [],
  tokens: ['read:tokens'],
  'read:tokens': [],
  'admin:groups': ['groups', 'delete:groups'],
  groups: ['read:groups', 'list:groups'],
  'list:groups': ['read:groups:name'],
  'read:groups': ['read:groups:name'],
  'read:groups:name': [],
  'delete:groups': [],
  'list:services': ['read:services:name'],
  'read:services': ['read:services:name'],
  'read:services:name': [],
  'access:services': [],
  'read:hub': [],
  proxy: [],
  shutdown: [],
  'read:metrics': [],
  'admin-ui': [],
}

export const ALL_SCOPES: readonly string[] = Object.keys(SUBSCOPES)

/** The scopes of JupyterHub's default roles (before expansion). */
export const DEFAULT_ROLES: Readonly<Record<string, readonly string[]>> = {
  user: ['self'],
  admin: ['admin-ui', 'admin:users', 'admin:servers', 'tokens', 'admin:groups', 'list:services', 'read:services',
    'read:hub', 'proxy', 'shutdown', 'access:services', 'access:servers', 'read:roles', 'read:metrics'],
  server: ['users:activity!user', 'access:servers!server'],
  token: ['inherit'],
}

/** What `self` means for a user: everything about themselves (the contract's list in §7.2). */
const SELF_SCOPES = ['read:users', 'users:activity', 'servers', 'tokens', 'access:servers', 'delete:servers']

export interface ScopeOwner {
  readonly kind: 'user' | 'service'
  readonly name: string
}

/** An unknown scope or a malformed filter: HUB_BAD_SCOPE, 400 at the edge. */
export class ScopeError extends HubError {
  constructor(message: string) {
    super('HUB_BAD_SCOPE', message)
    this.name = 'ScopeError'
  }
}

export function parseScope(scope: string): { name: string; filter?: string } {
  const i = scope.indexOf('!')
  return i < 0 ? { name: scope } : { name: scope.slice(0, i), filter: scope.slice(i + 1) }
}

/** Throws ScopeError for an unknown scope name or a malformed filter. */
export function validateScope(scope: string): void {
  const { name, filter } = parseScope(scope)
  if (name !== 'self' && name !== 'inherit' && !(name in SUBSCOPES)) throw new ScopeError(`Unknown scope: ${scope}`)
  if (filter !== undefined && !/^(user|server|group)(=.+)?$/.test(filter)) throw new ScopeError(`Bad scope filter: ${scope}`)
}

function withFilter(name: string, filter: string | undefined): string {
  return filter === undefined ? name : `${name}!${filter}`
}

/**
 * Expand scopes through the hierarchy, resolving `self`, `inherit` (the owner's own scopes) and
 * the self-filters `!user` / `!server` against the owner. `server` is `user/servername` for the
 * `!server` self-filter (a server's token). Returns a sorted, de-duplicated list.
 */
export function expandScopes(scopes: readonly string[], owner?: ScopeOwner, options: { server?: string; inherit?: readonly string[] } = {}): string[] {
  const out = new Set<string>()
  const visit = (name: string, filter: string | undefined) => {
    const key = withFilter(name, filter)
    if (out.has(key)) return
    out.add(key)
    for (const sub of SUBSCOPES[name] ?? []) visit(sub, filter)
  }
  for (const raw of scopes) {
    let { name, filter } = parseScope(raw)
    if (name === 'inherit') {
      for (const s of options.inherit ?? []) out.add(s)
      continue
    }
    if (filter === 'user') {
      if (owner?.kind !== 'user') continue // a self-filter without a user owner grants nothing
      filter = `user=${owner.name}`
    } else if (filter === 'server') {
      if (options.server === undefined) continue
      filter = `server=${options.server}`
    }
    if (name === 'self') {
      if (owner?.kind !== 'user') continue
      for (const s of SELF_SCOPES) visit(s, `user=${owner.name}`)
      continue
    }
    visit(name, filter)
  }
  return [...out].sort()
}

/** What a check is about: the user (and server, and the user's groups) the action targets. */
export interface ScopeTarget {
  readonly user?: string
  readonly server?: string // 'user/servername'
  readonly groups?: readonly string[]
  readonly group?: string
}

/**
 * Does `held` (expanded) grant `needed` on `target`? An unfiltered scope grants everything; a
 * `!user=` scope grants that user's resources and that user's servers; `!server=` one server;
 * `!group=` the users in that group (and the group itself).
 */
export function grants(held: ReadonlySet<string>, needed: string, target: ScopeTarget = {}): boolean {
  if (held.has(needed)) return true
  if (target.user !== undefined && held.has(`${needed}!user=${target.user}`)) return true
  if (target.server !== undefined && held.has(`${needed}!server=${target.server}`)) return true
  if (target.group !== undefined && held.has(`${needed}!group=${target.group}`)) return true
  for (const g of target.groups ?? []) if (held.has(`${needed}!group=${g}`)) return true
  return false
}

/** Does `held` grant `needed` on anything at all (for list endpoints that filter their results)? */
export function grantsAny(held: ReadonlySet<string>, needed: string): boolean {
  if (held.has(needed)) return true
  const prefix = `${needed}!`
  for (const s of held) if (s.startsWith(prefix)) return true
  return false
}

/** The filters under which `held` grants `needed`: 'all', or the users/servers/groups named. */
export function scopeFilters(held: ReadonlySet<string>, needed: string): 'all' | { users: string[]; servers: string[]; groups: string[] } {
  if (held.has(needed)) return 'all'
  const users: string[] = [], servers: string[] = [], groups: string[] = []
  const prefix = `${needed}!`
  for (const s of held) {
    if (!s.startsWith(prefix)) continue
    const f = s.slice(prefix.length)
    if (f.startsWith('user=')) users.push(f.slice(5))
    else if (f.startsWith('server=')) servers.push(f.slice(7))
    else if (f.startsWith('group=')) groups.push(f.slice(6))
  }
  return { users, servers, groups }
}

/**
 * Keep only the requested scopes the owner holds: a token never gets more than its owner.
 * Returns the kept scopes and those refused.
 */
export function intersectScopes(requested: readonly string[], ownerExpanded: ReadonlySet<string>): { kept: string[]; refused: string[] } {
  const kept: string[] = [], refused: string[] = []
  for (const s of requested) {
    const { name, filter } = parseScope(s)
    let ok = ownerExpanded.has(s) || ownerExpanded.has(name)
    if (!ok && filter?.startsWith('server=')) ok = ownerExpanded.has(`${name}!user=${filter.slice(7).split('/')[0]}`)
    ;(ok ? kept : refused).push(s)
  }
  return { kept, refused }
}
