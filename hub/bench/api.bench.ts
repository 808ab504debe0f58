/**
 * Hub API benchmark (issue 3): with 10,000 users and 2,000 running servers in the database,
 * autocannon against the hub's own port (as the JupyterHub reference figures were taken):
 *   GET /hub/api/users/<random name>, POST /hub/api/users/<random>/activity, GET /hub/api/user,
 *   GET /hub/api/users?state=ready (paginated), at 10 and 50 connections;
 * then paging through all users (200 a page), and spawns/s with an instant spawner.
 * The hub under test runs as its own process (`fleethub hub`, from dist/), so the load generator
 * never shares its event loop; the spawn-rate phase runs a hub in this process with an instant
 * spawner (no process start-up in the way) and drives it with 50 plain fetch loops.
 *
 *   npm run bench:hub [-- --duration 10]       writes bench-results/hub-api-<date>/
 *
 * With `--workers 1,2` (issue #14) it compares hub worker counts in one session instead: one
 * database seeded once, then for each of `--rounds` rounds each worker count in turn (alternating,
 * so a change in the machine's load falls on both): `fleethub hub --workers N` from dist/ under
 * autocannon (user reads, activity, token checks, the ready list, at 10 and 50 connections), then
 * the spawn rate against the same hub path with the instant spawner (hub/bench/instant-hub.ts:
 * one process, or a cluster primary and N workers). Writes bench-results/hub-workers-<date>[-label]/
 * {result.json,README.md}.
 *
 *   npm run build && npm run bench:hub -- --workers 1,2 --rounds 3 --duration 10
 */
import autocannon from 'autocannon'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { parseHubConfig } from '../src/config.js'
import { createLogger } from '../../core/src/log.js'
import { startHub } from '../src/stack.js'
import { apiCases, seedApiBench } from './api-cases.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'
import { spawn } from 'node:child_process'
import { freeLowPort } from '../../core/src/embedded-postgres.js'

const USERS = 10_000
const RUNNING = 2_000
const SPAWNS = 1_000

