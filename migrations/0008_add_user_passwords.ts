import type { Kysely } from 'kysely'

// Frozen in time: never import hub code here.
// The native authenticator's password hashes (bcrypt); null = not set yet (first sign-in sets it).
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('password_hash', 'text').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('password_hash').execute()
}
