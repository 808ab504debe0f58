/**
 * Request authentication as JupyterHub's HubOAuth does it (contract §4.4): a token from
 * `?token=`, `Authorization: token|bearer`, or our own sealed cookie, checked with
 * `GET /hub/api/user`, cached for ~5 min under (hub session cookie, sha256(token)), then an
 * access-scope check.
 */
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { CookieSealer } from './cookies.js'
import { parseCookies } from './cookies.js'
import type { HubClient, HubIdentity } from './hub-client.js'

export const SESSION_COOKIE = 'jupyterhub-session-id'
/** Lifetime of the auth cookie (the real server: 30 days). */
export const AUTH_COOKIE_MAX_AGE_S = 30 * 24 * 3600

export interface AuthResult {
  /** Who the hub says the token belongs to; undefined = anonymous. */
  readonly identity?: HubIdentity
  /** The identity holds an access scope for this server. */
  readonly allowed: boolean
  /** Where the token came from. */
  readonly via: 'token' | 'cookie' | 'none'
}

export interface HubAuthOptions {
  readonly client: HubClient
  readonly user: string
  readonly serverName: string
  readonly clientId: string
  readonly accessScopes: readonly string[]
  readonly sealer: CookieSealer
  /** Cache lifetime of a token check; default 300 s (HubAuth cache_max_age). */
  readonly cacheTtlMs?: number
  /** Most cached checks kept; default 1000 (oldest dropped first). */
  readonly cacheMax?: number
}

interface CacheEntry { readonly expires: number, readonly value: Promise<HubIdentity | undefined> }

export class HubAuth {
  readonly #o: HubAuthOptions
  readonly #cache = new Map<string, CacheEntry>()
  readonly #accepted: ReadonlySet<string>

  constructor(options: HubAuthOptions) {
    this.#o = options
    this.#accepted = new Set([
      ...options.accessScopes, 'access:servers', `access:servers!user=${options.user}`,
      `access:servers!server=${options.user}/${options.serverName}`,
    ])
  }

  /** Authenticate a request; throws `SingleUserError` when the hub cannot answer properly. */
  async authenticate(url: URL, headers: IncomingHttpHeaders): Promise<AuthResult> {
    const cookies = parseCookies(headers.cookie)
    const explicit = tokenFromRequest(url, headers)
    const token = explicit ?? this.#o.sealer.unseal(this.#o.clientId, cookies.get(this.#o.clientId))
    if (token === undefined) return { allowed: false, via: 'none' }
    const identity = await this.#identify(token, cookies.get(SESSION_COOKIE) ?? '')
    return { identity, allowed: identity !== undefined && this.isAllowed(identity), via: explicit ? 'token' : 'cookie' }
  }

  isAllowed(identity: HubIdentity): boolean {
    return identity.scopes.some(s => this.#accepted.has(s))
  }

  /** Check a token with the hub, de-duplicating concurrent checks and caching answers. */
  #identify(token: string, sessionId: string): Promise<HubIdentity | undefined> {
    const key = `${sessionId}\0${createHash('sha256').update(token).digest('base64')}`
    const now = Date.now()
    const hit = this.#cache.get(key)
    if (hit && hit.expires > now) return hit.value
    if (hit) this.#cache.delete(key)
    const value = this.#o.client.identify(token)
    this.#cache.set(key, { expires: now + (this.#o.cacheTtlMs ?? 300_000), value })
    value.catch(() => this.#cache.delete(key))
    const max = this.#o.cacheMax ?? 1000
    while (this.#cache.size > max) this.#cache.delete(this.#cache.keys().next().value!)
    return value
  }
}

/** `?token=` first, then `Authorization: token <t>` / `bearer <t>` (any case). */
export function tokenFromRequest(url: URL, headers: IncomingHttpHeaders): string | undefined {
  const q = url.searchParams.get('token')
  if (q) return q
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(headers.authorization ?? '')
  return m ? m[1] : undefined
}
