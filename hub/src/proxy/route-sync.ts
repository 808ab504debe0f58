/**
 * Keeps the proxy's routing table equal to what the database says is running, the way
 * JupyterHub's check_routes does, but in bulk: after a proxy restart the whole table goes back in
 * one call (PUT /api/routes), not one POST per server. The periodic check also harvests the
 * proxy's per-route `last_activity` into the activity buffer.
 */
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import type { ActivityBuffer } from '../servers/activity.js'
import { listActiveServers, type ServerRecord } from '../servers/server.repository.js'
import { urlEscape } from '../servers/url-escape.js'
import type { HubMetrics } from '../metrics.js'
import { mapLimit } from '../map-limit.js'

export interface RouteEntry { target: string; last_activity?: string; [data: string]: unknown }

/** The part of the proxy's REST client this needs (proxy/src/client.ts implements it). */
export interface RoutesApi {
  getRoutes(): Promise<Record<string, RouteEntry>>
  addRoute(path: string, target: string, data?: Record<string, unknown>): Promise<void>
  deleteRoute(path: string): Promise<boolean>
  replaceRoutes(routes: Record<string, { target: string; [data: string]: unknown }>): Promise<void>
}

/** `/user/alice` or `/user/alice/<server name>`: the proxy's (unescaped) route key. */
export function routePath(userName: string, serverName: string): string {
  return serverName === '' ? `/user/${userName}` : `/user/${userName}/${serverName}`
}

/** A user server's URL prefix, escaped for use in URLs: `/user/alice/`, `/user/carol/bad%20name%21/`. */
export function serverPrefix(userName: string, serverName: string): string {
  return serverName === '' ? `/user/${urlEscape(userName)}/` : `/user/${urlEscape(userName)}/${urlEscape(serverName)}/`
}

/**
 * What the hub needs of the routing table, whichever way proxies get it: through their REST API
 * (RouteSync, CHP-compatible) or from the database (StoredRoutes, `--proxy-routes db`).
 */
export interface ServerRoutes {
  addServer(server: Pick<ServerRecord, 'userName' | 'name'>, target: string): Promise<void>
  removeServer(server: Pick<ServerRecord, 'userName' | 'name'>): Promise<void>
  /** Reconcile; the pass a caller waits for sees activity from after the call. */
  check(): Promise<void>
  /** After a proxy restart: the whole table back. Returns the number of routes. */
  restoreAll(): Promise<number>
  start(intervalMs: number, when?: () => boolean): void
  close(): Promise<void>
}

const REPAIR_CONCURRENCY = 8
const BULK_REPAIR_THRESHOLD = 50
/** After a bulk restore, one more pass this much later (see restoreAll). */
const FOLLOW_UP_MS = 2000

export class RouteSync implements ServerRoutes {
  readonly #api: RoutesApi
  readonly #db: Db
  readonly #log: Logger
  readonly #hubTarget: string
  readonly #activity: ActivityBuffer | undefined
  readonly #metrics: Pick<HubMetrics, 'proxyAdd' | 'proxyDelete' | 'checkRoutes'> | undefined
  #timer: NodeJS.Timeout | undefined
  #checking: Promise<void> | undefined
  #nextCheck: Promise<void> | undefined
  #followUp: NodeJS.Timeout | undefined

  constructor(o: { api: RoutesApi; db: Db; log: Logger; hubTarget: string; activity?: ActivityBuffer; metrics?: Pick<HubMetrics, 'proxyAdd' | 'proxyDelete' | 'checkRoutes'> }) {
    this.#metrics = o.metrics
    this.#api = o.api
    this.#db = o.db
    this.#log = o.log
    this.#hubTarget = o.hubTarget
    this.#activity = o.activity
  }

  async addServer(server: Pick<ServerRecord, 'userName' | 'name'>, target: string): Promise<void> {
    const end = this.#metrics?.proxyAdd.startTimer()
    try {
      await this.#api.addRoute(routePath(server.userName, server.name), target, { user: server.userName, server_name: server.name, jupyterhub: true })
      end?.({ status: 'success' })
    } catch (err) {
      end?.({ status: 'failure' })
      throw err
    }
  }

  async removeServer(server: Pick<ServerRecord, 'userName' | 'name'>): Promise<void> {
    const end = this.#metrics?.proxyDelete.startTimer()
    try {
      await this.#api.deleteRoute(routePath(server.userName, server.name))
      end?.({ status: 'success' })
    } catch (err) {
      end?.({ status: 'failure' })
      throw err
    }
  }