const { values } = parseArgs({ options: {
  duration: { type: 'string', default: '10' }, out: { type: 'string', default: 'bench-results' },
  // --label NAME: the report goes to bench-results/hub-api-<date>-NAME (a second run the same day keeps the first)
  label: { type: 'string' },
  // --only get_user,activity,token_check,list_ready,list_all,spawn: just those parts (no report written)
  // --cpu-prof DIR: CPU profiles of the hub (the child under node --cpu-prof; this process during the spawn phase)
  only: { type: 'string' }, 'cpu-prof': { type: 'string' },
  // --workers 1,2: compare hub worker counts (see above); --rounds R: how many times each, alternating
  workers: { type: 'string' }, rounds: { type: 'string', default: '1' },
} })
const only = values.only ? new Set(values.only.split(',')) : undefined
const duration = Number(values.duration)
const log = createLogger('warn')
const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`)

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-bench-'))
  await fs.chmod(dir, 0o755) // the embedded Postgres runs as another OS user and must enter it
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log, settings: { fsync: 'off', synchronous_commit: 'off' } })
  const results: Record<string, unknown> = {}
  const [port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort()]
  const profArgs = values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['cpu-prof'])] : []
  const hub = spawn(process.execPath, [...profArgs, 'dist/cli/fleethub.js', 'hub', '--port', String(port), '--hub-port', String(hubPort), '--proxy-api-url', `http://127.0.0.1:${apiPort}`,
    '--data-dir', dir, '--log-level', 'warn', '--last-activity-interval', '3600',
    // the seeded "running" servers point nowhere: no poll may stop them mid-run
    '--poll-interval', '3600'], { env: { ...process.env, DATABASE_URL: pg.socketUrl, FLEETHUB_DEV_PASSWORD: 'x'.repeat(12) }, stdio: ['ignore', 'inherit', 'inherit'] })
  const hubUrl = `http://127.0.0.1:${hubPort}`
  const { createDb } = await import('../src/db.js')
  const { db } = createDb({ url: pg.url, poolSize: 4 })
  try {
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${hubUrl}/hub/health`, { signal: AbortSignal.timeout(2000) }).then(r => r.ok, () => false)) break
      await new Promise(r => setTimeout(r, 100))
    }
    progress(`seeding ${USERS} users, ${RUNNING} running servers`)
    const token = await seedApiBench(db, USERS, RUNNING)
    const cases = apiCases(token, USERS)
    const headers = { authorization: `token ${token}` }
    for (const c of cases) {
      if (only && !only.has(c.key)) continue
      // 3 s not counted first: the hub's JIT, and its prepared statements on every pooled connection
      await autocannon({ url: hubUrl, connections: 10, duration: 3, requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }] })
      for (const connections of [10, 50]) {
        progress(`${c.key} at ${connections} connections for ${duration}s`)
        const r = await autocannon({
          url: hubUrl, connections, duration,
          requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }],
        })
        results[`${c.key}_c${connections}`] = { rps: Math.round(r.requests.average), p50_ms: r.latency.p50, p99_ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors, requests: r.requests.total }
      }
    }
    const stack = { hubUrl }
    if (!only || only.has('list_all')) progress('paging through every user, 200 a page')
    const listTimes: number[] = []
    const pages: string[] = [] // the bodies of the first 5,000 users' pages, for the client floor below
    for (let round = 0; round < (only && !only.has('list_all') ? 0 : 5); round++) {
      const t0 = performance.now()
      let url: string | null = `${stack.hubUrl}/hub/api/users?limit=200`
      let seen = 0, at5000 = 0
      while (url) {
        const res = await fetch(url, { headers: { ...headers, accept: 'application/jupyterhub-pagination+json' } })
        const text = await res.text()
        const body = JSON.parse(text) as { items: unknown[]; _pagination: { next: { url: string } | null } }
        if (round === 0 && seen < 5000) pages.push(text)
        seen += body.items.length
        if (!at5000 && seen >= 5000) at5000 = performance.now() - t0
        url = body._pagination.next?.url ?? null
      }
      listTimes.push(at5000, performance.now() - t0)
      results.list_users_count = seen
    }
    const first5000 = listTimes.filter((_, i) => i % 2 === 0).sort((a, b) => a - b)
    const all = listTimes.filter((_, i) => i % 2 === 1).sort((a, b) => a - b)
    if (listTimes.length > 0) {
      results.list_first_5000_ms_median = Math.round(first5000[2]!)
      results.list_all_ms_median = Math.round(all[2]!)
      // The same client loop against a server that does nothing but send those same bytes: what
      // the client and HTTP alone cost, so the hub's own share is the difference.
      results.list_first_5000_client_floor_ms_median = await clientFloor(dir, pages, headers)
    }

    hub.kill('SIGTERM')
    await new Promise(r => hub.once('exit', r))
    if (only && !only.has('spawn')) {
      process.stdout.write(JSON.stringify(results, null, 2) + '\n')
      return
    }
    progress(`${SPAWNS} spawns with an instant spawner`)
    const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn',
      '--concurrent-spawn-limit', '100', '--last-activity-interval', '3600', '--no-migrate'], { FLEETHUB_DEV_PASSWORD: 'x'.repeat(12) })
    const inproc = await startHub({ config, databaseUrl: pg.socketUrl, log, spawner: createInstantSpawner() })
    await sql`insert into users (name) select 'spawn' || i from generate_series(1, ${SPAWNS}) as i`.execute(db)
    const profiler = values['cpu-prof'] ? await startProfiler() : undefined
    const t0 = performance.now()
    // The 50 client loops run in their own process, as autocannon does for the other cases: the
    // hub's event loop serves spawns only.
    const statuses = await runSpawnClients(inproc.hubUrl, token, SPAWNS, 50)
    results.spawn_statuses = statuses
    for (let i = 0; i < 600; i++) {
      const r = await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select(sql<string>`count(*)`.as('n'))
        .where('servers.state', '=', 'running').where('users.name', 'like', 'spawn%').executeTakeFirstOrThrow()
      if (Number(r.n) >= SPAWNS) break
      await new Promise(r => setTimeout(r, 50))
    }
    const spawnSeconds = (performance.now() - t0) / 1000
    if (profiler) await profiler.stop(path.join(values['cpu-prof']!, `spawn-phase-${Date.now()}.cpuprofile`))
    results.spawns = SPAWNS
    results.spawn_seconds = Number(spawnSeconds.toFixed(2))
    results.spawns_per_second = Math.round(SPAWNS / spawnSeconds)
    await inproc.close()
  } finally {
    if (hub.exitCode === null) hub.kill('SIGTERM')
    await db.destroy()
    await pg.stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
  if (only) process.stdout.write(JSON.stringify(results, null, 2) + '\n')
  else await writeReport(results)
}

const STATIC_PAGES = `
const bodies = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'))
const server = require('node:http').createServer((req, res) => {
  const body = bodies[Number(new URL(req.url, 'http://x').searchParams.get('page'))]
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' })
  res.end(body ?? '')
})
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'))
`

/** Paging through `pages` (25 sequential GETs, as against the hub) from a static server in its own process; median of 5, ms. */
async function clientFloor(dir: string, pages: string[], headers: Record<string, string>): Promise<number> {
  const file = path.join(dir, 'pages.json')
  await fs.writeFile(file, JSON.stringify(pages))
  const child = spawn(process.execPath, ['-e', STATIC_PAGES, file], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const port = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', d => resolve(String(d).trim()))
      child.once('exit', code => reject(new Error(`the static page server exited with ${code}`)))
    })
    const times: number[] = []
    for (let round = 0; round < 5; round++) {
      const t0 = performance.now()
      for (let i = 0; i < pages.length; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/hub/api/users?limit=200&page=${i}`, { headers: { ...headers, accept: 'application/jupyterhub-pagination+json' } })
        JSON.parse(await res.text())
      }
      times.push(performance.now() - t0)
    }
    return Math.round(times.sort((a, b) => a - b)[2]!)
  } finally {
    child.kill('SIGTERM')
  }
}

