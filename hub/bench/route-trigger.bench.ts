/**
 * What the routes trigger (migrations/0010: `proxy_routes` kept equal to the running servers, in
 * the same transaction, each change NOTIFYed) costs a spawn and a stop once route-store mode has
 * turned it on (it is off until then, so the REST mode pays nothing). One hub in this process
 * (the instant spawner, its child proxy), 1,000 spawns then 1,000 stops through the API by 50
 * client loops, per round, with the trigger enabled and disabled in turn (alternating, so the
 * machine's load falls on both).
 *
 *   npm run build && node --import tsx hub/bench/route-trigger.bench.ts [--rounds 4] [--servers 1000]
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createLogger } from '../../core/src/log.js'
import { createDb, migrateToLatest } from '../src/db.js'
import { parseHubConfig } from '../src/config.js'
import { startHub } from '../src/stack.js'
import { createToken } from '../src/tokens/token.repository.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, servers: { type: 'string', default: '1000' } } })
const ROUNDS = Number(values.rounds)
const SERVERS = Number(values.servers)
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-trigger-bench-'))
await fs.chmod(dir, 0o755) // the embedded Postgres runs as its own OS user when we are root
const silent = createLogger('silent')
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: silent })
const { db } = createDb({ url: pg.url, poolSize: 2 })
await migrateToLatest(db)
const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', path.join(dir, 'data'),
  '--log-level', 'silent', '--concurrent-spawn-limit', '100', '--last-activity-interval', '3600', '--no-migrate', '--no-cleanup-servers'],
{ FLEETHUB_DEV_PASSWORD: 'x'.repeat(12) })
const hub = await startHub({ config, databaseUrl: pg.socketUrl, log: silent, spawner: createInstantSpawner() })
const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
await sql`insert into users (name) select 's' || i from generate_series(1, ${SERVERS}) as i`.execute(db)

const count = async (state: string) => Number((await sql<{ n: string }>`select count(*) as n from servers where state = ${state}`.execute(db)).rows[0]!.n)
async function all(method: 'POST' | 'DELETE'): Promise<number> {
  const t0 = performance.now()
  let next = 1
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next <= SERVERS) {
      const res = await fetch(`${hub.hubUrl}/hub/api/users/s${next++}/server`, { method, headers: { authorization: `token ${token}` } })
      await res.body?.cancel()
    }
  }))
  const want = method === 'POST' ? 'running' : 'stopped'
  for (let i = 0; i < 1200 && await count(want) < SERVERS; i++) await new Promise(r => setTimeout(r, 20))
  return Math.round(SERVERS / ((performance.now() - t0) / 1000))
}

const result: Record<'on' | 'off', { spawnsPerSecond: number[]; stopsPerSecond: number[] }> = {
  on: { spawnsPerSecond: [], stopsPerSecond: [] }, off: { spawnsPerSecond: [], stopsPerSecond: [] },
}
try {
  await all('POST') // warm-up
  await all('DELETE')
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 === 0 ? ['on', 'off'] as const : ['off', 'on'] as const) {
      await sql.raw(`alter table servers ${mode === 'on' ? 'enable' : 'disable'} trigger servers_route_sync`).execute(db)
      const spawns = await all('POST')
      const stops = await all('DELETE')
      result[mode].spawnsPerSecond.push(spawns)
      result[mode].stopsPerSecond.push(stops)
      log(`round ${r + 1}, trigger ${mode}: ${spawns} spawns/s, ${stops} stops/s`)
    }
  }
  const out = {
    command: `node --import tsx hub/bench/route-trigger.bench.ts ${process.argv.slice(2).join(' ')}`.trim(), servers: SERVERS, rounds: ROUNDS,
    median: { on: { spawns: median(result.on.spawnsPerSecond), stops: median(result.on.stopsPerSecond) }, off: { spawns: median(result.off.spawnsPerSecond), stops: median(result.off.stopsPerSecond) } },
    runs: result,
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
} finally {
  await hub.close()
  await db.destroy()
  await pg.stop()
  await fs.rm(dir, { recursive: true, force: true })
}
