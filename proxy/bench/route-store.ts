/**
 * `npm run bench:route-store`: the proxy in route-store mode (issue #15), all processes measured
 * from outside, in one run:
 *
 * 1. req/s and p99 at 1, 1,000 and 10,000 routes: route-store with one process and with two
 *    (`--workers 2`, one port), beside configurable-http-proxy 5.3 (routes POSTed) in the same
 *    run, alternating, 50 connections;
 * 2. time to a whole table after a proxy start at 10,000 and 50,000 routes: from spawn to the
 *    ready file (Node's own start included), and the load itself as the proxy logs it.
 *
 * Flags: --duration S (per autocannon run, default 3), --rounds N (default 4), --starts N (default 3),
 * --out NAME (folder under bench-results/). Needs `npm run build` (the proxy runs from dist/).
 * An embedded Postgres in a temp folder; loopback only.
 */
import autocannon from 'autocannon'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { createLogger } from '../../core/src/log.js'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createDb, migrateToLatest } from '../../hub/src/db.js'
import { type Child, REPO, startChp, startOurs, startUpstream } from './processes.js'

const TOKEN = 'bench-token'
const { values } = parseArgs({ options: { duration: { type: 'string' }, rounds: { type: 'string' }, starts: { type: 'string' }, out: { type: 'string' } } })
const DURATION = Number(values.duration ?? 3)
const ROUNDS = Number(values.rounds ?? 4)
const STARTS = Number(values.starts ?? 3)
const COUNTS = [1, 1000, 10_000]
const LOAD_COUNTS = [10_000, 50_000]
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]! }
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleethub-route-store-bench-'))
fs.chmodSync(dir, 0o755) // the embedded Postgres runs as its own OS user when we are root
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: createLogger('silent') })
const url = postgres.url
const { db } = createDb({ url, poolSize: 2 })
await migrateToLatest(db)
const client = new pg.Client({ connectionString: url })
await client.connect()
await client.query('select fleethub_enable_route_store()') // as the first route-store proxy or hub would
const upstream = await startUpstream()

/** Exactly `n` running servers u1..un at the upstream (their routes follow by trigger). */
async function seed(n: number): Promise<void> {
  await client.query('delete from users')
  for (let from = 1; from <= n; from += 10_000) {
    const to = Math.min(n, from + 9_999)
    await client.query(`with u as (insert into users (name) select 'u' || i from generate_series($1::int, $2::int) i returning id)
      insert into servers (user_id, name, state, url) select id, '', 'running', $3 from u`, [from, to, upstream.url])
  }
  const { rows } = await client.query<{ n: string }>('select count(*) as n from proxy_routes')
  if (Number(rows[0]!.n) !== n) throw new Error(`seeded ${rows[0]!.n} routes, wanted ${n}`)
}

const paths = (n: number) => Array.from({ length: Math.min(n, 1000) }, (_, i) => `/user/u${1 + Math.floor(i * n / Math.min(n, 1000))}/api/status`)

