/**
 * Spawns and stops whose hub died (issue #14). Every hub holds its owner lock (fleet.ts,
 * `ownerKey`) on its lease connection for its whole life; Postgres frees it the moment that
 * connection closes (crash, SIGKILL) or, for a hub gone silent, after the lease connection's
 * idle_session_timeout. A `pending` or `stopping` row whose owner holds no such lock is an orphan,
 * and the hub running the sweep (the `poll` lease holder, every second) finishes it:
 * - pending: whatever the spawner had saved is stopped, the route dropped, and the row goes to
 *   `stopped` with `last_error`, which every hub's progress stream and page show the user;
 * - stopping: the stop is finished through the spawner (a server the spawner says is gone counts
 *   as stopped), then the row goes to `stopped`.
 * Each end is guarded (`markStopped`'s `ifOwned`: same owner, same state), so a row claimed again in
 * the meantime is left alone, and the dead hub, were it only cut off, cannot finish it twice.
 *
 * Stated bound: the owner's connection closes → the lock is free at once → the next sweep (≤ 1 s,
 * or ≤ 1 lease tick more when the dead hub also held the `poll` lease), but not before GRACE_MS
 * after the claim, plus one stop (orphans are settled SWEEP_CONCURRENCY at a time): ≤ 4 s after a
 * SIGKILL, ≤ 7 s after a silent death; the tests hold it to 10 s.
 */
import type { Spawner, SpawnerState } from '../../../spawner/src/index.js'
import type { Db } from '../db.js'
import type { Logger } from '../../../core/src/log.js'
import { ownerKey, OWNER_LOCK_SPACE } from '../fleet/fleet.js'
import type { ServerRoutes } from '../proxy/route-sync.js'
import { heldLockKeys, listInFlight, markStopped, type InFlightServer, type ServerRecord } from './server.repository.js'
import { mapLimit } from '../map-limit.js'

/** A claim this young is not swept: its hub may not hold its owner lock yet (it is taken as the hub starts). */
export const GRACE_MS = 2000

export interface OwnerSweepDeps {
  readonly db: Db
  readonly spawner: Spawner
  readonly routes: ServerRoutes
  readonly log: Logger
  /** This hub: its own rows are never orphans. */
  readonly hubId: string
  /** A spawn of a dead hub was failed (tell the user: progress streams on every hub). */
  readonly spawnFailed: (server: ServerRecord, message: string) => void
  /** A server's credentials went (drop cached identities). */
  readonly stopped: (server: ServerRecord) => void
}

export const ORPHAN_MESSAGE = 'the hub starting this server stopped before it was ready; please start it again'

/** Rows in flight whose owner holds no owner lock. */
export async function findOrphans(db: Db, hubId: string, graceMs = GRACE_MS): Promise<InFlightServer[]> {
  const rows = await listInFlight(db, hubId, graceMs)
  if (rows.length === 0) return rows
  const alive = await heldLockKeys(db, OWNER_LOCK_SPACE)
  return rows.filter(r => r.owner === null || !alive.has(ownerKey(r.owner)[1]))
}

/**
 * Orphans settled at once. Each waits for its pod or process to go (a Kubernetes pod: its delete
 * grace period, 1 s by default), so one after another a hub that died in a class start with 50
 * spawns in flight would keep its last students waiting 50 s, far past the stated bound.
 */
export const SWEEP_CONCURRENCY = 32

/** One pass: finish or fail every orphan, `SWEEP_CONCURRENCY` at a time; returns how many rows it settled. */
export async function sweepDeadOwners(d: OwnerSweepDeps, graceMs = GRACE_MS): Promise<number> {
  const orphans = await findOrphans(d.db, d.hubId, graceMs)
  let settled = 0
  await mapLimit(orphans, SWEEP_CONCURRENCY, async o => {
    const ok = o.server.state === 'pending' ? await failOrphanSpawn(d, o) : await finishOrphanStop(d, o)
    if (ok) settled++
  })
  return settled
}

async function failOrphanSpawn(d: OwnerSweepDeps, { server, owner }: InFlightServer): Promise<boolean> {
  const log = d.log.child({ user: server.userName, server: server.name, owner })
  const who = { user: server.userName, serverName: server.name }
  await d.routes.removeServer(server).catch(() => undefined)
  // A Kubernetes pod outlives its hub; a local process of another machine is not ours to reach.
  if (Object.keys(server.spawnerState).length > 0) {
    await d.spawner.stop(server.spawnerState as SpawnerState, who).catch(err => log.warn({ err: String(err) }, 'could not stop what a dead hub started'))
  }
  if (!await markStopped(d.db, server.id, ORPHAN_MESSAGE, { owner, states: ['pending'] })) return false
  log.warn('spawn of a dead hub failed')
  d.stopped(server)
  d.spawnFailed(server, ORPHAN_MESSAGE)
  return true
}

async function finishOrphanStop(d: OwnerSweepDeps, { server, owner }: InFlightServer): Promise<boolean> {
  const log = d.log.child({ user: server.userName, server: server.name, owner })
  const who = { user: server.userName, serverName: server.name }
  await d.routes.removeServer(server).catch(() => undefined)
  if (Object.keys(server.spawnerState).length > 0) {
    try {
      await d.spawner.stop(server.spawnerState as SpawnerState, who)
    } catch (err) {
      const polled = await d.spawner.poll(server.spawnerState as SpawnerState, who).catch(() => ({ running: true }))
      if (polled.running) {
        log.warn({ err: String(err) }, 'could not finish the stop of a dead hub; the next sweep retries')
        return false
      }
    }
  }
  if (!await markStopped(d.db, server.id, null, { owner, states: ['stopping'] })) return false
  log.info('stop of a dead hub finished')
  d.stopped(server)
  return true
}
