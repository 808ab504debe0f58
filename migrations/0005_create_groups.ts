import { sql, type Kysely } from 'kysely'

// Frozen in time: never import hub code here.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createTable('groups')
    .addColumn('id', 'bigserial', c => c.primaryKey())
    .addColumn('name', 'text', c => c.notNull().unique())
    .addColumn('properties', 'jsonb', c => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created', 'timestamptz', c => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createTable('group_members')
    .addColumn('group_id', 'bigint', c => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('user_id', 'bigint', c => c.notNull().references('users.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('group_members_pkey', ['group_id', 'user_id'])
    .execute()
  await db.schema.createIndex('group_members_user_id_idx').on('group_members').column('user_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('group_members').execute()
  await db.schema.dropTable('groups').execute()
}
