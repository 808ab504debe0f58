/**
 * Who is making a request: a token (Authorization header) or the browser session cookie, resolved
 * to an identity with expanded scopes. Lookups hit indexed columns and a short in-process cache.
 * This process's own revocations invalidate at once; in a fleet, `onInvalidate` listeners publish
 * them and other hubs' arrive through `drop` (hub/src/fleet/cache-sync.ts). `cacheUsable` turns
 * the cache off while those notifications cannot be trusted (the listening connection is down).
 */
import type { Db } from '../db.js'
import { findSession } from './session.repository.js'
import { findToken, type TokenRecord } from '../tokens/token.repository.js'
import type { User } from '../users/user.repository.js'
import { hashToken } from './token-secrets.js'
import { DEFAULT_ROLES, expandScopes, intersectScopes } from './scopes.js'

export interface Identity {
  readonly kind: 'user' | 'service'
  readonly name: string
  readonly admin: boolean
  /** Present for users. */
  readonly userId?: string
  readonly scopes: ReadonlySet<string>
  /** How the request authenticated. */
  readonly via: 'token' | 'cookie'
  readonly token?: TokenRecord
  /** The browser session (cookie auth, or an OAuth token issued for that session). */
  readonly sessionId?: string
}

export interface ServiceConfig {
  readonly name: string
  readonly roles: readonly string[]
}

export interface RoleConfig {
  readonly name: string
  readonly scopes: readonly string[]
  readonly users?: readonly string[]
}

interface CacheEntry { identity: Identity | null; expires: number }

/** What a cached identity can be dropped by (revocation, logout, a stopped server, user changes). */
export interface InvalidateBy {
  readonly userId?: string
  readonly sessionId?: string
  /** Tokens issued to a server, or through its OAuth client. */
  readonly serverId?: string
  readonly oauthClientId?: string
  readonly tokenId?: string
}

/** The index keys for the ids in `by`: one per field present (`userId:42`, ...). */
function indexKeys(by: InvalidateBy): string[] {
  const out: string[] = []
  for (const field in by) {
    const id = by[field as keyof InvalidateBy]
    if (id !== undefined) out.push(`${field}:${id}`)
  }
  return out
}

/** The ids a cached identity can be dropped by. */
function idsOf(i: Identity): InvalidateBy {
  return {
    userId: i.userId, sessionId: i.sessionId, tokenId: i.token?.id,
    serverId: i.token?.serverId ?? undefined, oauthClientId: i.token?.oauthClientId ?? undefined,
  }
}

const MAX_CACHE = 50_000

export class RequestAuth {
  readonly #db: Db
  readonly #ttlMs: number
  readonly #roles: Map<string, RoleConfig>
  readonly #services: Map<string, ServiceConfig>
  readonly #cache = new Map<string, CacheEntry>()
  /**
   * Index key (see indexKeys: one per id an identity carries) -> cache keys: invalidation touches only the entries it drops. A scan
   * of the whole cache per stopped server was 10% of the hub's CPU in the second a class leaves
   * (180 stops over ~3,000 cached identities; bench-results/README.md, round 2).
   */
  readonly #index = new Map<string, Set<string>>()
  readonly #cacheUsable: () => boolean
  readonly #listeners: Array<(by: InvalidateBy | 'all') => void> = []
  /**
   * Bumped by every drop, which records it against the index keys it dropped: a lookup that read
   * the database before a drop of one of its ids and stores after it would cache the old row, so
   * it is answered but not cached.
   */
  #generation = 0
  #droppedAt = new Map<string, number>()
  #allDroppedAt = 0
  /** Lookups reading the database: with none in flight, no lookup can race a past drop, so #droppedAt empties. */
  #reads = 0

