import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('servers')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    .addColumn('user_id', 'bigint', c => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'text', c => c.notNull().defaultTo(''))
    // stopped -> pending -> running -> stopping -> stopped
    .addColumn('state', 'text', c => c.notNull().defaultTo('stopped')
      .check(sql`state in ('stopped', 'pending', 'running', 'stopping')`))
    .addColumn('spawner_kind', 'text')
    .addColumn('spawner_state', 'jsonb', c => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // where the server listens, without its prefix (the proxy target)
    .addColumn('url', 'text')
    .addColumn('user_options', 'jsonb')
    .addColumn('started', 'timestamptz')
    .addColumn('last_activity', 'timestamptz')
    .addColumn('last_error', 'text')
    // the hub replica that owns an in-flight spawn or stop (HA: row-level ownership)
    .addColumn('owner', 'text')
    .addColumn('updated', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('servers_user_id_name_key', ['user_id', 'name'])
    .execute()
  // Everything the hub does at scale looks only at active servers: startup adoption, route
  // reconciliation, the culler's idle query. A partial index keeps those O(active), not O(users).
  await sql`create index servers_active_idx on servers (state, last_activity) where state <> 'stopped'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('servers').execute()
}
