import { sql } from 'kysely'
import { perDatabase, runPrepared, type Db, type ServerState } from '../db.js'
import { TurnBatch } from '../turn-batch.js'

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
/** What a starting server authenticates with: its API token (as stored) and its OAuth client, whose secret is that token. */
export interface ServerCredentials {
  readonly tokenPrefix: string
  readonly tokenHash: string
  readonly scopes: readonly string[]
  readonly clientId: string
  readonly redirectUri: string
  /** The token's note and the client's description. */
  readonly note: string
}

/**
 * stopped (or absent) -> pending, with the server's API token and OAuth client written in the same
 * statement: one round trip per spawn instead of three (user look-up, claim, credentials). Nothing
 * is written when the server is already pending or running, or (`userId` unknown) when no user
 * has `userName`; both answer undefined, and the caller looks up which. An OAuth client left
 * behind by a crashed hub is taken over (upsert) rather than blocking the spawn.
 */
export async function claimForSpawn(db: Db, args: { userId?: string; userName: string; name: string; owner: string; spawnerKind: string; userOptions: Record<string, unknown>; credentials: ServerCredentials }): Promise<ServerRecord | undefined> {
  const c = args.credentials
  const user = args.userId === undefined ? sql`select id from users where name = ${args.userName}` : sql`select ${args.userId}::bigint as id`
  const query = sql<Omit<ServerRow, 'user_name'>>`with u as (${user}),
  claim as (
    insert into servers (user_id, name, state, owner, spawner_kind, user_options, started, last_error, spawner_state)
    select u.id, ${args.name}::text, 'pending', ${args.owner}::text, ${args.spawnerKind}::text, ${JSON.stringify(args.userOptions)}::jsonb, now(), null, '{}'::jsonb from u
    on conflict (user_id, name) do update set state = 'pending', owner = excluded.owner, spawner_kind = excluded.spawner_kind,
      user_options = excluded.user_options, started = now(), last_error = null, spawner_state = '{}'::jsonb, url = null, updated = now()
    where servers.state = 'stopped'
    returning id, user_id, name, state, spawner_kind, spawner_state, url, user_options, started, last_activity, last_error),
  tok as (
    insert into api_tokens (prefix, hash, kind, user_id, server_id, scopes, note)
    select ${c.tokenPrefix}::text, ${c.tokenHash}::text, 'server', claim.user_id, claim.id, ${[...c.scopes]}::text[], ${c.note}::text from claim),
  client as (
    insert into oauth_clients (id, secret_hash, redirect_uri, description, server_id)
    select ${c.clientId}::text, ${c.tokenHash}::text, ${c.redirectUri}::text, ${c.note}::text, claim.id from claim
    on conflict (id) do update set secret_hash = excluded.secret_hash, redirect_uri = excluded.redirect_uri,
      description = excluded.description, server_id = excluded.server_id)
select * from claim`.compile(db)
  const [row] = await runPrepared(db, query)
  return row && toServer({ ...row, user_name: args.userName })
}

export async function saveSpawnerState(db: Db, id: string, state: Record<string, unknown>): Promise<void> {
  await db.updateTable('servers').set({ spawner_state: JSON.stringify(state), updated: sql`now()` }).where('id', '=', id).execute()
}

// `owner` guard: a spawn failed by another hub (its owner looked dead) and claimed again since is
// not this spawn's to finish.
const MARK_RUNNING = `update servers s set state = 'running', url = v.url, spawner_state = v.state, last_activity = now(), updated = now()
from (select unnest($1::bigint[]) as id, unnest($2::text[]) as url, unnest($3::jsonb[]) as state, unnest($4::text[]) as owner) v
where s.id = v.id and s.state = 'pending' and s.owner = v.owner returning s.id::text as id`

/** Servers that became ready in the same turn of the event loop are marked in one statement (turn-batch.ts). */
const markRunningBatch = perDatabase(db => new TurnBatch<true, { url: string; state: string; owner: string }>(async (ids, inputOf) => {
  const rows = await runPrepared<{ id: string }>(db, { sql: MARK_RUNNING, parameters: [ids, ids.map(i => inputOf(i).url), ids.map(i => inputOf(i).state), ids.map(i => inputOf(i).owner)] })
  return new Map(rows.map(r => [r.id, true as const]))
}))