interface Row { routes: number; variant: string; reqPerSec: number[]; p99: number[]; non2xx: number; errors: number }
const rows: Row[] = []
const children: Child[] = []
try {
  for (const n of COUNTS) {
    log(`${n} routes: seeding and starting three proxies`)
    await seed(n)
    const env = { DATABASE_URL: url }
    const variants: Array<{ name: string; child: Child }> = [
      { name: 'chp 5.3 (REST)', child: await startChp(TOKEN) },
      { name: 'route-store, 1 process', child: await startOurs(TOKEN, { flags: ['--routes-from-db'], env }) },
      { name: 'route-store, 2 processes', child: await startOurs(TOKEN, { flags: ['--routes-from-db', '--workers', '2'], env }) },
    ]
    children.push(...variants.map(v => v.child))
    const chp = variants[0]!.child
    for (let i = 1; i <= n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i + 1) }, async (_, k) => {
        const res = await fetch(`${chp.apiUrl}/api/routes/user/u${i + k}`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: upstream.url }) })
        if (res.status !== 201) throw new Error(`CHP POST: ${res.status}`)
      }))
    }
    const requests = paths(n).map(p => ({ method: 'GET' as const, path: p }))
    for (const v of variants) await autocannon({ url: v.child.url, connections: 50, duration: 1, requests })
    const byName = new Map(variants.map(v => [v.name, { routes: n, variant: v.name, reqPerSec: [] as number[], p99: [] as number[], non2xx: 0, errors: 0 }]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
        const x = await autocannon({ url: v.child.url, connections: 50, duration: DURATION, requests })
        const row = byName.get(v.name)!
        row.reqPerSec.push(Math.round(x.requests.average))
        row.p99.push(x.latency.p99)
        row.non2xx += x.non2xx
        row.errors += x.errors
        log(`  ${v.name}: ${Math.round(x.requests.average)} req/s, p99 ${x.latency.p99} ms`)
      }
    }
    rows.push(...byName.values())
    await Promise.all(variants.map(v => v.child.stop()))
  }

  const starts: Array<{ routes: number; readyMs: number[]; loadMs: number[] }> = []
  for (const n of LOAD_COUNTS) {
    log(`${n} routes: seeding, then ${STARTS} proxy starts`)
    await seed(n)
    const row = { routes: n, readyMs: [] as number[], loadMs: [] as number[] }
    for (let s = 0; s < STARTS; s++) {
      let loadMs = NaN
      let buffered = ''
      const t0 = performance.now()
      const child = await startOurs(TOKEN, {
        flags: ['--routes-from-db'], env: { DATABASE_URL: url }, logLevel: 'info',
        onLog: chunk => {
          const lines = (buffered + chunk).split('\n')
          buffered = lines.pop()!
          for (const line of lines) {
            if (!line.includes('routes loaded from the database')) continue
            const m = JSON.parse(line) as { ms: number; routes: number }
            if (m.routes === n) loadMs = m.ms
          }
        },
      })
      row.readyMs.push(Math.round(performance.now() - t0))
      // the whole table, checked: every route there
      const res = await fetch(`${child.apiUrl}/api/routes`, { headers: { authorization: `token ${TOKEN}` } })
      const have = Object.keys(await res.json() as object).length
      if (have !== n) throw new Error(`proxy started with ${have} routes, wanted ${n}`)
      await child.stop()
      row.loadMs.push(loadMs)
      log(`  start ${s + 1}: ready after ${row.readyMs.at(-1)} ms (load ${loadMs} ms)`)
    }
    starts.push(row)
  }

  const date = new Date().toISOString().slice(0, 10)
  const out = path.join(REPO, 'bench-results', values.out ?? `${date}-route-store`)
  fs.mkdirSync(out, { recursive: true })
  const command = `npm run bench:route-store -- ${process.argv.slice(2).join(' ')}`.trim()
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify({ command, date: new Date().toISOString(), cpus: os.cpus().length, throughput: rows, starts }, null, 2) + '\n')
  const md = [
    `# Route-store proxies (${date})`, '', `Command: \`${command}\` (${os.cpus().length} cores, loopback, 50 connections, ${ROUNDS} alternating rounds of ${DURATION} s; medians)`, '',
    '| routes | proxy | req/s | p99 ms | non-2xx | errors |', '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(r => `| ${r.routes.toLocaleString('en')} | ${r.variant} | ${median(r.reqPerSec).toLocaleString('en')} | ${median(r.p99)} | ${r.non2xx} | ${r.errors} |`),
    '', 'Time to a whole table after a proxy start (spawn to listening, Node\'s start included; the load as the proxy logs it):', '',
    '| routes | ready after (median ms) | load (median ms) | runs |', '| ---: | ---: | ---: | --- |',
    ...starts.map(s => `| ${s.routes.toLocaleString('en')} | ${median(s.readyMs)} | ${median(s.loadMs)} | ${s.readyMs.join(', ')} |`), '',
  ].join('\n')
  fs.writeFileSync(path.join(out, 'report.md'), md)
  process.stdout.write(md)
  log(`wrote ${out}`)
} finally {
  await Promise.all(children.map(c => c.stop()))
  await upstream.stop()
  await client.end()
  await db.destroy()
  await postgres.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
