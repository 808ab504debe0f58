import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('oauth_clients')
    .addColumn('id', 'text', c => c.primaryKey())                    // jupyterhub-user-<name>[-<server>]
    .addColumn('secret_hash', 'text', c => c.notNull())
    .addColumn('redirect_uri', 'text', c => c.notNull())
    .addColumn('description', 'text', c => c.notNull())
    .addColumn('server_id', 'bigint', c => c.references('servers.id').onDelete('cascade'))
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema.createTable('api_tokens')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    // first characters of the token, indexed, so a check reads one or two rows; never the token itself
    .addColumn('prefix', 'text', c => c.notNull())
    .addColumn('hash', 'text', c => c.notNull())
    .addColumn('kind', 'text', c => c.notNull().check(sql`kind in ('api', 'server', 'oauth')`))
    .addColumn('user_id', 'bigint', c => c.references('users.id').onDelete('cascade'))
    .addColumn('service', 'text')
    // a server's own token dies with its server record
    .addColumn('server_id', 'bigint', c => c.references('servers.id').onDelete('cascade'))
    // OAuth tokens die with the browser session they were issued for (logout revokes them)
    .addColumn('session_id', 'text', c => c.references('sessions.id').onDelete('cascade'))
    .addColumn('oauth_client_id', 'text', c => c.references('oauth_clients.id').onDelete('cascade'))
    .addColumn('scopes', sql`text[]`, c => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('roles', sql`text[]`, c => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('note', 'text')
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('last_activity', 'timestamptz')
    .addCheckConstraint('api_tokens_owner_check', sql`(user_id is null) <> (service is null)`)
    .execute()
  await db.schema.createIndex('api_tokens_prefix_idx').on('api_tokens').column('prefix').execute()
  await db.schema.createIndex('api_tokens_user_id_idx').on('api_tokens').column('user_id').execute()
  await db.schema.createIndex('api_tokens_session_id_idx').on('api_tokens').column('session_id').execute()
  await db.schema.createIndex('api_tokens_server_id_idx').on('api_tokens').column('server_id').execute()

  await db.schema.createTable('oauth_codes')
    .addColumn('code_hash', 'text', c => c.primaryKey())
    .addColumn('client_id', 'text', c => c.notNull().references('oauth_clients.id').onDelete('cascade'))
    .addColumn('user_id', 'bigint', c => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('session_id', 'text', c => c.references('sessions.id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', c => c.notNull())
    .addColumn('scopes', sql`text[]`, c => c.notNull())
    .addColumn('expires_at', 'timestamptz', c => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('oauth_codes').execute()
  await db.schema.dropTable('api_tokens').execute()
  await db.schema.dropTable('oauth_clients').execute()
}
