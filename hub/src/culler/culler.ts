/**
 * The in-hub idle culler (jupyterhub-idle-culler's job, done inside the hub against the database
 * instead of through `GET /users`, which took ~20 minutes for 50k users in jupyterhub#2954).
 *
 * A sweep: harvest the proxy's route activity and flush buffered activity reports, so
 * `servers.last_activity` is current; select idle servers with one indexed query; stop them
 * through the spawn manager with bounded concurrency, re-reading each one right before its stop;
 * delete users and named-server rows when asked; log every decision in `cull_events`.
 *
 * Several hubs: the scheduled sweep runs only on the hub holding the `culler` lease (`start`'s
 * `when`, hub/src/fleet/leases.ts). An admin's "cull now" runs on whichever hub got the request;
 * overlapping a scheduled sweep elsewhere is safe (the stop claims the row running -> stopping,
 * and the loser records "no longer running").
 *
 * Dry runs change no server and no user. Two kinds, decided so: `preview()` (the admin API's
 * `POST /hub/api/cull {"dry_run": true}`, which the admin page may call at will) records nothing;
 * `sweep({ dryRun: true })` (a trial run of the settings) records what it would have stopped as
 * events with `dry_run = true`, so the log tells trials apart from real culls.
 */
import type { Db } from '../db.js'
import { HubError } from '../errors.js'
import type { Logger } from '../../../core/src/log.js'
import type { InvalidateBy } from '../auth/request-auth.js'
import type { ServerRecord } from '../servers/server.repository.js'
import {
  deleteIdleUser, findCandidates, pruneEvents, recheck, recordEvents, removeNamedServer,
  type Candidate, type CullBy, type CullEventRow, type CullRules,
} from './cull.repository.js'
import { mapLimit } from '../map-limit.js'

export type { Candidate }

/** The culler's settings (the hub's `cull*` options). */
export interface CullerOptions {
  /** Seconds without activity before a server is stopped. Hub default 3600. */
  readonly timeout: number
  /** Seconds between sweeps. Hub default 300. */
  readonly every: number
  /** Stop servers older than this many seconds even if active; 0 = never. Default 0. */
  readonly maxAge: number
  /** Delete users left without an active server and inactive past the timeout (never admins). Default false. */
  readonly cullUsers: boolean
  /** Stops in flight at once. Default 10. */
  readonly concurrency: number
  /** Cull admins' servers too. Default true. */
  readonly cullAdminUsers: boolean
  /** Delete the rows of culled named servers, not just stop them. Default false. */
  readonly removeNamedServers: boolean
  /** At most this many servers per sweep; the rest wait for the next one. Default 5000. */
  readonly limit?: number
  /** Drop events older than this many days at each scheduled sweep. Default 30. */
  readonly keepEventsDays?: number
  /** During a sweep, read the proxy's route activity again before a stop when the last read is older than this. Default 1000 ms. */
  readonly refreshMs?: number
}

/** What the culler needs from the hub (HubContext fits). */
export interface CullerDeps {
  readonly db: Db
  readonly log: Logger
  readonly spawns: { stop(server: ServerRecord, reason?: string): Promise<'stopped' | 'cancelled' | 'not-running' | 'stopping'> }
  readonly routes: { check(): Promise<void> }
  readonly activity: { flush(): Promise<void>; forget?(userName: string): void }
  readonly auth?: { invalidate(by: InvalidateBy): void }
}

export interface CullReport {
  readonly by: CullBy
  readonly dryRun: boolean
  readonly startedAt: Date
  readonly finishedAt: Date
  /** Servers the selection matched. */
  readonly candidates: number
  /** True when the selection hit the per-sweep limit (more may be idle). */
  readonly truncated: boolean
  readonly stopped: number
  readonly usersDeleted: number
  readonly skipped: number
  /** Every decision, in the order made (the same rows as `cull_events`). */
  readonly actions: readonly CullEventRow[]
}

export interface Culler {
  /** Run one sweep now (waits for a running one first). */
  sweep(o?: { dryRun?: boolean; by?: CullBy }): Promise<CullReport>
  /** What a sweep would select now; changes and records nothing. */
  preview(): Promise<Candidate[]>
  /** Sweep every `options.every` seconds (each time `when` allows: this hub holds the lease). */
  start(when?: () => boolean): void
  /** Stop the schedule and wait for a running sweep. */
  close(): Promise<void>
}

/** A sweep that cannot run (no fresh activity, shutting down): 503 at the edge, try again. */
export class CullerError extends HubError {
  constructor(code: 'HUB_CULL_NO_ACTIVITY' | 'HUB_SHUTTING_DOWN', message?: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'CullerError'
  }
}

const DEFAULT_LIMIT = 5000
const DEFAULT_REFRESH_MS = 1000
const EVENT_BATCH = 100

