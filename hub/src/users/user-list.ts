/**
 * The user listing behind GET /hub/api/users and the admin page: every filter, the sort and the
 * paging run in SQL, so a page of 50 out of 50,000 users reads about 50 rows (plus their servers
 * and groups in two more indexed queries). `state=ready` is exact (JupyterHub filters it after
 * paging, so its pages come back short).
 */
import { sql, type Expression, type SqlBool } from 'kysely'
import type { Db } from '../db.js'
import { toUser, type User } from './user.repository.js'

export type UserStateFilter = 'active' | 'ready' | 'inactive'
export type UserSort = 'id' | 'name' | 'last_activity'

export interface UserListQuery {
  readonly offset: number
  readonly limit: number
  readonly state?: UserStateFilter
  /** Case-insensitive substring of the name. */
  readonly nameFilter?: string
  readonly sort?: UserSort
  readonly descending?: boolean
  /** Visibility from the caller's `list:users` filters: all, or these names / group members. */
  readonly visible: 'all' | { readonly users: readonly string[]; readonly groups: readonly string[] }
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, c => `\\${c}`)
}

export async function listUsers(db: Db, q: UserListQuery): Promise<{ users: User[]; total: number }> {
  let base = db.selectFrom('users')
  if (q.visible !== 'all') {
    const { users, groups } = q.visible
    if (users.length === 0 && groups.length === 0) return { users: [], total: 0 }
    base = base.where(eb => eb.or([
      ...(users.length > 0 ? [eb('users.name', 'in', [...users])] : []),
      ...(groups.length > 0 ? [eb.exists(eb.selectFrom('group_members').innerJoin('groups', 'groups.id', 'group_members.group_id')
        .select(sql`1`.as('x')).whereRef('group_members.user_id', '=', 'users.id').where('groups.name', 'in', [...groups]))] : []),
    ]))
  }
  if (q.nameFilter) base = base.where(sql<SqlBool>`users.name ilike ${`%${escapeLike(q.nameFilter)}%`}`)
  if (q.state) {
    const cond: Expression<SqlBool> = q.state === 'ready'
      ? sql<SqlBool>`exists (select 1 from servers s where s.user_id = users.id and s.state = 'running')`
      : sql<SqlBool>`exists (select 1 from servers s where s.user_id = users.id and s.state <> 'stopped')`
    base = base.where(q.state === 'inactive' ? sql<SqlBool>`not ${cond}` : cond)
  }
  const dir = q.descending ? 'desc' : 'asc'
  let page = base.select(['users.id', 'users.name', 'users.admin', 'users.created', 'users.last_activity'])
  if (q.sort === 'name') page = page.orderBy('users.name', dir)
  else if (q.sort === 'last_activity') page = page.orderBy(sql`users.last_activity ${sql.raw(dir)} nulls last`).orderBy('users.id', dir)
  else page = page.orderBy('users.id', dir)
  const [rows, count] = await Promise.all([
    page.offset(q.offset).limit(q.limit).execute(),
    base.select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow(),
  ])
  return { users: rows.map(toUser), total: Number(count.n) }
}
