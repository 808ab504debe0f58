/**
 * A hub's part in the fleet (issue #14; DESIGN.md, "The fleet"): several hub processes over one
 * Postgres, coordinated through it alone. Two dedicated connections per hub, outside the pool:
 * - the notification bus (LISTEN), which carries cache invalidations between hubs;
 * - the lease connection, whose session-level advisory locks say which hub runs each singleton loop.
 *
 * Singletons and their advisory lock keys (LOCK_SPACE = 0x464c4554, "FLET"):
 *   culler  (LOCK_SPACE, 1)   the idle culler's scheduled sweep and its event pruning
 *   poll    (LOCK_SPACE, 2)   the server poll (spawns.pollAll)
 *   prune   (LOCK_SPACE, 3)   deleting expired sessions
 *   routes  (LOCK_SPACE + 1, hash of the proxy)  route reconciliation, activity harvest, proxy ping:
 *           one holder per proxy. A shared (`--proxy external`) proxy is named by its API URL, so
 *           every hub using it contends; a child proxy by this hub's id, so its own hub always holds it.
 */
import { createHash } from 'node:crypto'
import type { Logger } from '../../../core/src/log.js'
import { createNotifyBus, type NotifyBus, type Queryable } from './notify-bus.js'
import { createLeases, type LeaseSpec, type Leases } from './leases.js'
import { syncCaches, type IdentityCache, type TargetCache } from './cache-sync.js'

export const LOCK_SPACE = 0x464c4554
export const PROXY_LOCK_SPACE = LOCK_SPACE + 1
/**
 * (OWNER_LOCK_SPACE, hash of the hub id): held by every hub on its lease connection for its whole
 * life, so any hub can tell from pg_locks whether the owner of a spawn or stop in flight is alive
 * (hub/src/servers/owner-sweep.ts). Taken like a lease; nobody else contends for it.
 */
export const OWNER_LOCK_SPACE = LOCK_SPACE + 2

/** The owner lock of a hub: its two int4 keys. */
export function ownerKey(hubId: string): readonly [number, number] {
  return [OWNER_LOCK_SPACE, int4Of(`owner ${hubId}`)]
}

export type Singleton = 'culler' | 'poll' | 'prune' | 'routes'

/** Fleet tuning; the defaults suit production, tests shorten them. */
export interface FleetOptions {
  /** Lease tick, ms: takeover within about one tick of a holder's connection closing. Default 1000. */
  readonly leaseTickMs?: number
  /** Silence after which Postgres ends a lease session (a vanished holder), ms. Default 3 × leaseTickMs. */
  readonly leaseIdleTimeoutMs?: number
  /** Heartbeat on the listening connection, ms. Default 250. */
  readonly heartbeatMs?: number
  /** Caches serve only while the bus proved itself within this many ms. Default 1000. */
  readonly staleAfterMs?: number
  /** Reconnect backoff of the listening connection, ms. Defaults 100 and 5000. */
  readonly reconnectMinMs?: number
  readonly reconnectMaxMs?: number
}

export interface Fleet {
  /** This process's name in the fleet: logs, metrics' `hub` label, server ownership. */
  readonly hubId: string
  readonly bus: NotifyBus
  readonly leases: Leases
  /** Whether caches kept fresh by notifications may serve now (see notify-bus.ts). */
  cacheUsable(): boolean
  /** Publish this hub's cache invalidations and apply the other hubs'. */
  followCaches(auth: IdentityCache, activity: TargetCache): void
  /** Start contending for the singleton leases (once the loops they gate exist). */
  startLeases(): Promise<void>
  close(): Promise<void>
}

export interface StartFleetOptions extends FleetOptions {
  readonly url: string
  /** The hub's pool (publishing when the listening connection is down). */
  readonly publisher: Queryable
  readonly log: Logger
  readonly hubId: string
  /** The proxy the routes lease is about: its API URL if shared, undefined for a child proxy. */
  readonly sharedProxy: string | undefined
  readonly singletons: readonly Singleton[]
}

/** Postgres application_name of a hub's dedicated connection (63 bytes at most: the hub id's end, which differs, is kept). */
export function connectionName(role: 'listen' | 'leases', hubId: string): string {
  const head = `fleethub ${role} `
  return hubId.length + head.length <= 63 ? head + hubId : head + hubId.slice(-(63 - head.length))
}

/** A stable int4 from a string (the second key of a per-proxy lock). */
function int4Of(s: string): number {
  return createHash('sha256').update(s).digest().readInt32BE(0)
}

export function singletonKey(name: Singleton, o: { hubId: string; sharedProxy: string | undefined }): readonly [number, number] {
  switch (name) {
    case 'culler': return [LOCK_SPACE, 1]
    case 'poll': return [LOCK_SPACE, 2]
    case 'prune': return [LOCK_SPACE, 3]
    case 'routes': return [PROXY_LOCK_SPACE, int4Of(o.sharedProxy !== undefined ? `proxy ${o.sharedProxy.replace(/\/+$/, '')}` : `child ${o.hubId}`)]
  }
}

export async function startFleet(o: StartFleetOptions): Promise<Fleet> {
  const log = o.log.child({ hub: o.hubId })
  const bus = createNotifyBus({
    url: o.url, publisher: o.publisher, log, applicationName: connectionName('listen', o.hubId),
    heartbeatMs: o.heartbeatMs, staleAfterMs: o.staleAfterMs, reconnectMinMs: o.reconnectMinMs, reconnectMaxMs: o.reconnectMaxMs,
  })
  await bus.start()
  const specs: LeaseSpec[] = [...o.singletons.map(name => ({ name, key: singletonKey(name, o) })), { name: 'owner', key: ownerKey(o.hubId) }]
  const leases = createLeases({ url: o.url, log, applicationName: connectionName('leases', o.hubId), specs, tickMs: o.leaseTickMs, idleTimeoutMs: o.leaseIdleTimeoutMs })
  return {
    hubId: o.hubId,
    bus,
    leases,
    cacheUsable: () => bus.fresh(),
    followCaches: (auth, activity) => syncCaches({ bus, hubId: o.hubId, log, auth, activity }),
    startLeases: () => leases.start(),
    async close() {
      await leases.close()
      await bus.close()
    },
  }
}
