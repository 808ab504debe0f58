/**
 * The hub's database: typed tables, one pooled Kysely instance, and the migrator.
 * Columns are snake_case here; repositories map them to camelCase.
 */
import { createHash } from 'node:crypto'
import { Kysely, Migrator, PostgresDialect, type ColumnType, type CompiledQuery, type Generated, type MigrationResultSet } from 'kysely'
import pg from 'pg'
import { migrations } from '../../migrations/index.js'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
type Json = ColumnType<unknown, string, string>

export type ServerState = 'stopped' | 'pending' | 'running' | 'stopping'

export interface UsersTable {
  id: Generated<string>
  name: string
  admin: Generated<boolean>
  created: Timestamp
  last_activity: NullableTimestamp
  /** bcrypt hash for the native authenticator; null until the user's first sign-in sets it. */
  password_hash: ColumnType<string | null, string | null | undefined, string | null>
}

export interface ServersTable {
  id: Generated<string>
  user_id: string
  name: Generated<string>
  state: Generated<ServerState>
  spawner_kind: string | null
  spawner_state: ColumnType<Record<string, unknown>, string | undefined, string>
  url: string | null
  user_options: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>
  started: NullableTimestamp
  last_activity: NullableTimestamp
  last_error: string | null
  owner: string | null
  updated: Timestamp
}

export interface SessionsTable {
  id: string
  user_id: string
  created: Timestamp
  last_seen: Timestamp
  expires_at: Timestamp
}

export type TokenKind = 'api' | 'server' | 'oauth'

export interface ApiTokensTable {
  id: Generated<string>
  prefix: string
  hash: string
  kind: TokenKind
  user_id: string | null
  service: string | null
  server_id: string | null
  session_id: string | null
  oauth_client_id: string | null
  scopes: ColumnType<string[], string[] | undefined, string[]>
  roles: ColumnType<string[], string[] | undefined, string[]>
  note: string | null
  created: Timestamp
  expires_at: NullableTimestamp
  last_activity: NullableTimestamp
}

export interface OauthClientsTable {
  id: string
  secret_hash: string
  redirect_uri: string
  description: string
  server_id: string | null
  created: Timestamp
}

export interface OauthCodesTable {
  code_hash: string
  client_id: string
  user_id: string
  session_id: string | null
  redirect_uri: string
  scopes: ColumnType<string[], string[], string[]>
  expires_at: Timestamp
}

export interface GroupsTable {
  id: Generated<string>
  name: string
  properties: ColumnType<Record<string, unknown>, string | undefined, string>
  created: Timestamp
}

export interface GroupMembersTable {
  group_id: string
  user_id: string
}

export interface Database {
  users: UsersTable
  servers: ServersTable
  sessions: SessionsTable
  api_tokens: ApiTokensTable
  oauth_clients: OauthClientsTable
  oauth_codes: OauthCodesTable
  groups: GroupsTable
  group_members: GroupMembersTable
}

export type Db = Kysely<Database>
export type { Json }

export interface DbOptions {
  readonly url: string
  /** Pool size. Default 20: the hub never holds a connection across an await on anything but the database. */
  readonly poolSize?: number
}

const pools = new WeakMap<Db, pg.Pool>()

/** One `make(db)` per database, made on first use: per-database state such as statement batches. */
export function perDatabase<T>(make: (db: Db) => T): (db: Db) => T {
  const made = new WeakMap<Db, T>()
  return db => {
    let v = made.get(db)
    if (v === undefined) made.set(db, v = make(db))
    return v
  }
}

/** The pg pool behind a Kysely instance from createDb (runPrepared's way past Kysely). */
function poolOf(db: Db): pg.Pool {
  const pool = pools.get(db)
  if (!pool) throw new Error('poolOf: this Kysely instance was not made by createDb')
  return pool
}

const statementNames = new Map<string, string>()
/** A bound on distinct prepared texts; past it (a caller broke the fixed-shapes rule) queries run unnamed. */
const MAX_STATEMENTS = 500

/** SQL text with $n parameters (a compiled Kysely query is one). */
export interface Statement {
  readonly sql: string
  readonly parameters: readonly unknown[]
}

/**
 * A statement run as a named (server-side prepared) statement, prepared once per pooled
 * connection and named after its text: Kysely has no statement names, and on a 2-core box
 * Postgres's parse and plan per query is a visible share of a hot request. Only for statements
 * from a small, fixed set of shapes (lists go in as one array parameter, never as `in (...)` of
 * varying length): each distinct text stays prepared on every pooled connection.
 */
export async function runPrepared<R>(db: Db, q: CompiledQuery<R>): Promise<R[]>
export async function runPrepared<R>(db: Db, q: Statement): Promise<R[]>
export async function runPrepared<R>(db: Db, q: Statement): Promise<R[]> {
  let name = statementNames.get(q.sql)
  if (name === undefined && statementNames.size < MAX_STATEMENTS) {
    name = `fleethub-${createHash('sha256').update(q.sql).digest('base64url').slice(0, 24)}`
    statementNames.set(q.sql, name)
  }
  const { rows } = await poolOf(db).query({ name, text: q.sql, values: q.parameters as unknown[] })
  return rows as R[]
}

// bigint ids come back as strings (exact); timestamps as Date.
export function createDb(options: DbOptions): { db: Db; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 20, idleTimeoutMillis: 30_000 })
  pool.on('error', () => { /* an idle client died (database restart); the pool replaces it */ })
  // A client checked out of the pool (a query in flight) has no pool listener: when the database
  // goes away under it, pg emits 'error' on the client itself, and without a listener that ends the
  // process (loadtest restart at 5,000 users: Postgres stopped mid-query killed the hub). The query
  // fails with the error anyway, and the pool discards the client on release.
  pool.on('connect', client => { client.on('error', () => { /* its query rejects; the pool drops it */ }) })
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  pools.set(db, pool)
  return { db, pool }
}

function migrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } })
}

function check(result: MigrationResultSet): string[] {
  if (result.error) {
    const failed = result.results?.find(r => r.status === 'Error')
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${result.error instanceof Error ? result.error.message : String(result.error)}`, { cause: result.error })
  }
  return (result.results ?? []).map(r => r.migrationName)
}

/** Apply every pending migration; returns the names applied. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  return check(await migrator(db).migrateToLatest())
}

/** Undo migrations one by one; `steps` = how many (default all). Returns the names undone. */
export async function migrateDown(db: Kysely<any>, steps = Number.POSITIVE_INFINITY): Promise<string[]> {
  const undone: string[] = []
  const m = migrator(db)
  for (let i = 0; i < steps; i++) {
    const names = check(await m.migrateDown())
    if (names.length === 0) break
    undone.push(...names)
  }
  return undone
}
