/**
 * Prometheus metrics on the API port at GET /metrics (and on --metrics-port when given, as CHP).
 * Decision: /metrics needs no token, like CHP's metrics listener and like the hub's own Prometheus
 * convention. The API port binds to localhost by default, and the metrics carry counts only (no
 * paths, users or tokens). Each proxy has its own Registry, so several proxies can live in one
 * process (tests, load tests) without name clashes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ForwarderStats } from './forward.js'
import type { RouteTable } from './route-table.js'
import type { RouteStoreStats } from './route-store.js'

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

export interface ProxyMetrics {
  /** Once per finished public request: count by status class and observe latency. */
  observeWeb(status: number, startedAt: bigint): void
  observeApi(status: number): void
  render(): Promise<{ contentType: string, body: string }>
  serve(req: IncomingMessage, res: ServerResponse): Promise<void>
  close(): void
}

/** `store`: route-store mode only (its gauges are absent otherwise). */
export function createProxyMetrics(deps: { table: RouteTable, stats: () => ForwarderStats, store?: () => RouteStoreStats }): ProxyMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'fleethub_proxy_', eventLoopMonitoringPrecision: 20 })
  const requests = new Counter({
    name: 'fleethub_proxy_requests_total', help: 'Requests on the public port by status class',
    labelNames: ['class'], registers: [registry],
  })
  const byClass = CLASSES.map(c => requests.labels(c))
  const latency = new Histogram({
    name: 'fleethub_proxy_request_duration_seconds', help: 'Time from request to response finish on the public port',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [registry],
  })
  const api = new Counter({
    name: 'fleethub_proxy_api_requests_total', help: 'API requests by status', labelNames: ['status'], registers: [registry],
  })
  new Gauge({
    name: 'fleethub_proxy_open_websockets', help: 'Websocket tunnels open now', registers: [registry],
    collect() { this.set(deps.stats().openWebsockets) },
  })
  new Gauge({
    name: 'fleethub_proxy_upstream_sockets', help: 'Sockets to upstreams (pooled keep-alive + websocket)', registers: [registry],
    collect() { this.set(deps.stats().upstreamSockets) },
  })
  new Gauge({
    name: 'fleethub_proxy_routes', help: 'Routes in the table', registers: [registry],
    collect() { this.set(deps.table.size) },
  })
  // Route-store mode: whether this proxy follows the database now, and how often it had to reload.
  const store = (name: string, help: string, pick: (s: RouteStoreStats) => number) => new Gauge({
    name: `fleethub_proxy_route_store_${name}`, help, registers: [registry],
    collect() { const s = deps.store?.(); if (s !== undefined) this.set(pick(s)) },
  })
  store('connected', '1 while the route notifications connection is up (route-store mode)', s => s.connected ? 1 : 0)
  store('reloads', 'Whole-table loads since start, the first included (route-store mode)', s => s.reloads)
  store('notifications', 'Route notifications received (route-store mode)', s => s.notifications)
  store('activity_flushes', 'Activity writes to the database (route-store mode)', s => s.activityFlushes)
  store('accounted_version', 'Every route change number up to this one is accounted for (route-store mode)', s => s.version)
  const render = async (): Promise<{ contentType: string, body: string }> =>
    ({ contentType: registry.contentType, body: await registry.metrics() })
  return {
    observeWeb(status, startedAt) {
      const cls = Math.floor(status / 100) - 1
      if (cls >= 0 && cls < 5) byClass[cls].inc()
      latency.observe(Number(process.hrtime.bigint() - startedAt) / 1e9)
    },
    observeApi(status) {
      api.labels(String(status)).inc()
    },
    render,
    async serve(req, res) {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404)
        res.end('Not Found')
        return
      }
      const { contentType, body } = await render()
      res.writeHead(200, { 'Content-Type': contentType })
      res.end(body)
    },
    close() {
      registry.clear()
    },
  }
}
