import { sql } from 'kysely'
import type { Db, ServerState } from '../db.js'

export interface ServerRecord {
  readonly id: string
  readonly userId: string
  readonly userName: string
  readonly name: string
  readonly state: ServerState
  readonly spawnerKind: string | null
  readonly spawnerState: Record<string, unknown>
  readonly url: string | null
  readonly userOptions: Record<string, unknown> | null
  readonly started: Date | null
  readonly lastActivity: Date | null
  readonly lastError: string | null
}

export type ServerRow = {
  id: string; user_id: string; user_name: string; name: string; state: ServerState; spawner_kind: string | null
  spawner_state: Record<string, unknown>; url: string | null; user_options: Record<string, unknown> | null
  started: Date | null; last_activity: Date | null; last_error: string | null
}

export const toServer = (r: ServerRow): ServerRecord => ({
  id: r.id, userId: r.user_id, userName: r.user_name, name: r.name, state: r.state, spawnerKind: r.spawner_kind,
  spawnerState: r.spawner_state ?? {}, url: r.url, userOptions: r.user_options, started: r.started,
  lastActivity: r.last_activity, lastError: r.last_error,
})

function selectServers(db: Db) {
  return db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
    .select(['servers.id', 'servers.user_id', 'users.name as user_name', 'servers.name', 'servers.state', 'servers.spawner_kind',
      'servers.spawner_state', 'servers.url', 'servers.user_options', 'servers.started', 'servers.last_activity', 'servers.last_error'])
}

export async function findServer(db: Db, userId: string, name: string): Promise<ServerRecord | undefined> {
  const row = await selectServers(db).where('servers.user_id', '=', userId).where('servers.name', '=', name).executeTakeFirst()
  return row && toServer(row as ServerRow)
}

export async function findServerById(db: Db, id: string): Promise<ServerRecord | undefined> {
  const row = await selectServers(db).where('servers.id', '=', id).executeTakeFirst()
  return row && toServer(row as ServerRow)
}

/** Every server that is not stopped (served by the partial index servers_active_idx). */
export async function listActiveServers(db: Db): Promise<ServerRecord[]> {
  const rows = await selectServers(db).where('servers.state', '<>', 'stopped').orderBy('servers.id').execute()
  return rows.map(r => toServer(r as ServerRow))
}

export async function listUserServers(db: Db, userId: string): Promise<ServerRecord[]> {
  const rows = await selectServers(db).where('servers.user_id', '=', userId).orderBy('servers.name').execute()
  return rows.map(r => toServer(r as ServerRow))
}

/**
 * Claim a stopped (or new) server for spawning, atomically: returns the row when this call moved
 * it to `pending`, undefined when it was already pending, running or stopping. Two requests (or
 * two hub replicas) racing to spawn the same server cannot both win.
 */
export async function claimForSpawn(db: Db, args: { userId: string; userName: string; name: string; owner: string; spawnerKind: string; userOptions: Record<string, unknown> }): Promise<ServerRecord | undefined> {
  const options = JSON.stringify(args.userOptions)
  const row = await db.insertInto('servers')
    .values({ user_id: args.userId, name: args.name, state: 'pending', owner: args.owner, spawner_kind: args.spawnerKind,
      user_options: options, started: sql`now()`, last_error: null, spawner_state: '{}' })
    .onConflict(oc => oc.columns(['user_id', 'name']).doUpdateSet({
      state: 'pending', owner: args.owner, spawner_kind: args.spawnerKind, user_options: options, started: sql`now()`,
      last_error: null, spawner_state: '{}', url: null, updated: sql`now()`,
    }).where('servers.state', '=', 'stopped'))
    .returning(['id', 'user_id', 'name', 'state', 'spawner_kind', 'spawner_state', 'url', 'user_options', 'started', 'last_activity', 'last_error'])
    .executeTakeFirst()
  // one round trip: the row as written, with the user name we already know
  return row && toServer({ ...row, user_name: args.userName } as ServerRow)
}

export async function saveSpawnerState(db: Db, id: string, state: Record<string, unknown>): Promise<void> {
  await db.updateTable('servers').set({ spawner_state: JSON.stringify(state), updated: sql`now()` }).where('id', '=', id).execute()
}

export async function markRunning(db: Db, id: string, url: string, state: Record<string, unknown>): Promise<boolean> {
  const res = await db.updateTable('servers')
    .set({ state: 'running', url, spawner_state: JSON.stringify(state), last_activity: sql`now()`, updated: sql`now()` })
    .where('id', '=', id).where('state', '=', 'pending').executeTakeFirst()
  return Number(res.numUpdatedRows) === 1
}

/** running -> stopping; returns false if the server was not running. */
export async function claimForStop(db: Db, id: string, owner: string): Promise<boolean> {
  const res = await db.updateTable('servers').set({ state: 'stopping', owner, updated: sql`now()` })
    .where('id', '=', id).where('state', '=', 'running').executeTakeFirst()
  return Number(res.numUpdatedRows) === 1
}

/** Back to stopped, dropping the server's credentials in the same transaction. */
export async function markStopped(db: Db, id: string, lastError: string | null = null): Promise<void> {
  // One statement (atomic on its own): the server's OAuth client (and with it every token issued
  // through it) and its own API token go in the same breath as the state change.
  await sql`with c as (delete from oauth_clients where server_id = ${id}), t as (delete from api_tokens where server_id = ${id})
    update servers set state = 'stopped', url = null, owner = null, spawner_state = '{}', last_error = ${lastError}, updated = now()
    where id = ${id}`.execute(db)
}

/** The servers of many users at once (one indexed query), grouped by user id. */
export async function listServersOfUsers(db: Db, userIds: readonly string[]): Promise<Map<string, ServerRecord[]>> {
  const out = new Map<string, ServerRecord[]>()
  if (userIds.length === 0) return out
  const rows = await selectServers(db).where('servers.user_id', 'in', [...userIds]).orderBy('servers.name').execute()
  for (const r of rows) {
    const s = toServer(r as ServerRow)
    const list = out.get(s.userId)
    if (list) list.push(s)
    else out.set(s.userId, [s])
  }
  return out
}