/** pending -> running with its URL and spawner state; false if the server was no longer pending under `owner` (stopped while starting). */
export async function markRunning(db: Db, id: string, url: string, state: Record<string, unknown>, owner: string): Promise<boolean> {
  return await markRunningBatch(db).load(id, { url, state: JSON.stringify(state), owner }) === true
}

/** running -> stopping; returns false if the server was not running. */
export async function claimForStop(db: Db, id: string, owner: string): Promise<boolean> {
  const res = await db.updateTable('servers').set({ state: 'stopping', owner, updated: sql`now()` })
    .where('id', '=', id).where('state', '=', 'running').executeTakeFirst()
  return Number(res.numUpdatedRows) === 1
}

/**
 * Back to stopped, dropping the server's credentials in the same statement. With `ifOwned`, only
 * while the row is still in one of its states under its owner: the end of a spawn or stop in
 * flight, which another hub may have finished already (its owner looked dead, owner-sweep.ts) and
 * someone may have claimed again since. Returns whether the row moved; credentials go only then.
 */
export async function markStopped(db: Db, id: string, lastError: string | null = null,
  ifOwned?: { readonly owner: string | null; readonly states: readonly ServerState[] }): Promise<boolean> {
  // One statement (atomic on its own): the server's OAuth client (and with it every token issued
  // through it) and its own API token go in the same breath as the state change.
  const guard = ifOwned ? sql`and owner is not distinct from ${ifOwned.owner}::text and state = any(${[...ifOwned.states]}::text[])` : sql``
  const { rows } = await sql<{ id: string }>`with s as (
      update servers set state = 'stopped', url = null, owner = null, spawner_state = '{}', last_error = ${lastError}, updated = now()
      where id = ${id} ${guard} returning id),
    c as (delete from oauth_clients where server_id in (select id from s)),
    t as (delete from api_tokens where server_id in (select id from s))
    select id::text as id from s`.execute(db)
  return rows.length === 1
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

export interface InFlightServer {
  readonly server: ServerRecord
  /** The hub that owns the spawn or stop (null: a row from before owners were recorded). */
  readonly owner: string | null
}

/**
 * Spawns and stops in flight that other hubs own, claimed at least `graceMs` ago (a hub claims
 * its first spawns a moment before its owner lock is taken). Served by servers_active_idx.
 */
export async function listInFlight(db: Db, notOwner: string, graceMs: number): Promise<InFlightServer[]> {
  const rows = await selectServers(db).select('servers.owner')
    .where('servers.state', 'in', ['pending', 'stopping']).where(eb => eb.or([eb('servers.owner', 'is', null), eb('servers.owner', '<>', notOwner)]))
    .where('servers.updated', '<', sql<Date>`now() - make_interval(secs => ${graceMs / 1000})`)
    .orderBy('servers.id').execute()
  return rows.map(r => ({ server: toServer(r as ServerRow), owner: r.owner }))
}

/**
 * The second int4 keys of the advisory locks any session holds now in `space` (a two-int4 key
 * shows in pg_locks as classid = first key, objid = second key as an unsigned oid, objsubid = 2).
 */
export async function heldLockKeys(db: Db, space: number): Promise<Set<number>> {
  const { rows } = await sql<{ k: string }>`select objid::text as k from pg_locks
    where locktype = 'advisory' and granted and objsubid = 2 and classid = ${space}::bigint::oid`.execute(db)
  return new Set(rows.map(r => Number(r.k) | 0))
}

/** The names of the user's named servers (every server but the default one). */
export async function listNamedServerNames(db: Db, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('servers').select('name').where('user_id', '=', userId).where('name', '<>', '').execute()
  return rows.map(r => r.name)
}

/** Remove a server's row if it is stopped (a named server deleted through the API); a server started again meanwhile stays. */
export async function deleteStoppedServer(db: Db, id: string): Promise<void> {
  await db.deleteFrom('servers').where('id', '=', id).where('state', '=', 'stopped').execute()
}
