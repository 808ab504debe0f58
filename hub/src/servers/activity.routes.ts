/**
 * POST /hub/api/users/:name/activity (contract §7.12): every server's activity reports, the
 * hottest route of the API. The body is checked with JupyterHub's exact messages; the times go
 * to the activity buffer (activity.ts), which writes them in batches.
 */
import { Router } from 'express'
import type { HubContext } from '../context.js'
import { HttpError, userNotFound } from '../errors.js'
import { jsonBody } from '../api/body.js'
import { needScope } from '../api/guards.js'

const FUTURE_LIMIT_MS = 59 * 60 * 1000

function parseTime(value: unknown): Date {
  const t = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? new Date(value.endsWith('Z') || /[+-]\d{2}:?\d{2}$/.test(value) ? value : `${value}Z`) : new Date(NaN)
  if (Number.isNaN(t.getTime())) throw new HttpError('HUB_BAD_TIMESTAMP', `Not a valid timestamp: '${String(value)}'`)
  if (t.getTime() > Date.now() + FUTURE_LIMIT_MS) throw new HttpError('HUB_FUTURE_TIMESTAMP', `Rejecting activity from more than an hour in the future: ${t.toISOString()}`)
  return t
}

export interface ActivityReport {
  readonly lastActivity: Date | undefined
  readonly servers: ReadonlyMap<string, Date>
}

export function parseActivity(body: unknown): ActivityReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError('HUB_BAD_REQUEST', 'body must be a json dict')
  const b = body as Record<string, unknown>
  if (b.last_activity === undefined && b.servers === undefined) throw new HttpError('HUB_BAD_REQUEST', 'body must contain at least one of `last_activity` or `servers`')
  const lastActivity = b.last_activity === undefined ? undefined : parseTime(b.last_activity)
  const servers = new Map<string, Date>()
  if (b.servers !== undefined) {
    const shape = 'servers must be a dict of the form {server_name: {last_activity: timestamp}}'
    if (typeof b.servers !== 'object' || b.servers === null || Array.isArray(b.servers)) throw new HttpError('HUB_BAD_REQUEST', shape)
    for (const [name, entry] of Object.entries(b.servers as Record<string, unknown>)) {
      if (typeof entry !== 'object' || entry === null || !('last_activity' in entry)) throw new HttpError('HUB_BAD_REQUEST', shape)
      servers.set(name, parseTime((entry as Record<string, unknown>).last_activity))
    }
  }
  return { lastActivity, servers }
}

export function activityRouter(ctx: HubContext): Router {
  const r = Router()
  r.post('/users/:name/activity', jsonBody, async (req, res) => {
    const name = req.params.name as string
    needScope(res, ['users:activity'], { user: name })
    let report: ReturnType<typeof parseActivity>
    try {
      report = parseActivity(req.body)
    } catch (err) {
      // an unknown user is a 404 before the body is judged, as JupyterHub answers
      if (!await ctx.activity.target(name)) throw userNotFound(name)
      throw err
    }
    // the user's id and the ids of the servers named in the report: cached, else one round trip
    const found = await ctx.activity.target(name, report.servers.keys())
    if (!found) throw userNotFound(name)
    for (const serverName of report.servers.keys()) {
      if (!found.servers.has(serverName)) throw new HttpError('HUB_BAD_REQUEST', `No such server '${serverName}' for user ${name}`)
    }
    if (report.lastActivity) ctx.activity.recordUser(found.userId, report.lastActivity)
    for (const [serverName, at] of report.servers) {
      ctx.activity.recordServer(found.servers.get(serverName)!, at)
      ctx.activity.recordUser(found.userId, at)
    }
    res.status(200).type('json').end()
  })
  return r
}
