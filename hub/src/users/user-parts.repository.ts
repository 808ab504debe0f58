/**
 * The hot reads behind `GET /hub/api/users/<name>` and `POST /hub/api/users/<name>/activity`:
 * one round trip each, as named statements (prepared once per connection). Three queries per
 * user read cost a third of the hub's CPU in socket writes alone under load (see
 * bench-results/README.md, hub API round 1).
 */
import { perDatabase, runPrepared, type Db } from '../db.js'
import { toServer, type ServerRecord, type ServerRow } from '../servers/server.repository.js'
import { toUser, type User } from './user.repository.js'
import { TurnBatch } from '../turn-batch.js'

export interface UserWithParts {
  readonly user: User
  readonly servers: readonly ServerRecord[]
  readonly groups: readonly string[]
}

/** A user's servers as a json array (by name) and groups as a text[] (by name), for a row `u` of users. */
export const SERVER_JSON_AGG = `json_agg(json_build_object(
      'id', s.id::text, 'user_id', s.user_id::text, 'name', s.name, 'state', s.state, 'spawner_kind', s.spawner_kind,
      'spawner_state', s.spawner_state, 'url', s.url, 'user_options', s.user_options, 'started', s.started,
      'last_activity', s.last_activity, 'last_error', s.last_error) order by s.name)`
const SERVERS_JSON = `coalesce((select ${SERVER_JSON_AGG} from servers s where s.user_id = u.id), '[]'::json)`
const GROUP_NAMES = `coalesce((select array_agg(g.name order by g.name) from group_members m join groups g on g.id = m.group_id
    where m.user_id = u.id), '{}'::text[])`

const userWithParts = (where: string) => `select u.id, u.name, u.admin, u.created, u.last_activity, ${SERVERS_JSON} as servers,
  ${GROUP_NAMES} as groups from users u where ${where}`
const USERS_WITH_PARTS_BY_NAME = userWithParts('u.name = any($1::text[])')
const USERS_WITH_PARTS_BY_ID = userWithParts('u.id = any($1::bigint[])')

type JsonServer = Omit<ServerRow, 'user_name' | 'started' | 'last_activity'> & { started: string | null; last_activity: string | null }

/** A row with the user's columns plus `servers` (json) and `groups` (text[]). */
export type UserPartsRow = Parameters<typeof toUser>[0] & { servers: JsonServer[]; groups: string[] }

const date = (s: string | null) => s === null ? null : new Date(s)

export function toUserWithParts(r: UserPartsRow): UserWithParts {
  const servers = r.servers.map(s => toServer({ ...s, user_name: r.name, started: date(s.started), last_activity: date(s.last_activity) }))
  return { user: toUser(r), servers, groups: r.groups }
}

/** One statement for the users asked for in the same turn of the event loop (turn-batch.ts), per database. */
const batchesOf = perDatabase(db => {
  // A key Postgres would refuse (a NUL byte in a name from the URL; an id that is not a number)
  // matches no user: it must not fail the statement that answers the other requests with it.
  const batch = <R, V>(sql: string, valid: (k: string) => boolean, entry: (r: R) => [string, V]) => new TurnBatch<V>(async keys => {
    const wanted = keys.filter(valid)
    const rows = wanted.length === 0 ? [] : await runPrepared<R>(db, { sql, parameters: [wanted] })
    return new Map(rows.map(entry))
  })
  const isName = (k: string) => !k.includes('\0')
  return {
    byName: batch<UserPartsRow, UserWithParts>(USERS_WITH_PARTS_BY_NAME, isName, r => [r.name, toUserWithParts(r)]),
    byId: batch<UserPartsRow, UserWithParts>(USERS_WITH_PARTS_BY_ID, k => /^\d{1,18}$/.test(k), r => [String(r.id), toUserWithParts(r)]),
    ids: batch<{ id: string; name: string; servers: Record<string, string> }, UserAndServerIds>(USERS_AND_SERVER_IDS, isName,
      r => [r.name, { userId: r.id, servers: new Map(Object.entries(r.servers)) }]),
  }
})

/** A user, all their servers (by name) and their groups (by name), or undefined. */
export function findUserWithParts(db: Db, name: string): Promise<UserWithParts | undefined> {
  return batchesOf(db).byName.load(name)
}

/** The same by id (GET /hub/api/user: every single-user server's token check). */
export function findUserWithPartsById(db: Db, id: string): Promise<UserWithParts | undefined> {
  return batchesOf(db).byId.load(id)
}

const USERS_AND_SERVER_IDS = `
select u.id, u.name, coalesce(json_object_agg(s.name, s.id::text) filter (where s.id is not null), '{}'::json) as servers
from users u left join servers s on s.user_id = u.id
where u.name = any($1::text[]) group by u.id`

export interface UserAndServerIds { readonly userId: string; readonly servers: Map<string, string> }

/** The user's id and the ids of all their servers (name -> id), or undefined (batched per turn, as the reads above). */
export function findUserAndServerIds(db: Db, name: string): Promise<UserAndServerIds | undefined> {
  return batchesOf(db).ids.load(name)
}
