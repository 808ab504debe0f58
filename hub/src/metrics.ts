/**
 * Prometheus metrics at /hub/metrics, with JupyterHub's names where one exists (anchors §1.5) so
 * existing dashboards work, plus what JupyterHub lacks: the spawn queue, event-loop lag and the
 * database pool.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Request, Response, NextFunction } from 'express'
import type pg from 'pg'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { sql } from 'kysely'
import type { Db } from './db.js'

export interface HubMetrics {
  readonly registry: Registry
  readonly spawnDuration: Histogram<'status'>
  readonly stopDuration: Histogram<'status'>
  readonly proxyAdd: Histogram<'status'>
  readonly proxyDelete: Histogram<'status'>
  readonly checkRoutes: Histogram<string>
  readonly requests: Histogram<'method' | 'handler' | 'code'>
  readonly spawnRejected: Counter<'reason'>
  /** Express middleware timing every request by its route pattern (never by user name: bounded labels). */
  middleware(req: Request, res: Response, next: NextFunction): void
  close(): void
}

export function createHubMetrics(o: { db: Db; pool?: pg.Pool; queue: () => { running: number; queued: number } }): HubMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 })
  const buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
  const requests = new Histogram({ name: 'jupyterhub_request_duration_seconds', help: 'request duration for all HTTP requests', labelNames: ['method', 'handler', 'code'], registers: [registry], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] })
  const spawnDuration = new Histogram({ name: 'jupyterhub_server_spawn_duration_seconds', help: 'time taken for server spawning operation', labelNames: ['status'], registers: [registry], buckets })
  const stopDuration = new Histogram({ name: 'jupyterhub_server_stop_seconds', help: 'time taken for server stopping operation', labelNames: ['status'], registers: [registry], buckets })
  const proxyAdd = new Histogram({ name: 'jupyterhub_proxy_add_duration_seconds', help: 'duration for adding user routes to proxy', labelNames: ['status'], registers: [registry] })
  const proxyDelete = new Histogram({ name: 'jupyterhub_proxy_delete_duration_seconds', help: 'duration for deleting user routes from proxy', labelNames: ['status'], registers: [registry] })
  const checkRoutes = new Histogram({ name: 'jupyterhub_check_routes_duration_seconds', help: 'time taken to validate all routes in proxy', registers: [registry] })
  const spawnRejected = new Counter({ name: 'fleethub_spawn_rejected_total', help: 'spawn requests refused (429)', labelNames: ['reason'], registers: [registry] })
  const loop = monitorEventLoopDelay({ resolution: 20 })
  loop.enable()
  new Gauge({ name: 'jupyterhub_event_loop_interval_seconds', help: 'event loop delay p99 since the last scrape', registers: [registry],
    collect() { this.set(loop.percentile(99) / 1e9); loop.reset() } })
  new Gauge({ name: 'jupyterhub_running_servers', help: 'the number of user servers currently running', registers: [registry],
    async collect() { this.set(await countServers(o.db, 'running')) } })
  new Gauge({ name: 'fleethub_pending_servers', help: 'user servers starting (spawn in progress)', registers: [registry],
    async collect() { this.set(await countServers(o.db, 'pending')) } })
  new Gauge({ name: 'jupyterhub_total_users', help: 'total number of users', registers: [registry],
    async collect() { this.set(Number((await sql<{ n: string }>`select count(*) as n from users`.execute(o.db)).rows[0]?.n ?? 0)) } })
  new Gauge({ name: 'fleethub_spawn_queue_length', help: 'spawns waiting for a slot in the admission queue', registers: [registry], collect() { this.set(o.queue().queued) } })
  new Gauge({ name: 'fleethub_spawns_in_flight', help: 'spawns holding a slot', registers: [registry], collect() { this.set(o.queue().running) } })
  if (o.pool) {
    const pool = o.pool
    new Gauge({ name: 'fleethub_db_pool_connections', help: 'database pool connections by state', labelNames: ['state'], registers: [registry],
      collect() { this.set({ state: 'total' }, pool.totalCount); this.set({ state: 'idle' }, pool.idleCount); this.set({ state: 'waiting' }, pool.waitingCount) } })
  }
  return {
    registry, spawnDuration, stopDuration, proxyAdd, proxyDelete, checkRoutes, requests, spawnRejected,
    middleware(req, res, next) {
      const end = requests.startTimer()
      res.on('finish', () => {
        const route = (req as Request & { route?: { path?: unknown } }).route?.path
        const handler = `${req.baseUrl}${typeof route === 'string' ? route : Array.isArray(route) ? String(route[0]) : ''}` || 'unmatched'
        end({ method: req.method, handler, code: res.statusCode })
      })
      next()
    },
    close() { loop.disable() },
  }
}

async function countServers(db: Db, state: 'running' | 'pending'): Promise<number> {
  const r = await db.selectFrom('servers').select(sql<string>`count(*)`.as('n')).where('state', '=', state).executeTakeFirstOrThrow()
  return Number(r.n)
}
