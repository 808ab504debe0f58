/**
 * The culler's SQL. Idle servers come from ONE query on `servers` that the partial index
 * `servers_active_idx (state, last_activity) where state <> 'stopped'` serves: it reads only
 * active rows, never the users table as a whole (users are joined by primary key).
 * All times are compared with the database clock (`now()`), never the hub's.
 */
import { sql } from 'kysely'
import type { Db } from '../db.js'
import type { ServerRecord } from '../servers/server.repository.js'

/** The culler's own table (migration 0006), typed here so db.ts stays the lead's. */
export interface CullEventsTable {
  id: import('kysely').Generated<string>
  at: import('kysely').ColumnType<Date, Date | string | undefined, never>
  user_name: string
  server_name: string | null
  idle_seconds: number
  rule: CullRule
  action: CullAction
  detail: string | null
  dry_run: boolean
  by: CullBy
}

export type CullRule = 'idle' | 'max-age'
export type CullAction = 'stopped' | 'user-deleted' | 'skipped'
export type CullBy = 'hub' | 'api'

export type CullDb = ReturnType<typeof withCullEvents>
export const withCullEvents = (db: Db) => db.withTables<{ cull_events: CullEventsTable }>()

/** What the culler matches on; seconds. */
export interface CullRules {
  readonly timeout: number
  /** 0 = no maximum age. */
  readonly maxAge: number
  readonly cullAdminUsers: boolean
}

/** A running server the rules say should go. */
export interface Candidate {
  readonly serverId: string
  readonly userId: string
  readonly userName: string
  readonly serverName: string
  readonly admin: boolean
  /** Seconds since the latest of the server's activity and its start. */
  readonly idleSeconds: number
  readonly ageSeconds: number
  readonly rule: CullRule
}

const secs = (n: number) => sql`make_interval(secs => ${n})`

/** Idle for longer than the timeout (by the later of last activity and start), or older than max-age. */
function isIdle(rules: CullRules) {
  return sql<boolean>`coalesce(s.last_activity, s.started) < now() - ${secs(rules.timeout)}`
}
function isOverAge(rules: CullRules) {
  return rules.maxAge > 0 ? sql<boolean>`s.started < now() - ${secs(rules.maxAge)}` : sql<boolean>`false`
}

/** The idle-server query (exported so a test can EXPLAIN it). */
export function candidatesQuery(rules: CullRules, limit: number) {
  return sql<{
    id: string; user_id: string; user_name: string; name: string; admin: boolean; idle_seconds: number; age_seconds: number; idle: boolean
  }>`select s.id, s.user_id, u.name as user_name, s.name, u.admin,
        floor(extract(epoch from now() - coalesce(s.last_activity, s.started)))::int as idle_seconds,
        floor(extract(epoch from now() - s.started))::int as age_seconds,
        ${isIdle(rules)} as idle
      from servers s join users u on u.id = s.user_id
      -- the first condition is the partial index's predicate, so the planner can always use it
      where s.state <> 'stopped' and s.state = 'running'
        and (${isIdle(rules)} or ${isOverAge(rules)})
        ${rules.cullAdminUsers ? sql`` : sql`and not u.admin`}
      order by coalesce(s.last_activity, s.started), s.id
      limit ${limit}`
}

/** The most idle first, at most `limit`. */
export async function findCandidates(db: Db, rules: CullRules, limit: number): Promise<Candidate[]> {
  const { rows } = await candidatesQuery(rules, limit).execute(db)
  return rows.map(r => ({
    serverId: r.id, userId: r.user_id, userName: r.user_name, serverName: r.name, admin: r.admin,
    idleSeconds: r.idle_seconds ?? 0, ageSeconds: r.age_seconds ?? 0, rule: r.idle ? 'idle' : 'max-age',
  }))
}

export type Recheck =
  | { readonly cull: true; readonly server: ServerRecord; readonly rule: CullRule; readonly idleSeconds: number }
  | { readonly cull: false; readonly reason: 'active again' | 'no longer running' }

/**
 * Read the server again right before stopping it: activity that arrived after the selection
 * (flushed just before this call) wins, and the server is left alone.
 */
