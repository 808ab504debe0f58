/**
 * The culler's admin API, mounted under /hub/api:
 *   GET  /cull/events?limit=&before=   the log, newest first (admin:servers)
 *   POST /cull  {"dry_run": true}      preview: what would be stopped now, nothing changed
 *   POST /cull  {}                     sweep now; the report
 */
import express, { Router } from 'express'
import type { HubContext } from '../context.js'
import { identifyApi } from '../auth/identify.js'
import { needScope } from '../api/guards.js'
import { isoTime } from '../api/models.js'
import { HttpError } from '../errors.js'
import { listEvents, type CullEvent } from './cull.repository.js'
import type { Culler, CullReport } from './culler.js'

const SCOPE = ['admin:servers']
const MAX_LIMIT = 1000

/** Small body, any content type (JupyterHub clients send form types), bodiless is `{}`. */
const body = express.json({ limit: '4kb', strict: false, type: () => true })

function eventModel(e: CullEvent): Record<string, unknown> {
  return {
    id: e.id, at: isoTime(e.at), user: e.userName, server: e.serverName, idle_seconds: e.idleSeconds,
    rule: e.rule, action: e.action, detail: e.detail, dry_run: e.dryRun, by: e.by,
  }
}

export function reportModel(r: CullReport): Record<string, unknown> {
  return {
    by: r.by, dry_run: r.dryRun, started: isoTime(r.startedAt), finished: isoTime(r.finishedAt),
    candidates: r.candidates, truncated: r.truncated, stopped: r.stopped, users_deleted: r.usersDeleted, skipped: r.skipped,
    actions: r.actions.map(a => ({ user: a.userName, server: a.serverName, idle_seconds: a.idleSeconds, rule: a.rule, action: a.action, detail: a.detail ?? null })),
  }
}

function parseLimit(v: unknown): number {
  if (v === undefined) return 100
  const n = typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : NaN
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new HttpError('HUB_CULL_BAD_LIMIT', `limit must be an integer from 1 to ${MAX_LIMIT}`)
  return n
}

function parseBefore(v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\d{1,18}$/.test(v)) throw new HttpError('HUB_CULL_BAD_BEFORE')
  return v
}

function parseDryRun(b: unknown): boolean {
  if (b === undefined || b === null || (typeof b === 'object' && !Array.isArray(b) && Object.keys(b as object).length === 0)) return false
  if (typeof b !== 'object' || Array.isArray(b)) throw new HttpError('HUB_CULL_BAD_BODY', 'body must be a JSON object like {"dry_run": true}')
  const extra = Object.keys(b as object).filter(k => k !== 'dry_run')
  if (extra.length > 0) throw new HttpError('HUB_CULL_BAD_BODY', `unknown field(s): ${extra.join(', ')}`)
  const d = (b as { dry_run?: unknown }).dry_run
  if (d !== undefined && typeof d !== 'boolean') throw new HttpError('HUB_CULL_BAD_BODY', 'dry_run must be true or false')
  return d === true
}

export function cullerRouter(ctx: HubContext, culler: Culler): Router {
  const r = Router()
  // The API router has usually identified the caller already; identify only if not.
  const identify = identifyApi(ctx)
  r.use('/cull', (req, res, next) => res.locals.identity ? next() : identify(req, res, next))

  r.get('/cull/events', async (req, res) => {
    needScope(res, SCOPE)
    const events = await listEvents(ctx.db, { limit: parseLimit(req.query.limit), before: parseBefore(req.query.before) })
    res.json({ events: events.map(eventModel) })
  })

  r.post('/cull', body, async (req, res) => {
    needScope(res, SCOPE)
    const dryRun = parseDryRun(req.body)
    // A CullerError (no fresh activity, shutting down) is a 503 at the edge: try again.
    if (dryRun) {
      const candidates = await culler.preview()
      res.json({ dry_run: true, servers: candidates.map(c => ({ user: c.userName, server: c.serverName, admin: c.admin, idle_seconds: c.idleSeconds, age_seconds: c.ageSeconds, rule: c.rule })) })
    } else {
      res.json(reportModel(await culler.sweep({ by: 'api' })))
    }
  })

  return r
}
