/**
 * What a stop and a logout cost Postgres with and without migration 0011's indexes on the foreign
 * keys that cascade (api_tokens.oauth_client_id, oauth_codes.*). A stop deletes its server's OAuth
 * client, which cascades to its tokens; a logout deletes the session, which cascades to its tokens
 * and codes. `users` users, each with a running server, an OAuth client, a server token, an OAuth
 * token and a session (what the campus load test leaves behind), then 1,500 stops (markStopped, the
 * statement the hub runs) and 1,500 session deletes from 10 connections: a leave second. Rounds
 * alternate without and with the indexes, so the machine's load falls on both.
 *
 *   node --import tsx hub/bench/stop-cascade.bench.ts [--users 10000] [--rounds 3]
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createLogger } from '../../core/src/log.js'
import { createDb, migrateToLatest } from '../src/db.js'
import { markStopped } from '../src/servers/server.repository.js'

const { values } = parseArgs({ options: { users: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } } })
const USERS = Number(values.users)
const ROUNDS = Number(values.rounds)
const LEAVING = 1500
const CONNECTIONS = 10
const INDEXES = [['api_tokens_oauth_client_id_idx', 'api_tokens', 'oauth_client_id'], ['oauth_codes_client_id_idx', 'oauth_codes', 'client_id'],
  ['oauth_codes_user_id_idx', 'oauth_codes', 'user_id'], ['oauth_codes_session_id_idx', 'oauth_codes', 'session_id']] as const
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-cascade-bench-'))
await fs.chmod(dir, 0o755) // the embedded Postgres runs as its own OS user when we are root
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: createLogger('silent') })
const { db } = createDb({ url: pg.socketUrl, poolSize: CONNECTIONS })
try {
  await migrateToLatest(db)

  async function fill(): Promise<void> {
    await sql`truncate users, servers, oauth_clients, api_tokens, sessions, oauth_codes cascade`.execute(db)
    await sql`insert into users (name) select 'u' || i from generate_series(1, ${USERS}) i`.execute(db)
    await sql`insert into servers (user_id, state, url) select id, 'running', 'http://127.0.0.1/' from users`.execute(db)
    await sql`insert into sessions (id, user_id, expires_at) select 's' || id, id, now() + interval '1 day' from users`.execute(db)
    await sql`insert into oauth_clients (id, secret_hash, redirect_uri, description, server_id) select 'c' || id, 'h', 'r', 'd', id from servers`.execute(db)
    await sql`insert into api_tokens (prefix, hash, kind, user_id, server_id) select 'p', 'h', 'server', user_id, id from servers`.execute(db)
    await sql`insert into api_tokens (prefix, hash, kind, user_id, session_id, oauth_client_id) select 'p', 'h', 'oauth', user_id, 's' || user_id, 'c' || id from servers`.execute(db)
    await sql`analyze`.execute(db)
  }

  async function perSecond(items: readonly string[], op: (id: string) => Promise<unknown>): Promise<number> {
    const t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => { while (next < items.length) await op(items[next++]!) }))
    return Math.round(items.length / ((performance.now() - t0) / 1000))
  }

  async function round(): Promise<{ stops: number; logouts: number }> {
    await fill()
    const servers = (await sql<{ id: string }>`select id::text as id from servers order by id limit ${LEAVING}`.execute(db)).rows.map(r => r.id)
    const stops = await perSecond(servers, id => markStopped(db, id, null))
    const sessions = (await sql<{ id: string }>`select id from sessions order by id limit ${LEAVING}`.execute(db)).rows.map(r => r.id)
    const logouts = await perSecond(sessions, id => db.deleteFrom('sessions').where('id', '=', id).execute())
    return { stops, logouts }
  }

  const result = { without: { stops: [] as number[], logouts: [] as number[] }, with: { stops: [] as number[], logouts: [] as number[] } }
  for (let r = 1; r <= ROUNDS; r++) {
    for (const mode of ['without', 'with'] as const) {
      for (const [name, table, column] of INDEXES) {
        if (mode === 'without') await sql`drop index if exists ${sql.id(name)}`.execute(db)
        else await sql`create index if not exists ${sql.id(name)} on ${sql.id(table)} (${sql.id(column)})`.execute(db)
      }
      const x = await round()
      result[mode].stops.push(x.stops); result[mode].logouts.push(x.logouts)
      log(`round ${r}/${ROUNDS} ${mode} indexes: ${x.stops} stops/s, ${x.logouts} logouts/s`)
    }
  }
  const m = (xs: number[]) => median(xs)
  process.stdout.write(`${JSON.stringify({
    users: USERS, leaving: LEAVING, connections: CONNECTIONS, rounds: ROUNDS, loadavg: os.loadavg().map(l => Math.round(l * 100) / 100), result,
    median: { stopsWithout: m(result.without.stops), stopsWith: m(result.with.stops), logoutsWithout: m(result.without.logouts), logoutsWith: m(result.with.logouts),
      stopsRatio: Math.round(m(result.with.stops) / m(result.without.stops) * 100) / 100, logoutsRatio: Math.round(m(result.with.logouts) / m(result.without.logouts) * 100) / 100 },
  }, null, 2)}\n`)
} finally {
  await db.destroy()
  await pg.stop()
  await fs.rm(dir, { recursive: true, force: true })
}
