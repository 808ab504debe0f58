import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('sessions')
    // sha256 of the cookie value: a database dump must not let anyone log in
    .addColumn('id', 'text', c => c.primaryKey())
    .addColumn('user_id', 'bigint', c => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_seen', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', c => c.notNull())
    .execute()
  await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute()
  await db.schema.createIndex('sessions_expires_at_idx').on('sessions').column('expires_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sessions').execute()
}
