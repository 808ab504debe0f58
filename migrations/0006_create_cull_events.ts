import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// The idle culler's log: one row per server stopped, user deleted or cull skipped, shown to admins.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('cull_events')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    .addColumn('at', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    // names, not ids: the log outlives the users and servers it mentions
    .addColumn('user_name', 'text', c => c.notNull())
    // null for a user deletion; '' for the default server
    .addColumn('server_name', 'text')
    .addColumn('idle_seconds', 'integer', c => c.notNull())
    .addColumn('rule', 'text', c => c.notNull().check(sql`rule in ('idle', 'max-age')`))
    .addColumn('action', 'text', c => c.notNull().check(sql`action in ('stopped', 'user-deleted', 'skipped')`))
    // why a cull was skipped (e.g. 'active again'); null otherwise
    .addColumn('detail', 'text')
    .addColumn('dry_run', 'boolean', c => c.notNull().defaultTo(false))
    .addColumn('by', 'text', c => c.notNull().check(sql`"by" in ('hub', 'api')`))
    .execute()
  // Readers page newest first by id (the primary key); pruning goes by time.
  await db.schema.createIndex('cull_events_at_idx').on('cull_events').column('at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('cull_events').execute()
}
