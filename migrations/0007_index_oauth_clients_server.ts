import type { Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// Stopping a server deletes its OAuth client by server_id; without this index every stop scanned
// every client (found by the 5,000-server cull sweep).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('oauth_clients_server_id_idx').on('oauth_clients').column('server_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('oauth_clients_server_id_idx').execute()
}