export async function recheck(db: Db, serverId: string, rules: CullRules): Promise<Recheck> {
  const { rows } = await sql<{
    id: string; user_id: string; user_name: string; name: string; state: ServerRecord['state']; spawner_kind: string | null
    spawner_state: Record<string, unknown>; url: string | null; user_options: Record<string, unknown> | null
    started: Date | null; last_activity: Date | null; last_error: string | null; idle: boolean | null; over_age: boolean | null; idle_seconds: number | null
  }>`select s.id, s.user_id, u.name as user_name, s.name, s.state, s.spawner_kind, s.spawner_state, s.url, s.user_options,
        s.started, s.last_activity, s.last_error, ${isIdle(rules)} as idle, ${isOverAge(rules)} as over_age,
        floor(extract(epoch from now() - coalesce(s.last_activity, s.started)))::int as idle_seconds
      from servers s join users u on u.id = s.user_id where s.id = ${serverId}`.execute(db)
  const r = rows[0]
  if (!r || r.state !== 'running') return { cull: false, reason: 'no longer running' }
  if (!r.idle && !r.over_age) return { cull: false, reason: 'active again' }
  const server: ServerRecord = {
    id: r.id, userId: r.user_id, userName: r.user_name, name: r.name, state: r.state, spawnerKind: r.spawner_kind,
    spawnerState: r.spawner_state ?? {}, url: r.url, userOptions: r.user_options, started: r.started,
    lastActivity: r.last_activity, lastError: r.last_error,
  }
  return { cull: true, server, rule: r.idle ? 'idle' : 'max-age', idleSeconds: r.idle_seconds ?? 0 }
}

/**
 * Delete the user if nothing keeps them: not an admin, no active server left, and inactive past
 * the timeout. One conditional statement, so a user who just came back is kept.
 */
export async function deleteIdleUser(db: Db, userId: string, timeout: number): Promise<{ name: string; idleSeconds: number } | undefined> {
  const { rows } = await sql<{ name: string; idle_seconds: number }>`delete from users u
      where u.id = ${userId} and not u.admin
        and coalesce(u.last_activity, u.created) < now() - ${secs(timeout)}
        and not exists (select 1 from servers s where s.user_id = u.id and s.state <> 'stopped')
      returning u.name, floor(extract(epoch from now() - coalesce(u.last_activity, u.created)))::int as idle_seconds`.execute(db)
  return rows[0] && { name: rows[0].name, idleSeconds: rows[0].idle_seconds ?? 0 }
}

/** Remove a stopped named server's row (JupyterHub's `{"remove": true}`); the default server stays. */
export async function removeNamedServer(db: Db, serverId: string): Promise<boolean> {
  const res = await db.deleteFrom('servers').where('id', '=', serverId).where('name', '<>', '').where('state', '=', 'stopped').executeTakeFirst()
  return Number(res.numDeletedRows) === 1
}

export interface CullEventRow {
  readonly userName: string
  readonly serverName: string | null
  readonly idleSeconds: number
  readonly rule: CullRule
  readonly action: CullAction
  readonly detail?: string
}

/** One INSERT for many events (order kept: ids ascend in decision order). */
export async function recordEvents(db: Db, events: readonly CullEventRow[], o: { dryRun: boolean; by: CullBy }): Promise<void> {
  if (events.length === 0) return
  await withCullEvents(db).insertInto('cull_events').values(events.map(e => ({
    user_name: e.userName, server_name: e.serverName, idle_seconds: Math.max(0, Math.round(e.idleSeconds)), rule: e.rule,
    action: e.action, detail: e.detail ?? null, dry_run: o.dryRun, by: o.by,
  }))).execute()
}

export interface CullEvent {
  readonly id: string
  readonly at: Date
  readonly userName: string
  readonly serverName: string | null
  readonly idleSeconds: number
  readonly rule: CullRule
  readonly action: CullAction
  readonly detail: string | null
  readonly dryRun: boolean
  readonly by: CullBy
}

/** Newest first; `before` pages back by id. */
export async function listEvents(db: Db, o: { limit: number; before?: string }): Promise<CullEvent[]> {
  let q = withCullEvents(db).selectFrom('cull_events').selectAll().orderBy('id', 'desc').limit(o.limit)
  if (o.before !== undefined) q = q.where('id', '<', o.before)
  const rows = await q.execute()
  return rows.map(r => ({
    id: r.id, at: r.at, userName: r.user_name, serverName: r.server_name, idleSeconds: r.idle_seconds, rule: r.rule,
    action: r.action, detail: r.detail, dryRun: r.dry_run, by: r.by,
  }))
}

/** Keep the log bounded: drop events older than `days`. */
export async function pruneEvents(db: Db, days: number): Promise<number> {
  const res = await withCullEvents(db).deleteFrom('cull_events').where('at', '<', sql<Date>`now() - ${sql`make_interval(days => ${days})`}`).executeTakeFirst()
  return Number(res.numDeletedRows)
}
