import { sql } from 'kysely'
import type { Db, TokenKind } from '../db.js'
import { hashToken, newOauthToken, newToken, sameHash, tokenPrefix } from '../auth/token-secrets.js'

export interface TokenRecord {
  readonly id: string
  readonly kind: TokenKind
  readonly userId: string | null
  readonly userName: string | null
  readonly userAdmin: boolean
  readonly service: string | null
  readonly serverId: string | null
  readonly serverName: string | null
  readonly sessionId: string | null
  readonly oauthClientId: string | null
  readonly scopes: readonly string[]
  readonly roles: readonly string[]
  readonly note: string | null
  readonly created: Date
  readonly expiresAt: Date | null
  readonly lastActivity: Date | null
}

export interface NewToken {
  readonly kind: TokenKind
  readonly userId?: string
  readonly service?: string
  readonly serverId?: string
  readonly sessionId?: string
  readonly oauthClientId?: string
  readonly scopes: readonly string[]
  readonly roles?: readonly string[]
  readonly note?: string
  readonly expiresInSeconds?: number
  /** Use this secret instead of generating one (OAuth tokens have their own format). */
  readonly secret?: string
}

/** Store a token (prefix + hash only) and return the secret, shown to the caller once. */
export async function createToken(db: Db, spec: NewToken): Promise<{ token: string; id: string }> {
  const token = spec.secret ?? (spec.kind === 'oauth' ? newOauthToken() : newToken())
  const row = await db.insertInto('api_tokens').values({
    prefix: tokenPrefix(token), hash: hashToken(token), kind: spec.kind,
    user_id: spec.userId ?? null, service: spec.service ?? null, server_id: spec.serverId ?? null,
    session_id: spec.sessionId ?? null, oauth_client_id: spec.oauthClientId ?? null,
    scopes: [...spec.scopes], roles: [...(spec.roles ?? [])], note: spec.note ?? null,
    expires_at: spec.expiresInSeconds ? new Date(Date.now() + spec.expiresInSeconds * 1000) : null,
  }).returning('id').executeTakeFirstOrThrow()
  return { token, id: row.id }
}

const selectTokens = (db: Db) => db.selectFrom('api_tokens')
  .leftJoin('users', 'users.id', 'api_tokens.user_id')
  .leftJoin('servers', 'servers.id', 'api_tokens.server_id')
  .select(['api_tokens.id', 'api_tokens.hash', 'api_tokens.kind', 'api_tokens.user_id', 'users.name as user_name', 'users.admin as user_admin',
    'api_tokens.service', 'api_tokens.server_id', 'servers.name as server_name', 'api_tokens.session_id', 'api_tokens.oauth_client_id',
    'api_tokens.scopes', 'api_tokens.roles', 'api_tokens.note', 'api_tokens.created', 'api_tokens.expires_at', 'api_tokens.last_activity'])

type Row = Awaited<ReturnType<ReturnType<typeof selectTokens>['executeTakeFirstOrThrow']>>

const toToken = (r: Row): TokenRecord => ({
  id: r.id, kind: r.kind, userId: r.user_id, userName: r.user_name ?? null, userAdmin: r.user_admin ?? false, service: r.service,
  serverId: r.server_id, serverName: r.server_name ?? null, sessionId: r.session_id, oauthClientId: r.oauth_client_id,
  scopes: r.scopes, roles: r.roles, note: r.note, created: r.created, expiresAt: r.expires_at, lastActivity: r.last_activity,
})

/** Look a token up by its indexed prefix, then compare hashes in constant time. Expired tokens are absent. */
export async function findToken(db: Db, token: string): Promise<TokenRecord | undefined> {
  if (token.length < 16 || token.length > 256) return undefined
  const hash = hashToken(token)
  const rows = await selectTokens(db).where('api_tokens.prefix', '=', tokenPrefix(token))
    .where(eb => eb.or([eb('api_tokens.expires_at', 'is', null), eb('api_tokens.expires_at', '>', sql<Date>`now()`)]))
    .execute()
  const hit = rows.find(r => sameHash(r.hash, hash))
  return hit && toToken(hit)
}

export async function findTokenById(db: Db, id: string): Promise<TokenRecord | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined
  const row = await selectTokens(db).where('api_tokens.id', '=', id).executeTakeFirst()
  return row && toToken(row)
}

export async function listUserTokens(db: Db, userId: string): Promise<TokenRecord[]> {
  const rows = await selectTokens(db).where('api_tokens.user_id', '=', userId)
    .where(eb => eb.or([eb('api_tokens.expires_at', 'is', null), eb('api_tokens.expires_at', '>', sql<Date>`now()`)]))
    .orderBy('api_tokens.id').execute()
  return rows.map(toToken)
}

export async function deleteToken(db: Db, id: string): Promise<boolean> {
  const res = await db.deleteFrom('api_tokens').where('id', '=', id).executeTakeFirst()
  return Number(res.numDeletedRows) > 0
}

/** Service tokens come from config: make the database match it (token hash, scopes). */
export async function syncServiceToken(db: Db, service: string, token: string, scopes: readonly string[]): Promise<void> {
  await db.transaction().execute(async tx => {
    await tx.deleteFrom('api_tokens').where('service', '=', service).execute()
    await tx.insertInto('api_tokens').values({ prefix: tokenPrefix(token), hash: hashToken(token), kind: 'api', service, scopes: [...scopes], note: `service ${service}` }).execute()
  })
}
