/** OAuth clients (one per user server, written with the server's claim) and authorization codes (stored as hashes). */
import { sql } from 'kysely'
import type { Db } from '../db.js'

export interface OauthClient {
  readonly id: string
  readonly secretHash: string
  readonly redirectUri: string
  readonly description: string
  readonly serverId: string | null
}

export interface OauthCode {
  readonly codeHash: string
  readonly clientId: string
  readonly userId: string
  readonly sessionId: string | null
  readonly redirectUri: string
  readonly scopes: readonly string[]
}

export async function findOauthClient(db: Db, id: string): Promise<OauthClient | undefined> {
  const row = await db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst()
  return row && { id: row.id, secretHash: row.secret_hash, redirectUri: row.redirect_uri, description: row.description, serverId: row.server_id }
}

export async function createOauthCode(db: Db, code: OauthCode & { readonly expiresAt: Date }): Promise<void> {
  await db.insertInto('oauth_codes').values({
    code_hash: code.codeHash, client_id: code.clientId, user_id: code.userId, session_id: code.sessionId, redirect_uri: code.redirectUri,
    scopes: [...code.scopes], expires_at: code.expiresAt,
  }).execute()
}

/** The unexpired code with this hash, deleted as it is read: single use, so a replay finds nothing. */
export async function takeOauthCode(db: Db, codeHash: string): Promise<OauthCode | undefined> {
  const row = await db.deleteFrom('oauth_codes').where('code_hash', '=', codeHash)
    .where('expires_at', '>', sql<Date>`now()`).returningAll().executeTakeFirst()
  return row && {
    codeHash: row.code_hash, clientId: row.client_id, userId: row.user_id, sessionId: row.session_id, redirectUri: row.redirect_uri, scopes: row.scopes,
  }
}
