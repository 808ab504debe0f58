/**
 * Activity reports are coalesced in memory and written in batches: thousands of servers reporting
 * every few minutes become one UPDATE per table per flush, not one transaction per report. Only
 * the newest time per user and per server is kept; the database keeps the max (never moves back).
 */
import { sql } from 'kysely'
import type { Db } from '../db.js'
import type { Logger } from '../log.js'

export class ActivityBuffer {
  readonly #db: Db
  readonly #log: Logger
  readonly #users = new Map<string, number>()
  readonly #servers = new Map<string, number>()
  readonly #timer: NodeJS.Timeout
  #flushing: Promise<void> = Promise.resolve()

  constructor(db: Db, log: Logger, options: { flushIntervalMs?: number } = {}) {
    this.#db = db
    this.#log = log
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
