import type { Db } from '../db.js'

export interface User {
  readonly id: string
  readonly name: string
  readonly admin: boolean
  readonly created: Date
  readonly lastActivity: Date | null
}

type UserRow = { id: string; name: string; admin: boolean; created: Date; last_activity: Date | null }

export function toUser(row: UserRow): User {
  return { id: row.id, name: row.name, admin: row.admin, created: row.created, lastActivity: row.last_activity }
}

const COLUMNS = ['id', 'name', 'admin', 'created', 'last_activity'] as const

export async function findUserByName(db: Db, name: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').select(COLUMNS).where('name', '=', name).executeTakeFirst()
  return row && toUser(row)
}

export async function findUserById(db: Db, id: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').select(COLUMNS).where('id', '=', id).executeTakeFirst()
  return row && toUser(row)
}

/** The user with this name, created on first login (as JupyterHub does for allowed users). */
export async function ensureUser(db: Db, name: string, options: { admin?: boolean } = {}): Promise<User> {
  const inserted = await db.insertInto('users').values({ name, admin: options.admin ?? false })
    .onConflict(oc => oc.column('name').doNothing()).returning(COLUMNS).executeTakeFirst()
  if (inserted) return toUser(inserted)
  const found = await findUserByName(db, name)
  if (!found) throw new Error(`user ${name} vanished while being created`)
  if (options.admin === true && !found.admin) {
    await db.updateTable('users').set({ admin: true }).where('id', '=', found.id).execute()
    return { ...found, admin: true }
  }
  return found
}

/** New users (names already checked); a name that exists is skipped. Returns only the users created. */
export async function createUsers(db: Db, names: readonly string[], admin: boolean): Promise<User[]> {
  const rows = await db.insertInto('users').values(names.map(name => ({ name, admin })))
    .onConflict(oc => oc.column('name').doNothing()).returning(COLUMNS).execute()
  return rows.map(toUser)
}

/** Set the admin flag and/or the name; the caller checks the new name is free. */
export async function updateUser(db: Db, id: string, update: { readonly admin?: boolean; readonly name?: string }): Promise<void> {
  await db.updateTable('users').set(update).where('id', '=', id).execute()
}

export async function deleteUser(db: Db, id: string): Promise<void> {
  await db.deleteFrom('users').where('id', '=', id).execute()
}

/** A native account's id and bcrypt hash (null until the first sign-in sets it), or undefined. */
export async function findPasswordHash(db: Db, name: string): Promise<{ id: string; passwordHash: string | null } | undefined> {
  const row = await db.selectFrom('users').select(['id', 'password_hash']).where('name', '=', name).executeTakeFirst()
  return row && { id: row.id, passwordHash: row.password_hash }
}

/** Set the password hash only if still unset: two first sign-ins racing cannot both set it. */
export async function setPasswordIfUnset(db: Db, id: string, hash: string): Promise<boolean> {
  const res = await db.updateTable('users').set({ password_hash: hash }).where('id', '=', id).where('password_hash', 'is', null).executeTakeFirst()
  return Number(res.numUpdatedRows) === 1
}

/** Name -> id for those of `names` that exist (one query). */
export async function findUserIdsByName(db: Db, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map()
  const rows = await db.selectFrom('users').select(['id', 'name']).where('name', 'in', names).execute()
  return new Map(rows.map(r => [r.name, r.id]))
}
