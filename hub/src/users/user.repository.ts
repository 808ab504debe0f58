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
