import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('users')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    .addColumn('name', 'text', c => c.notNull().unique())
    .addColumn('admin', 'boolean', c => c.notNull().defaultTo(false))
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_activity', 'timestamptz')
    .execute()
  // Admin listing sorts by last activity; name order comes from the unique index.
  await db.schema.createIndex('users_last_activity_idx').on('users').column('last_activity').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('users').execute()
}