const SPAWN_CLIENT = `
const [url, token, total, loops, prefix] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5] ?? 'spawn']
const statuses = {}
let next = 1
await Promise.all(Array.from({ length: loops }, async () => {
  while (next <= total) {
    const i = next++
    const res = await fetch(url + '/hub/api/users/' + prefix + i + '/server', { method: 'POST', headers: { authorization: 'token ' + token } })
    await res.body?.cancel()
    statuses[res.status] = (statuses[res.status] ?? 0) + 1
  }
}))
process.stdout.write(JSON.stringify(statuses))
`

/** POST /users/spawn<i>/server for i = 1..total from `loops` concurrent loops in a child process; the statuses seen. */
async function runSpawnClients(hubUrl: string, token: string, total: number, loops: number, prefix = 'spawn'): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SPAWN_CLIENT, hubUrl, token, String(total), String(loops), prefix], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', d => { out += String(d) })
  const code = await new Promise<number | null>(r => child.once('exit', r))
  if (code !== 0) throw new Error(`the spawn clients exited with ${code}`)
  return JSON.parse(out) as Record<string, number>
}

/** This process's CPU profile over a window (the in-process hub and its HTTP clients). */
async function startProfiler(): Promise<{ stop(file: string): Promise<void> }> {
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop')
      await fs.mkdir(path.dirname(file), { recursive: true })
      await fs.writeFile(file, JSON.stringify(profile))
      session.disconnect()
    },
  }
}

const REFERENCE = {
  note: 'JupyterHub 3.0 figures quoted from issue 3 (measured on this machine in an earlier session, sqlite / Postgres); not re-measured in this run',
  get_user_c10_rps: '550-620 / 340-420', get_user_p99_c10_ms: '30-70', get_user_p99_c50_ms: '150-850',
  activity_rps: '~80 / ~100', activity_p99_c50_ms: '700-1200', list_5000_ms: '540 / 675', spawns_per_second: '20-25',
}

