/**
 * The hub's side of route-store mode (`--proxy-routes db`): the routing table lives in Postgres
 * (`proxy_routes`), kept equal to the running servers by a trigger in the same transaction as
 * each state change (migrations/0010), and every proxy follows it (proxy/src/route-store.ts). So
 * a spawn or stop has nothing to tell a proxy, and activity is written by the proxies themselves.
 * What is left here is the safety net: a periodic reconcile that repairs drift (a manual edit, a
 * bug) and tells the proxies to reload when it changed anything.
 */
import { sql } from 'kysely'
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import type { ServerRoutes } from './route-sync.js'

/** A reconcile reads every running server: not more often than this, however often `check` is called. */
const MIN_RECONCILE_MS = 10_000

export class StoredRoutes implements ServerRoutes {
  readonly #db: Db
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined
  #lastAt = 0
  #enabled = false

  constructor(o: { db: Db; log: Logger }) {
    this.#db = o.db
    this.#log = o.log
  }

  /** The trigger adds the route when the server is marked running. */
  async addServer(): Promise<void> { /* the database does it */ }

  /** The trigger removes the route when the server leaves `running`. */
  async removeServer(): Promise<void> { /* the database does it */ }

  /**
   * Proxies write activity themselves (every `--activity-flush-interval`, 1 s by default, the same
   * bound as the REST mode's re-read before a cull), so there is nothing to harvest: this only runs
   * the reconcile, when the last one is old enough.
   */
  async check(): Promise<void> {
    if (Date.now() - this.#lastAt < MIN_RECONCILE_MS) return
    await this.reconcile()
  }

  /** A restarted proxy loads the table itself; a reconcile makes sure the table is right. */
  async restoreAll(): Promise<number> {
    return this.reconcile()
  }

  /** Make `proxy_routes` equal to the running servers; returns how many routes changed. Shared while running. */
  reconcile(): Promise<number> {
    this.#running ??= (async () => {
      // the first hub (or proxy) in route-store mode turns the table's trigger on and fills it
      if (!this.#enabled) {
        const on = await sql<{ on: boolean }>`select fleethub_enable_route_store() as on`.execute(this.#db)
        if (on.rows[0]?.on) this.#log.info('route store turned on: the routing table now follows the servers')
        this.#enabled = true
      }
      const { rows } = await sql<{ n: number }>`select fleethub_reconcile_routes() as n`.execute(this.#db)
      this.#lastAt = Date.now()
      const n = rows[0]?.n ?? 0
      if (n > 0) this.#log.warn({ changed: n }, 'route table repaired; the proxies reload it')
      return n
    })().finally(() => { this.#running = undefined })
    return this.#running
  }

  start(intervalMs: number, when?: () => boolean): void {
    this.#timer = setInterval(() => {
      if (when && !when()) return
      this.reconcile().catch(err => this.#log.warn({ err: String(err) }, 'route reconcile failed'))
    }, intervalMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    await this.#running?.catch(() => undefined)
  }
}
