/**
 * The user listing behind GET /hub/api/users and the admin page: every filter, the sort and the
 * paging run in SQL, so a page of 50 out of 50,000 users reads about 50 rows, each with its servers
 * and groups (correlated, indexed subqueries), plus one count. `state=ready` is exact (JupyterHub
 * filters it after paging, so its pages come back short).
 */
import { sql, type Expression, type SqlBool } from 'kysely'
import type { Db } from '../db.js'
import { GROUP_NAMES, SERVERS_JSON, toUserWithParts, type UserPartsRow, type UserWithParts } from './user-parts.repository.js'

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

export async function listUsers(db: Db, q: UserListQuery): Promise<{ users: UserWithParts[]; total: number }> {
  let base = db.selectFrom('users as u')
  if (q.visible !== 'all') {
    const { users, groups } = q.visible
    if (users.length === 0 && groups.length === 0) return { users: [], total: 0 }
    base = base.where(eb => eb.or([
      ...(users.length > 0 ? [eb('u.name', 'in', [...users])] : []),
      ...(groups.length > 0 ? [eb.exists(eb.selectFrom('group_members').innerJoin('groups', 'groups.id', 'group_members.group_id')
        .select(sql`1`.as('x')).whereRef('group_members.user_id', '=', 'u.id').where('groups.name', 'in', [...groups]))] : []),
    ]))
  }
  if (q.nameFilter) base = base.where(sql<SqlBool>`u.name ilike ${`%${escapeLike(q.nameFilter)}%`}`)
  if (q.state) {
    const cond: Expression<SqlBool> = q.state === 'ready'
      ? sql<SqlBool>`exists (select 1 from servers s where s.user_id = u.id and s.state = 'running')`
      : sql<SqlBool>`exists (select 1 from servers s where s.user_id = u.id and s.state <> 'stopped')`
    base = base.where(q.state === 'inactive' ? sql<SqlBool>`not ${cond}` : cond)
  }
  const dir = q.descending ? 'desc' : 'asc'
  // The page's rows first (OFFSET skips rows it has built, so nothing costly is built there),
  // then each row's servers and groups, in the same order.
  const ordered = <T extends { orderBy: (...a: any[]) => T }>(qb: T): T =>
    q.sort === 'name' ? qb.orderBy('u.name', dir)
      : q.sort === 'last_activity' ? qb.orderBy(sql`u.last_activity ${sql.raw(dir)} nulls last`).orderBy('u.id', dir)
      : qb.orderBy('u.id', dir)
  const page = ordered(base.select(['u.id', 'u.name', 'u.admin', 'u.created', 'u.last_activity'])).offset(q.offset).limit(q.limit)
  const withParts = ordered(db.selectFrom(page.as('u')).select(['u.id', 'u.name', 'u.admin', 'u.created', 'u.last_activity',
    sql<UserPartsRow['servers']>`${sql.raw(SERVERS_JSON)}`.as('servers'), sql<string[]>`${sql.raw(GROUP_NAMES)}`.as('groups')]))
  const [rows, count] = await Promise.all([
    withParts.execute(),
    base.select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow(),
  ])
  return { users: rows.map(r => toUserWithParts(r as UserPartsRow)), total: Number(count.n) }
}
