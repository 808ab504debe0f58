/**
 * The fleet in /hub/metrics: which hub answered (`hub` label), which leases it holds, and the
 * health of its listening connection. Every hub reports only itself; a dashboard sums
 * `fleethub_lease_held` by lease to see that each singleton has exactly one holder.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Fleet } from './fleet.js'

/** A counter that follows a monotonic number read at scrape time. */
function followingCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  const seen = new Map<string, number>()
  new Counter({ name, help, labelNames, registers: [registry], collect() {
    for (const [labels, value] of read()) {
      const key = JSON.stringify(labels)
      const delta = value - (seen.get(key) ?? 0)
      if (delta > 0) this.inc(labels, delta)
      else if (!seen.has(key)) this.inc(labels, 0)
      seen.set(key, value)
    }
  } })
}

export function registerFleetMetrics(registry: Registry, fleet: Fleet): void {
  const hub = fleet.hubId
  new Gauge({ name: 'fleethub_hub_info', help: 'this hub process, by its fleet id', labelNames: ['hub'], registers: [registry],
    collect() { this.set({ hub }, 1) } })
  new Gauge({ name: 'fleethub_lease_held', help: 'singleton leases this hub holds (1) or not (0)', labelNames: ['hub', 'lease'], registers: [registry],
    collect() { for (const s of fleet.leases.states()) this.set({ hub, lease: s.name }, s.held ? 1 : 0) } })
  followingCounter(registry, 'fleethub_lease_acquired_total', 'times this hub acquired a singleton lease', ['hub', 'lease'],
    () => fleet.leases.states().map(s => [{ hub, lease: s.name }, s.acquired]))
  followingCounter(registry, 'fleethub_lease_runs_total', 'singleton loop passes this hub started under its lease', ['hub', 'lease'],
    () => fleet.leases.states().map(s => [{ hub, lease: s.name }, s.runs]))
  new Gauge({ name: 'fleethub_listen_connected', help: 'the LISTEN connection is up (1) or reconnecting (0)', labelNames: ['hub'], registers: [registry],
    collect() { this.set({ hub }, fleet.bus.health().connected ? 1 : 0) } })
  new Gauge({ name: 'fleethub_listen_fresh', help: 'the LISTEN connection answered a heartbeat recently, so caches may serve (1)', labelNames: ['hub'], registers: [registry],
    collect() { this.set({ hub }, fleet.bus.health().fresh ? 1 : 0) } })
  followingCounter(registry, 'fleethub_listen_reconnects_total', 'times the LISTEN connection was re-established', ['hub'],
    () => [[{ hub }, fleet.bus.health().reconnects]])
  followingCounter(registry, 'fleethub_notifications_published_total', 'notifications this hub sent', ['hub'],
    () => [[{ hub }, fleet.bus.health().published]])
  followingCounter(registry, 'fleethub_notifications_failed_total', 'notifications this hub could not send', ['hub'],
    () => [[{ hub }, fleet.bus.health().publishFailures]])
}
