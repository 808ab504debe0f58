import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db.js'
import { hashToken } from './token-secrets.js'
import { toUser, type User } from '../users/user.repository.js'

export interface Session {
  /** sha256 of the cookie value: what the database stores and what tokens reference. */
  readonly id: string
  readonly user: User
}

/** A new server-side session; returns the cookie value (shown once, never stored). */
export async function createSession(db: Db, userId: string, ttlSeconds: number): Promise<{ cookie: string; id: string }> {
  const cookie = randomBytes(16).toString('hex')
  const id = hashToken(cookie)
  await db.insertInto('sessions').values({ id, user_id: userId, expires_at: new Date(Date.now() + ttlSeconds * 1000) }).execute()
  return { cookie, id }
}

export async function findSession(db: Db, cookie: string): Promise<Session | undefined> {
  if (!/^[0-9a-f]{32}$/.test(cookie)) return undefined
  const id = hashToken(cookie)
  const row = await db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id')
    .select(['users.id', 'users.name', 'users.admin', 'users.created', 'users.last_activity'])
    .where('sessions.id', '=', id).where('sessions.expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst()
  return row && { id, user: toUser(row) }
}

/** Deleting the session also revokes every OAuth token and code issued for it (foreign keys cascade). */
export async function deleteSession(db: Db, id: string): Promise<boolean> {
  const res = await db.deleteFrom('sessions').where('id', '=', id).executeTakeFirst()
  return Number(res.numDeletedRows) > 0
}

export async function deleteExpiredSessions(db: Db): Promise<number> {
  const res = await db.deleteFrom('sessions').where('expires_at', '<=', sql<Date>`now()`).executeTakeFirst()
  return Number(res.numDeletedRows)
}
