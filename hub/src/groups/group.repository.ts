/**
 * Groups and their members. Writes that must go together take a transaction from the caller
 * (groups.routes.ts): a `Transaction` is a `Db`, so every function here works inside one.
 */
import { sql } from 'kysely'
import type { Db } from '../db.js'

export interface GroupRecord {
  readonly id: string
  readonly name: string
  readonly properties: Record<string, unknown>
}

const COLUMNS = ['id', 'name', 'properties'] as const

/** The group named `name`; with `forUpdate`, its row stays locked until the transaction ends. */
export async function findGroup(db: Db, name: string, options: { forUpdate?: boolean } = {}): Promise<GroupRecord | undefined> {
  let q = db.selectFrom('groups').select(COLUMNS).where('name', '=', name)
  if (options.forUpdate) q = q.forUpdate()
  return q.executeTakeFirst()
}

/** One page of groups by id, and how many there are in all; `only` restricts both to those names. */
export async function listGroups(db: Db, page: { offset: number; limit: number; only?: readonly string[] }): Promise<{ groups: GroupRecord[]; total: number }> {
  let base = db.selectFrom('groups')
  if (page.only) base = base.where('name', 'in', page.only)
  const [groups, count] = await Promise.all([
    base.select(COLUMNS).orderBy('id').offset(page.offset).limit(page.limit).execute(),
    base.select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow(),
  ])
  return { groups, total: Number(count.n) }
}

/** New groups, all with the same properties; a name that exists is skipped. Returns only the groups created. */
export async function createGroups(db: Db, names: readonly string[], properties: Record<string, unknown>): Promise<GroupRecord[]> {
  return db.insertInto('groups').values(names.map(name => ({ name, properties: JSON.stringify(properties) })))
    .onConflict(oc => oc.column('name').doNothing()).returning(COLUMNS).execute()
}

/** Members go with the group (foreign keys cascade). False if there was no such group. */
export async function deleteGroup(db: Db, name: string): Promise<boolean> {
  const gone = await db.deleteFrom('groups').where('name', '=', name).returning('id').executeTakeFirst()
  return gone !== undefined
}

/** Replace the group's properties; false if there is no such group. */
export async function setGroupProperties(db: Db, name: string, properties: Record<string, unknown>): Promise<boolean> {
  const updated = await db.updateTable('groups').set({ properties: JSON.stringify(properties) }).where('name', '=', name).returning('id').executeTakeFirst()
  return updated !== undefined
}

/** Each group's member names (sorted), for every id asked for (an empty list when it has none). */
export async function listMembersOfGroups(db: Db, groupIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(groupIds.map(id => [id, []]))
  if (groupIds.length === 0) return out
  const rows = await db.selectFrom('group_members').innerJoin('users', 'users.id', 'group_members.user_id')
    .select(['group_members.group_id', 'users.name']).where('group_members.group_id', 'in', groupIds)
    .orderBy('users.name').execute()
  for (const r of rows) out.get(r.group_id)?.push(r.name)
  return out
}

/** Every user into every group, in one statement (unnest keeps it to two parameters however many). */
export async function addMembers(db: Db, groupIds: readonly string[], userIds: readonly string[]): Promise<void> {
  if (groupIds.length === 0 || userIds.length === 0) return
  await sql`insert into group_members (group_id, user_id)
    select g, u from unnest(${[...groupIds]}::bigint[]) as g cross join unnest(${[...userIds]}::bigint[]) as u
    on conflict do nothing`.execute(db)
}

export async function removeMembers(db: Db, groupId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return
  await db.deleteFrom('group_members').where('group_id', '=', groupId).where('user_id', 'in', userIds).execute()
}

/** The names of the groups the user is in, sorted. */
export async function listGroupNamesOfUser(db: Db, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('group_members').innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select('groups.name').where('group_members.user_id', '=', userId).orderBy('groups.name').execute()
  return rows.map(r => r.name)
}

/** The same for many users at once (one query), by user id; a user in no group is absent. */
export async function listGroupNamesOfUsers(db: Db, userIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  if (userIds.length === 0) return out
  const rows = await db.selectFrom('group_members').innerJoin('groups', 'groups.id', 'group_members.group_id')
    .select(['group_members.user_id', 'groups.name']).where('group_members.user_id', 'in', userIds).orderBy('groups.name').execute()
  for (const g of rows) {
    const list = out.get(g.user_id)
    if (list) list.push(g.name)
    else out.set(g.user_id, [g.name])
  }
  return out
}
