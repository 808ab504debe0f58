import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// The spawn admission queue, fleet-wide (issue #14): concurrent_spawn_limit holds for every hub
// together. A spawn takes a slot row (`for update skip locked`), or waits with a ticket; a freed
// slot goes to the earliest ticket, whichever hub holds it.
export async function up(db: Kysely<any>): Promise<void> {
  // One row per slot, 0 .. concurrent_spawn_limit - 1, added by the hubs as they start; a slot is
  // free while server_id is null.
  await db.schema.createTable('spawn_slots')
    .addColumn('slot', 'integer', c => c.primaryKey())
    .addColumn('server_id', 'bigint', c => c.unique().references('servers.id').onDelete('set null'))
    // the hub running the spawn that holds the slot
    .addColumn('owner', 'text')
    .addColumn('taken', 'timestamptz')
    .execute()
  // Waiting spawns, served in id order (arrival); a server waits once at most.
  await db.schema.createTable('spawn_queue')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    .addColumn('server_id', 'bigint', c => c.notNull().unique().references('servers.id').onDelete('cascade'))
    // the hub running the spawn: it is told when its ticket gets a slot
    .addColumn('owner', 'text', c => c.notNull())
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('spawn_queue').execute()
  await db.schema.dropTable('spawn_slots').execute()
}
