import type { Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// Postgres indexes a foreign key's target, never its source, so a delete that cascades scans the
// whole referencing table once per deleted row. Every stop deletes its server's OAuth client, which
// cascades to api_tokens.oauth_client_id: at 10,000 users that scan made a stop 3x dearer than with
// the index (issue #16, the leave second; bench-results round 9). The three oauth_codes columns
// cascade from clients, users and sessions (a logout) in the same way. migrations.test.ts keeps
// every foreign key indexed from now on.
const INDEXES = [
  ['api_tokens_oauth_client_id_idx', 'api_tokens', 'oauth_client_id'],
  ['oauth_codes_client_id_idx', 'oauth_codes', 'client_id'],
  ['oauth_codes_user_id_idx', 'oauth_codes', 'user_id'],
  ['oauth_codes_session_id_idx', 'oauth_codes', 'session_id'],
] as const

export async function up(db: Kysely<any>): Promise<void> {
  for (const [name, table, column] of INDEXES) await db.schema.createIndex(name).on(table).column(column).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const [name] of INDEXES) await db.schema.dropIndex(name).execute()
}
