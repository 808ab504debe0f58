/**
 * The embedded default's database: the hub talks to it over a Unix socket beside the data
 * directory (cheaper per query than loopback TCP), TCP stays open for tools, and a data directory
 * too deep for a socket path (sun_path is 107 bytes) goes without one instead of failing.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import t from 'tap'
import { socketDirFor, startEmbeddedPostgres } from '../src/embedded-postgres.js'
import { createLogger } from '../src/log.js'

const log = createLogger('silent')

async function whoAmI(url: string): Promise<{ addr: string | null; db: string }> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const { rows } = await c.query<{ addr: string | null; db: string }>('select inet_client_addr()::text as addr, current_database() as db')
    return rows[0]!
  } finally { await c.end() }
}

t.test('socketUrl reaches the same database over a Unix socket; url over TCP', async t => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-epg-'))
  await fs.chmod(dir, 0o755)
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log, settings: { fsync: 'off' } })
  t.teardown(() => server.stop())
  t.not(server.socketUrl, server.url)
  t.match(server.socketUrl, /^postgres:\/\/fleethub:[^@]+@\/fleethub\?host=.*&port=\d+$/)
  const st = await fs.stat(path.join(dir, 'run', `.s.PGSQL.${server.port}`))
  t.ok(st.isSocket(), 'the socket is beside the data directory')
  t.same(await whoAmI(server.socketUrl), { addr: null, db: 'fleethub' }, 'a socket connection has no client address')
  t.same(await whoAmI(server.url), { addr: '127.0.0.1/32', db: 'fleethub' }, 'TCP still answers on loopback')
})

t.test('a data directory too deep for a socket path goes without one (TCP instead of failing)', async t => {
  t.equal(socketDirFor('/srv/hub/pgdata', 5432), '/srv/hub/run')
  const deep = `/srv/${'d'.repeat(60)}/${'e'.repeat(40)}/pgdata`
  t.equal(socketDirFor(deep, 5432), undefined)
})
