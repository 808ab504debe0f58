/**
 * Activity reports are coalesced in memory and written in batches: thousands of servers reporting
 * every few minutes become one UPDATE per table per flush, not one transaction per report. Only
 * the newest time per user and per server is kept; the database keeps the max (never moves back).
 *
 * Who a report is about (user name -> user id and server ids) is cached for a short while, so a
 * report costs no database round trip at all. Ids never change while a row lives (every spawn of
 * a server reuses its row), so a stale entry can only name a row that was deleted, and the batched
 * update then touches nothing. Deletions and renames through this hub drop the entry at once; in a
 * fleet, `onForget` listeners publish them and other hubs' arrive through `drop`
 * (hub/src/fleet/cache-sync.ts). Unknown users are never cached.
 */
import { sql } from 'kysely'
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import { findUserAndServerIds } from '../users/user-parts.repository.js'

export interface ActivityTarget {
  readonly userId: string
  /** Server name -> id, all the user's servers. */
  readonly servers: ReadonlyMap<string, string>
}

function knowsAll(target: ActivityTarget, serverNames: Iterable<string>): boolean {
  for (const s of serverNames) if (!target.servers.has(s)) return false
  return true
}

export class ActivityBuffer {
  readonly #db: Db
  readonly #log: Logger
  readonly #users = new Map<string, number>()
  readonly #servers = new Map<string, number>()
  readonly #timer: NodeJS.Timeout
  #flushing: Promise<void> = Promise.resolve()
  readonly #targets = new Map<string, ActivityTarget & { readonly expires: number }>()
  readonly #targetTtlMs: number
  readonly #maxTargets: number
  readonly #forgetListeners: Array<(name: string) => void> = []

  constructor(db: Db, log: Logger, options: { flushIntervalMs?: number; targetTtlMs?: number; maxTargets?: number } = {}) {
    this.#db = db
    this.#log = log
    this.#targetTtlMs = options.targetTtlMs ?? 30_000
    this.#maxTargets = options.maxTargets ?? 100_000
    this.#timer = setInterval(() => { void this.flush() }, options.flushIntervalMs ?? 1000)
    this.#timer.unref()
  }

  recordUser(userId: string, at: Date): void {
    const t = at.getTime()
    if ((this.#users.get(userId) ?? 0) < t) this.#users.set(userId, t)
  }

  recordServer(serverId: string, at: Date): void {
    const t = at.getTime()
    if ((this.#servers.get(serverId) ?? 0) < t) this.#servers.set(serverId, t)
  }

  /**
   * The user `name` and the ids of their servers, from the cache when it is fresh and knows every
   * one of `serverNames` (a server it has not seen may be new: the database is asked again).
   * Undefined: no such user.
   */
  async target(name: string, serverNames: Iterable<string> = []): Promise<ActivityTarget | undefined> {
    const hit = this.#targets.get(name)
    if (hit && hit.expires > Date.now() && knowsAll(hit, serverNames)) return hit
    const found = await findUserAndServerIds(this.#db, name)
    if (!found) {
      this.#targets.delete(name)
      return undefined
    }
    this.#targets.delete(name) // re-inserted last: the map's order is its age
    this.#sweepExpired()
    if (this.#targets.size >= this.#maxTargets) this.#targets.delete(this.#targets.keys().next().value!)
    const entry = { ...found, expires: Date.now() + this.#targetTtlMs }
    this.#targets.set(name, entry)
    return entry
  }

  /**
   * Drop the expired targets at the front (the map's order is age, every entry has the same TTL):
   * amortised O(1) per insert. Without it every user who ever reported stayed until maxTargets
   * (issue #16, bench-results/2026-12-02-hub-memory).
   */
  #sweepExpired(): void {
    const now = Date.now()
    for (const [name, t] of this.#targets) {
      if (t.expires > now) break
      this.#targets.delete(name)
    }
  }

  /** Number of cached targets (tests). */
  get cachedTargets(): number { return this.#targets.size }

  /** Drop a cached target (the user was deleted or renamed, or one of their servers deleted). */
  forget(name: string): void {
    this.#targets.delete(name)
    for (const l of this.#forgetListeners) l(name)
  }

  /** Called with every `forget` (the fleet publishes them). */
  onForget(listener: (name: string) => void): void {
    this.#forgetListeners.push(listener)
  }

  /** `forget` in this process only (another hub's arriving). */
  drop(name: string): void {
    this.#targets.delete(name)
  }

  /** Drop every cached target (notifications may have been missed). */
  dropAll(): void {
    this.#targets.clear()
  }

  get pending(): number { return this.#users.size + this.#servers.size }

  /** Write what is buffered; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write()).catch(err => this.#log.error({ err }, 'activity flush failed'))
    return this.#flushing
  }

  async #write(): Promise<void> {
    const users = [...this.#users]; this.#users.clear()
    const servers = [...this.#servers]; this.#servers.clear()
    if (users.length > 0) {
      await sql`update users u set last_activity = v.t
        from unnest(${users.map(u => u[0])}::bigint[], ${users.map(u => new Date(u[1]).toISOString())}::timestamptz[]) as v(id, t)
        where u.id = v.id and (u.last_activity is null or u.last_activity < v.t)`.execute(this.#db)
    }
    if (servers.length > 0) {
      await sql`update servers s set last_activity = v.t
        from unnest(${servers.map(s => s[0])}::bigint[], ${servers.map(s => new Date(s[1]).toISOString())}::timestamptz[]) as v(id, t)
        where s.id = v.id and (s.last_activity is null or s.last_activity < v.t)`.execute(this.#db)
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
  }
}
