/** Validation of an activity report body (contract §7.12), with JupyterHub's exact messages. */
import { HttpError } from '../errors.js'

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