  constructor(db: Db, options: { cacheTtlMs?: number; roles?: readonly RoleConfig[]; services?: readonly ServiceConfig[]; cacheUsable?: () => boolean } = {}) {
    this.#db = db
    this.#ttlMs = options.cacheTtlMs ?? 5_000
    this.#cacheUsable = options.cacheUsable ?? (() => true)
    this.#roles = new Map((options.roles ?? []).map(r => [r.name, r]))
    this.#services = new Map((options.services ?? []).map(s => [s.name, s]))
  }

  /** Scopes of a role name: a default role or one from config. */
  roleScopes(role: string): readonly string[] | undefined {
    return this.#roles.get(role)?.scopes ?? DEFAULT_ROLES[role]
  }

  hasRole(role: string): boolean {
    return this.#roles.has(role) || role in DEFAULT_ROLES
  }

  /** The roles a user holds: `user`, `admin` for admins, and config roles naming them. */
  userRoles(user: Pick<User, 'name' | 'admin'>): string[] {
    const roles = ['user']
    if (user.admin) roles.push('admin')
    for (const r of this.#roles.values()) if (r.users?.includes(user.name)) roles.push(r.name)
    return roles
  }

  /** A user's full expanded scopes (what a session cookie grants). */
  userScopes(user: Pick<User, 'name' | 'admin'>): Set<string> {
    const raw = this.userRoles(user).flatMap(r => this.roleScopes(r) ?? [])
    return new Set(expandScopes(raw, { kind: 'user', name: user.name }))
  }

  serviceScopes(name: string): Set<string> {
    const raw = (this.#services.get(name)?.roles ?? []).flatMap(r => this.roleScopes(r) ?? [])
    return new Set(expandScopes(raw, { kind: 'service', name }))
  }

  /** Expanded scopes of a token: its own, never more than its owner's. */
  tokenScopes(t: TokenRecord): Set<string> {
    const ownerScopes = t.userName !== null ? this.userScopes({ name: t.userName, admin: t.userAdmin }) : this.serviceScopes(t.service ?? '')
    const owner = t.userName !== null ? { kind: 'user' as const, name: t.userName } : { kind: 'service' as const, name: t.service ?? '' }
    const server = t.userName !== null && t.serverId !== null ? `${t.userName}/${t.serverName ?? ''}` : undefined
    const requested = [...t.scopes, ...t.roles.flatMap(r => this.roleScopes(r) ?? [])]
    const expanded = expandScopes(requested, owner, { server, inherit: [...ownerScopes] })
    return new Set(intersectScopes(expanded, ownerScopes).kept)
  }

  async fromToken(token: string): Promise<Identity | undefined> {
    return this.#lookup(`t:${hashToken(token)}`, () => findToken(this.#db, token), t => t.userName !== null
      ? { kind: 'user', name: t.userName, admin: t.userAdmin, userId: t.userId ?? undefined, scopes: this.tokenScopes(t), via: 'token', token: t, sessionId: t.sessionId ?? undefined }
      : { kind: 'service', name: t.service ?? '', admin: false, scopes: this.tokenScopes(t), via: 'token', token: t })
  }

  async fromSessionCookie(cookie: string): Promise<Identity | undefined> {
    return this.#lookup(`s:${hashToken(cookie)}`, () => findSession(this.#db, cookie),
      s => ({ kind: 'user', name: s.user.name, admin: s.user.admin, userId: s.user.id, scopes: this.userScopes(s.user), via: 'cookie', sessionId: s.id }))
  }

  /** The cached identity, else the database's (cached unless a drop raced the read). */
  async #lookup<T>(key: string, read: () => Promise<T | undefined>, toIdentity: (row: T) => Identity): Promise<Identity | undefined> {
    const hit = this.#cached(key)
    if (hit !== undefined) return hit ?? undefined
    const generation = this.#generation
    this.#reads++
    try {
      const row = await read()
      const identity = row ? toIdentity(row) : null
      this.#store(key, identity, generation)
      return identity ?? undefined
    } finally {
      if (--this.#reads === 0) this.#droppedAt.clear()
    }
  }