export function createCuller(deps: CullerDeps, options: CullerOptions): Culler {
  const log = deps.log.child({ component: 'culler' })
  const rules: CullRules = { timeout: options.timeout, maxAge: options.maxAge, cullAdminUsers: options.cullAdminUsers }
  const limit = options.limit ?? DEFAULT_LIMIT
  const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS
  let current: Promise<unknown> = Promise.resolve()
  let running = false
  let timer: NodeJS.Timeout | undefined
  let gate: (() => boolean) | undefined
  let closed = false

  // When the proxy's route activity was last read into the database (ms, this process's clock).
  let harvestedAt = 0
  let harvesting: Promise<void> | undefined
  const prepare = async () => {
    const startedAt = Date.now()
    try {
      await deps.routes.check()
    } catch (err) {
      // Never cull on stale activity: without the proxy's numbers an active user looks idle.
      throw new CullerError('HUB_CULL_NO_ACTIVITY', undefined, { cause: err })
    }
    await deps.activity.flush()
    harvestedAt = startedAt
  }
  /**
   * Right before a stop: write the reports buffered since, and read the proxy's activity again if
   * the last read is older than `refreshMs` (a long sweep stops its last server minutes after its
   * selection; a user who came back through the proxy meanwhile must count). Shared by the stops in
   * flight, so a sweep costs one route read per `refreshMs`, not one per server.
   */
  const refresh = async () => {
    if (Date.now() - harvestedAt < refreshMs) return deps.activity.flush()
    harvesting ??= prepare().finally(() => { harvesting = undefined })
    return harvesting
  }

  const preview = async () => {
    await prepare()
    return findCandidates(deps.db, rules, limit)
  }

  const run = async (dryRun: boolean, by: CullBy): Promise<CullReport> => {
    const startedAt = new Date()
    await prepare()
    const candidates = await findCandidates(deps.db, rules, limit)
    const actions: CullEventRow[] = []
    // Events are written in batches (one INSERT per EVENT_BATCH decisions, and at the end): a
    // round trip per cull was a fifth of a 5,000-server sweep's database work.
    let unwritten: CullEventRow[] = []
    const write = async () => {
      const batch = unwritten
      unwritten = []
      await recordEvents(deps.db, batch, { dryRun, by }).catch(err => log.error({ err, lost: batch.length }, 'could not record cull events'))
    }
    const record = async (e: CullEventRow) => {
      actions.push(e)
      unwritten.push(e)
      if (unwritten.length >= EVENT_BATCH) await write()
    }
    try {
      if (dryRun) {
        for (const c of candidates) await record({ userName: c.userName, serverName: c.serverName, idleSeconds: c.idleSeconds, rule: c.rule, action: 'stopped' })
      } else {
        await mapLimit(candidates, options.concurrency, c => cullOne(c, record))
      }
    } finally {
      await write()
    }
    const count = (a: CullEventRow['action']) => actions.filter(x => x.action === a).length
    const report: CullReport = {
      by, dryRun, startedAt, finishedAt: new Date(), candidates: candidates.length, truncated: candidates.length >= limit,
      stopped: count('stopped'), usersDeleted: count('user-deleted'), skipped: count('skipped'), actions,
    }
    if (candidates.length > 0) log.info({ by, dryRun, candidates: report.candidates, stopped: report.stopped, usersDeleted: report.usersDeleted, skipped: report.skipped, ms: report.finishedAt.getTime() - startedAt.getTime() }, 'cull sweep done')
    return report
  }

  const cullOne = async (c: Candidate, record: (e: CullEventRow) => Promise<void>) => {
    const base = { userName: c.userName, serverName: c.serverName }
    try {
      // Activity that arrived during the sweep (reports and proxy traffic) is written before the re-read, so it counts.
      await refresh()
      const now = await recheck(deps.db, c.serverId, rules)
      if (!now.cull) return await record({ ...base, idleSeconds: c.idleSeconds, rule: c.rule, action: 'skipped', detail: now.reason })
      const reason = now.rule === 'idle' ? `culled: idle for ${now.idleSeconds} s` : 'culled: older than the maximum age'
      const result = await deps.spawns.stop(now.server, reason)
      if (result !== 'stopped') return await record({ ...base, idleSeconds: now.idleSeconds, rule: now.rule, action: 'skipped', detail: result === 'stopping' ? 'already stopping' : 'no longer running' })
      const removed = options.removeNamedServers && c.serverName !== '' && await removeNamedServer(deps.db, c.serverId)
      if (removed) deps.activity.forget?.(c.userName)
      await record({ ...base, idleSeconds: now.idleSeconds, rule: now.rule, action: 'stopped', detail: removed ? 'removed' : undefined })
      if (options.cullUsers && !c.admin) {
        const gone = await deleteIdleUser(deps.db, c.userId, options.timeout)
        if (gone) {
          deps.auth?.invalidate({ userId: c.userId })
          deps.activity.forget?.(gone.name)
          await record({ userName: gone.name, serverName: null, idleSeconds: gone.idleSeconds, rule: now.rule, action: 'user-deleted' })
        }
      }
    } catch (err) {
      log.error({ err, user: c.userName, server: c.serverName }, 'cull failed')
      await record({ ...base, idleSeconds: c.idleSeconds, rule: c.rule, action: 'skipped', detail: `failed: ${err instanceof Error ? err.message : String(err)}` })
    }
  }

  const sweep = (o: { dryRun?: boolean; by?: CullBy } = {}): Promise<CullReport> => {
    if (closed) return Promise.reject(new CullerError('HUB_SHUTTING_DOWN'))
    const next = current.catch(() => undefined).then(async () => {
      running = true
      try { return await run(o.dryRun === true, o.by ?? 'api') } finally { running = false }
    })
    current = next
    return next
  }

  const scheduled = () => {
    if (running || closed || (gate && !gate())) return // one sweep at a time; a slow one just delays the next
    sweep({ by: 'hub' })
      .then(() => pruneEvents(deps.db, options.keepEventsDays ?? 30))
      .catch(err => log.warn({ err: String(err), code: (err as { code?: string }).code }, 'scheduled cull failed'))
  }

  return {
    sweep,
    preview,
    start(when) {
      if (timer || closed) return
      gate = when
      timer = setInterval(scheduled, options.every * 1000)
      timer.unref()
    },
    async close() {
      closed = true
      if (timer) clearInterval(timer)
      await current.catch(() => undefined)
    },
  }
}