async function writeReport(r: Record<string, any>): Promise<void> {
  const date = new Date().toISOString().slice(0, 10)
  const out = path.join(values.out!, `hub-api-${date}${values.label ? `-${values.label}` : ''}`)
  await fs.mkdir(out, { recursive: true })
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadavg: os.loadavg().map(l => l.toFixed(2)) }
  await fs.writeFile(path.join(out, 'report.json'), JSON.stringify({ date: new Date().toISOString(), command: `npm run bench:hub${values.label ? ` -- --label ${values.label}` : ''}`, machine, users: USERS, running: RUNNING, duration_s: duration, results: r, reference_jupyterhub_3_0: REFERENCE }, null, 2) + '\n')
  const row = (k: string, label: string) => `| ${label} | ${r[k].rps} | ${r[k].p50_ms} | ${r[k].p99_ms} | ${r[k].non2xx} | ${r[k].errors} |`
  const md = `# Hub API benchmark, ${date}

Command: \`npm run bench:hub${values.label ? ` -- --label ${values.label}` : ''}\` (hub/bench/api.bench.ts). ${USERS} users and ${RUNNING} running servers in the
database (embedded PostgreSQL 18, fsync off), autocannon against the hub's own port for ${duration} s per row,
a random user per request, after 3 s of the same requests not counted (warm-up). Machine: ${machine.cpus} cores (${machine.cpu}), ${machine.memory_gib} GiB, Node ${machine.node},
load average at the end ${machine.loadavg.join(' ')} (the machine is shared; other work ran at the same time).

| endpoint | req/s | p50 ms | p99 ms | non-2xx | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
${row('get_user_c10', 'GET /users/<name>, 10 connections')}
${row('get_user_c50', 'GET /users/<name>, 50 connections')}
${row('activity_c10', 'POST /users/<name>/activity, 10 connections')}
${row('activity_c50', 'POST /users/<name>/activity, 50 connections')}
${row('token_check_c10', 'GET /user (token check), 10 connections')}
${row('token_check_c50', 'GET /user (token check), 50 connections')}
${row('list_ready_c10', 'GET /users?state=ready (page of 50), 10 connections')}
${row('list_ready_c50', 'GET /users?state=ready (page of 50), 50 connections')}

- Paging through all ${r.list_users_count} users, 200 a page: first 5,000 in **${r.list_first_5000_ms_median} ms**, all in ${r.list_all_ms_median} ms (median of 5).
  The same client loop fetching the same 25 bodies from a server that only sends them (its own process): ${r.list_first_5000_client_floor_ms_median} ms,
  the cost of the client and HTTP alone; the hub's own share is the difference.
- ${r.spawns} spawns through the API with an instant spawner (in-process HTTP servers; readiness check, route, DB state all real): **${r.spawns_per_second} spawns/s** (${r.spawn_seconds} s).

## Against JupyterHub 3.0

${REFERENCE.note}.

| figure | JupyterHub 3.0 | fleethub | ratio |
| --- | --- | ---: | ---: |
| GET /users/<name> req/s, 10 conn | 550-620 (sqlite) / 340-420 (PG) | ${r.get_user_c10.rps} | ${(r.get_user_c10.rps / 620).toFixed(1)}x-${(r.get_user_c10.rps / 340).toFixed(1)}x |
| GET /users/<name> p99, 50 conn | 150-850 ms | ${r.get_user_c50.p99_ms} ms | |
| activity reports/s, 50 conn | ~80 / ~100 | ${r.activity_c50.rps} | ${(r.activity_c50.rps / 100).toFixed(0)}x-${(r.activity_c50.rps / 80).toFixed(0)}x |
| activity p99, 50 conn | 700-1200 ms | ${r.activity_c50.p99_ms} ms | |
| list 5,000 users page by page | 540 / 675 ms | ${r.list_first_5000_ms_median} ms | ${(540 / r.list_first_5000_ms_median).toFixed(1)}x-${(675 / r.list_first_5000_ms_median).toFixed(1)}x |
| spawns/s, instant spawner | 20-25 | ${r.spawns_per_second} | ${(r.spawns_per_second / 25).toFixed(0)}x-${(r.spawns_per_second / 20).toFixed(0)}x |

Targets from issue 3: at least 5x on user reads, 20x on activity reports, p99 under 50 ms at 50 connections,
5,000 users listed in under 100 ms, 250 spawns/s.
`
  await fs.writeFile(path.join(out, 'report.md'), md)
  process.stdout.write(md)
}

(values.workers ? import('./api-workers.js').then(m => m.compareWorkers({
  workers: values.workers!, rounds: values.rounds!, duration, out: values.out!, label: values.label, seed: { users: USERS, running: RUNNING, spawns: SPAWNS },
  runSpawnClients, progress,
})) : main()).catch(err => { process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`); process.exitCode = 1 })