  /** Forget the cached identities carrying any of these ids (revocation, logout, user changes, stopped servers), here and, through the listeners, on every hub. */
  invalidate(by: InvalidateBy): void {
    this.drop(by)
    for (const l of this.#listeners) l(by)
  }

  invalidateAll(): void {
    this.dropAll()
    for (const l of this.#listeners) l('all')
  }

  /** Called with every `invalidate` and `invalidateAll` (the fleet publishes them). */
  onInvalidate(listener: (by: InvalidateBy | 'all') => void): void {
    this.#listeners.push(listener)
  }

  /** `invalidate` in this process only (another hub's invalidation arriving). */
  drop(by: InvalidateBy): void {
    const generation = ++this.#generation
    if (this.#droppedAt.size >= MAX_CACHE) { this.#droppedAt.clear(); this.#allDroppedAt = generation }
    for (const k of indexKeys(by)) {
      this.#droppedAt.set(k, generation)
      const keys = this.#index.get(k)
      if (keys) for (const cacheKey of [...keys]) this.#delete(cacheKey)
    }
  }

  /** `invalidateAll` in this process only (a notification may have been missed). */
  dropAll(): void {
    this.#allDroppedAt = ++this.#generation
    this.#droppedAt.clear()
    this.#cache.clear()
    this.#index.clear()
  }

  /** How many identities are cached (tests). */
  get cachedIdentities(): number {
    return this.#cache.size
  }

  #delete(key: string): void {
    const e = this.#cache.get(key)
    if (!e) return
    this.#cache.delete(key)
    if (!e.identity) return
    for (const ik of indexKeys(idsOf(e.identity))) {
      const set = this.#index.get(ik)
      if (!set) continue
      set.delete(key)
      if (set.size === 0) this.#index.delete(ik)
    }
  }

  #cached(key: string): Identity | null | undefined {
    if (!this.#cacheUsable()) return undefined
    const e = this.#cache.get(key)
    if (!e) return undefined
    if (e.expires < Date.now()) {
      this.#delete(key)
      return undefined
    }
    return e.identity
  }

  /**
   * Drop the expired entries at the front of the cache. Every entry lives the same TTL and is
   * (re)inserted last, so the Map's order is expiry order and the sweep stops at the first live
   * one: amortised O(1) per store. Without it an entry left when its key was never asked again (a
   * browser session gone quiet, a server token used every few minutes) stayed until MAX_CACHE,
   * ~1.9 KB each: the cache held every user seen rather than the last TTL's (issue #16,
   * bench-results/2026-12-02-hub-memory).
   */
  #sweepExpired(): void {
    const now = Date.now()
    for (const [k, e] of this.#cache) {
      if (e.expires >= now) break
      this.#delete(k)
    }
  }

  /** Whether a drop since `generation` (when the lookup began) touched this identity. */
  #raced(identity: Identity | null, generation: number): boolean {
    if (this.#allDroppedAt > generation) return true
    if (!identity || this.#droppedAt.size === 0) return false
    return indexKeys(idsOf(identity)).some(k => (this.#droppedAt.get(k) ?? 0) > generation)
  }

  #store(key: string, identity: Identity | null, generation: number): void {
    if (!this.#cacheUsable() || this.#raced(identity, generation)) return
    this.#sweepExpired()
    if (this.#cache.size >= MAX_CACHE) {
      // Evict the oldest tenth (Map iterates in insertion order): bounded memory, no per-request scan.
      let n = MAX_CACHE / 10
      for (const k of this.#cache.keys()) { this.#delete(k); if (--n <= 0) break }
    }
    this.#delete(key)
    this.#cache.set(key, { identity, expires: Date.now() + this.#ttlMs })
    if (identity) {
      for (const ik of indexKeys(idsOf(identity))) {
        let set = this.#index.get(ik)
        if (!set) this.#index.set(ik, set = new Set())
        set.add(key)
      }
    }
  }
}