  #desired(servers: readonly ServerRecord[]): Map<string, { target: string; [k: string]: unknown }> {
    const want = new Map<string, { target: string; [k: string]: unknown }>()
    want.set('/', { hub: true, target: this.#hubTarget, jupyterhub: true })
    for (const s of servers) {
      if (s.state === 'running' && s.url) want.set(routePath(s.userName, s.name), { user: s.userName, server_name: s.name, target: s.url, jupyterhub: true })
    }
    return want
  }

  /**
   * Put every route back at once (after a proxy restart). Routes not made by a hub are kept, and so
   * are the routes of servers mid-spawn or mid-stop: their own flow (on this hub or another one of
   * the fleet) owns them, and a spawn adds its route before it marks the server running.
   *
   * A spawn on another hub may still add its route between this read and the PUT, which then
   * erases it; a follow-up pass (`FOLLOW_UP_MS` later, when that spawn has marked its server
   * running) puts it back.
   */
  async restoreAll(): Promise<number> {
    const [current, servers] = await Promise.all([this.#api.getRoutes(), listActiveServers(this.#db)])
    const inFlight = new Set(servers.filter(s => s.state !== 'running').map(s => routePath(s.userName, s.name)))
    const table: Record<string, { target: string; [k: string]: unknown }> = {}
    for (const [path, r] of Object.entries(current)) {
      if (r.jupyterhub !== true || inFlight.has(path)) {
        const { last_activity: _ignored, ...data } = r
        table[path] = data
      }
    }
    for (const [path, r] of this.#desired(servers)) table[path] = r
    await this.#api.replaceRoutes(table)
    this.#log.info({ routes: Object.keys(table).length }, 'proxy routing table restored')
    this.#followUp ??= setTimeout(() => {
      this.#followUp = undefined
      this.check().catch(err => this.#log.warn({ err: String(err) }, 'route check after restore failed'))
    }, FOLLOW_UP_MS).unref()
    return Object.keys(table).length
  }

  /**
   * One reconciliation pass: harvest activity, add what is missing or wrong, delete hub routes of
   * servers that are not running. Servers mid-spawn or mid-stop are left alone.
   *
   * The pass a caller waits for always reads the proxy's routes after the call: a caller that
   * arrives while a pass is in flight waits for it and then for the next one, which every such
   * caller shares. (Joining the pass in flight would hand the culler activity read before its
   * sweep began: a user active in between would look idle.)
   */
  check(): Promise<void> {
    if (this.#checking) {
      this.#nextCheck ??= this.#checking.catch(() => undefined).then(() => {
        this.#nextCheck = undefined
        return this.check()
      })
      return this.#nextCheck
    }
    const end = this.#metrics?.checkRoutes.startTimer()
    this.#checking = this.#check().finally(() => { this.#checking = undefined; end?.() })
    return this.#checking
  }

  async #check(): Promise<void> {
    const [current, servers] = await Promise.all([this.#api.getRoutes(), listActiveServers(this.#db)])
    const byRoute = new Map(servers.map(s => [routePath(s.userName, s.name), s]))
    const want = this.#desired(servers)
    const repairs: Array<() => Promise<unknown>> = []
    let additions = 0
    for (const [path, r] of Object.entries(current)) {
      const server = byRoute.get(path)
      if (server && r.last_activity && this.#activity) {
        const at = new Date(r.last_activity)
        if (!Number.isNaN(at.getTime()) && (!server.lastActivity || server.lastActivity < at)) {
          this.#activity.recordServer(server.id, at)
          this.#activity.recordUser(server.userId, at)
        }
      }
      if (r.jupyterhub !== true || want.has(path)) continue
      if (server && server.state !== 'stopped') continue // pending/stopping: its own flow owns the route
      this.#log.info({ path }, 'deleting stale route')
      repairs.push(() => this.#api.deleteRoute(path))
    }
    for (const [path, r] of want) {
      const have = current[path]
      if (have && have.target === r.target) continue
      this.#log.info({ path, target: r.target }, have ? 'fixing route target' : 'adding missing route')
      const { target, ...data } = r
      additions++
      repairs.push(() => this.#api.addRoute(path, target, data))
    }
    // Many routes missing means the proxy lost its table: put it back in one call.
    if (additions > BULK_REPAIR_THRESHOLD) {
      await this.restoreAll()
      return
    }
    await mapLimit(repairs, REPAIR_CONCURRENCY, repair => repair())
  }

  /**
   * Run `check` every `intervalMs` (JupyterHub's last_activity_interval, default 300 s), each time
   * `when` allows (several hubs on one proxy: only the `routes` lease holder reconciles and harvests).
   */
  start(intervalMs: number, when?: () => boolean): void {
    this.#timer = setInterval(() => {
      if (when && !when()) return
      this.check().catch(err => this.#log.warn({ err: String(err) }, 'route check failed'))
    }, intervalMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    if (this.#followUp) clearTimeout(this.#followUp)
    await this.#checking?.catch(() => undefined)
    await this.#nextCheck?.catch(() => undefined)
  }
}
