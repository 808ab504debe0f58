/**
 * The hot reads behind `GET /hub/api/users/<name>` and `POST /hub/api/users/<name>/activity`:
 * one round trip each, as named statements (prepared once per connection). Three queries per
 * user read cost a third of the hub's CPU in socket writes alone under load (see
 * bench-results/README.md, hub API round 1).
 */
import { runPrepared, type Db } from '../db.js'
import { toServer, type ServerRecord, type ServerRow } from '../servers/server.repository.js'
import { toUser, type User } from './user.repository.js'

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
const USER_WITH_PARTS = userWithParts('u.name = $1')
const USER_WITH_PARTS_BY_ID = userWithParts('u.id = $1')

type JsonServer = Omit<ServerRow, 'user_name' | 'started' | 'last_activity'> & { started: string | null; last_activity: string | null }

/** A row with the user's columns plus `servers` (json) and `groups` (text[]). */
export type UserPartsRow = Parameters<typeof toUser>[0] & { servers: JsonServer[]; groups: string[] }

const date = (s: string | null) => s === null ? null : new Date(s)

export function toUserWithParts(r: UserPartsRow): UserWithParts {
  const servers = r.servers.map(s => toServer({ ...s, user_name: r.name, started: date(s.started), last_activity: date(s.last_activity) }))
  return { user: toUser(r), servers, groups: r.groups }
}

async function oneUserWithParts(db: Db, sql: string, key: string): Promise<UserWithParts | undefined> {
  const [r] = await runPrepared<UserPartsRow>(db, { sql, parameters: [key] })
  return r && toUserWithParts(r)
}

/** A user, all their servers (by name) and their groups (by name), or undefined. */
export function findUserWithParts(db: Db, name: string): Promise<UserWithParts | undefined> {
  return oneUserWithParts(db, USER_WITH_PARTS, name)
}

/** The same by id (GET /hub/api/user: every single-user server's token check). */
export function findUserWithPartsById(db: Db, id: string): Promise<UserWithParts | undefined> {
  return oneUserWithParts(db, USER_WITH_PARTS_BY_ID, id)
}

const USER_AND_SERVER_IDS = `
select u.id, coalesce(json_object_agg(s.name, s.id::text) filter (where s.id is not null), '{}'::json) as servers
from users u left join servers s on s.user_id = u.id
where u.name = $1 group by u.id`

/** The user's id and the ids of all their servers (name -> id), or undefined. */
export async function findUserAndServerIds(db: Db, name: string): Promise<{ userId: string; servers: Map<string, string> } | undefined> {
  const [r] = await runPrepared<{ id: string; servers: Record<string, string> }>(db, { sql: USER_AND_SERVER_IDS, parameters: [name] })
  return r && { userId: r.id, servers: new Map(Object.entries(r.servers)) }
}
