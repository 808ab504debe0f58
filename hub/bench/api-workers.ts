/**
 * `npm run bench:hub -- --workers 1,2` (api.bench.ts; issue #14): the hub API benchmark for several
 * hub worker counts in one session. One embedded Postgres seeded once (the same users and
 * "running" servers as the single run), then for each round each worker count in turn:
 *
 * - `node dist/cli/fleethub.js hub --workers N` (the real CLI; N = 1 is the plain hub) under
 *   autocannon from this process: GET /users/<random>, POST /users/<random>/activity, GET /user
 *   (token check), GET /users?state=ready (a page of 50), each at 10 and 50 connections after 3 s
 *   of warm-up; and the CPU the hub's process tree and this process (the generator) used;
 * - spawns/s: 1,000 POST /users/<name>/server from 50 loops in a child process against the same
 *   hub path with the instant spawner (instant-hub.ts), until every server is running.
 *
 * Hubs stop with SIGTERM (their own shutdown, `--no-cleanup-servers`, so the seeded servers stay
 * as seeded), SIGKILL after 60 s; the spawn users are deleted after each run.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import { readFileSync, readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import { createDb, migrateToLatest } from '../src/db.js'
import { freeLowPort, startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createLogger } from '../../core/src/log.js'
import { apiCases, seedApiBench } from './api-cases.js'

export interface CompareWorkersOptions {
  readonly workers: string
  readonly rounds: string
  readonly duration: number
  readonly out: string
  readonly label: string | undefined
  readonly seed: { readonly users: number; readonly running: number; readonly spawns: number }
  readonly runSpawnClients: (hubUrl: string, token: string, total: number, loops: number, prefix: string) => Promise<Record<string, number>>
  readonly progress: (msg: string) => void
}

interface CaseResult { rps: number; p50_ms: number; p90_ms: number; p99_ms: number; max_ms: number; non2xx: number; errors: number; requests: number; hub_cpu_s: number; generator_cpu_s: number }
interface RunResult {
  round: number
  workers: number
  startedAt: string
  loadavg: number[]
  cases: Record<string, CaseResult>
  spawn: { spawns: number; seconds: number; per_second: number; statuses: Record<string, number> } | { error: string }
}

const CLI = 'dist/cli/fleethub.js'
const TICKS = 100 // USER_HZ
const STOP_GRACE_MS = 60_000

/** CPU seconds used so far by `root` and every descendant (processes that exited are not counted). */
function treeCpuSeconds(root: number | undefined): number {
  if (root === undefined) return 0
  let ticks = 0
  const stack = [root]
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const pid = stack.pop()!
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12])
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim()
        if (kids) stack.push(...kids.split(' ').map(Number))
      }
    } catch { /* exited */ }
  }
  return ticks / TICKS
}

const generatorCpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

/** A hub child that prints `{"hubUrl": …}` (instant-hub.ts) or answers /hub/health (the CLI) once ready. */
async function waitReady(child: ChildProcess, healthUrl: string | undefined, what: string): Promise<string> {
  const deadline = Date.now() + 120_000
  if (!healthUrl) {
    let out = ''
    child.stdout!.on('data', d => { out += String(d) })
    while (Date.now() < deadline && child.exitCode === null && !out.includes('\n')) await new Promise(r => setTimeout(r, 100))
    const line = out.split('\n')[0]
    if (!line) throw new Error(`${what} did not start (exit ${child.exitCode})`)
    return (JSON.parse(line) as { hubUrl: string }).hubUrl
  }
  while (Date.now() < deadline && child.exitCode === null) {
    if (await fetch(healthUrl, { signal: AbortSignal.timeout(2000) }).then(r => r.ok, () => false)) return new URL(healthUrl).origin
    await new Promise(r => setTimeout(r, 100))
  }
  throw new Error(`${what} did not start (exit ${child.exitCode})`)
}

async function stopHub(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = once(child, 'exit')
  process.kill(child.pid, 'SIGTERM')
  const timer = new Promise(r => setTimeout(r, STOP_GRACE_MS).unref())
  if (await Promise.race([exited.then(() => true), timer.then(() => false)])) return
  try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ }
  await Promise.race([exited, new Promise(r => setTimeout(r, 5000).unref())])
}

export async function compareWorkers(o: CompareWorkersOptions): Promise<void> {
  const counts = o.workers.split(',').map(Number)
  if (counts.some(n => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error(`--workers: a list of integers 1..16, got ${JSON.stringify(o.workers)}`)
  const rounds = Number(o.rounds)
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(`--rounds: 1..20, got ${JSON.stringify(o.rounds)}`)
  const log = createLogger('warn')
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-bench-workers-'))
  await fs.chmod(dir, 0o755) // the embedded Postgres runs as another OS user and must enter it
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log, settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '300' } })
  const { db } = createDb({ url: pg.url, poolSize: 4 })
  const runs: RunResult[] = []
  const startedAt = new Date().toISOString()
  const loadStart = os.loadavg()
  const children = new Set<ChildProcess>()
  try {
    await migrateToLatest(db)
    const { users: USERS, running: RUNNING, spawns: SPAWNS } = o.seed
    o.progress(`seeding ${USERS} users, ${RUNNING} running servers`)
    const token = await seedApiBench(db, USERS, RUNNING)
    const cases = apiCases(token, USERS)
    const env = { ...process.env, DATABASE_URL: pg.socketUrl, FLEETHUB_DEV_PASSWORD: 'x'.repeat(12), CONFIGPROXY_AUTH_TOKEN: 'bench-proxy-token-0123456789abcdef' }
    const hubArgs = async (workers: number) => {
      const [port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort()]
      return { hubPort, args: ['hub', '--port', String(port), '--hub-port', String(hubPort), '--proxy-api-url', `http://127.0.0.1:${apiPort}`,
        '--data-dir', dir, '--log-level', 'warn', '--last-activity-interval', '3600', '--no-migrate', '--no-cleanup-servers', '--workers', String(workers),
        // the seeded "running" servers point nowhere: no poll may stop them mid-run
        '--poll-interval', '3600'] }
    }
    for (let round = 1; round <= rounds; round++) {
      for (const workers of counts) {
        const run: RunResult = { round, workers, startedAt: new Date().toISOString(), loadavg: [], cases: {}, spawn: { error: 'not run' } }
        runs.push(run)
        // the API: the real CLI
        const a = await hubArgs(workers)
        const hub = spawn(process.execPath, [CLI, ...a.args], { env, stdio: ['ignore', 'ignore', 'inherit'] })
        children.add(hub)
        try {
          const hubUrl = await waitReady(hub, `http://127.0.0.1:${a.hubPort}/hub/health`, `fleethub hub --workers ${workers}`)
          for (const c of cases) {
            await autocannon({ url: hubUrl, connections: 10, duration: 3, requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }] })
            for (const connections of [10, 50]) {
              o.progress(`round ${round}, ${workers} worker(s): ${c.key} at ${connections} connections for ${o.duration}s`)
              const hub0 = treeCpuSeconds(hub.pid), gen0 = generatorCpuSeconds()
              const r = await autocannon({ url: hubUrl, connections, duration: o.duration, requests: [{ setupRequest: req => ({ ...req, ...c.request() }) }] })
              run.cases[`${c.key}_c${connections}`] = {
                rps: Math.round(r.requests.average), p50_ms: r.latency.p50, p90_ms: r.latency.p90, p99_ms: r.latency.p99, max_ms: r.latency.max,
                non2xx: r.non2xx, errors: r.errors, requests: r.requests.total,
                hub_cpu_s: Math.round((treeCpuSeconds(hub.pid) - hub0) * 100) / 100, generator_cpu_s: Math.round((generatorCpuSeconds() - gen0) * 100) / 100,
              }
            }
          }
        } finally {
          await stopHub(hub)
          children.delete(hub)
        }
        // spawns/s: the same hub path with the instant spawner
        const prefix = `spawn${round}w${workers}x`
        await sql`insert into users (name) select ${prefix} || i from generate_series(1, ${SPAWNS}) as i`.execute(db)
        const b = await hubArgs(workers)
        const ih = spawn(process.execPath, ['--import', 'tsx', 'hub/bench/instant-hub.ts', ...b.args.slice(1), '--concurrent-spawn-limit', '100'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
        children.add(ih)
        try {
          const hubUrl = await waitReady(ih, undefined, `instant hub --workers ${workers}`)
          o.progress(`round ${round}, ${workers} worker(s): ${SPAWNS} spawns with the instant spawner`)
          const t0 = performance.now()
          const statuses = await o.runSpawnClients(hubUrl, token, SPAWNS, 50, prefix)
          let ready = 0
          for (let i = 0; i < 1200 && ready < SPAWNS; i++) {
            const r = await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select(sql<string>`count(*)`.as('n'))
              .where('servers.state', '=', 'running').where('users.name', 'like', `${prefix}%`).executeTakeFirstOrThrow()
            ready = Number(r.n)
            if (ready < SPAWNS) await new Promise(r => setTimeout(r, 50))
          }
          const seconds = (performance.now() - t0) / 1000
          run.spawn = ready < SPAWNS
            ? { error: `${ready} of ${SPAWNS} running after ${seconds.toFixed(1)} s` }
            : { spawns: SPAWNS, seconds: Number(seconds.toFixed(2)), per_second: Math.round(SPAWNS / seconds), statuses }
        } catch (err) {
          run.spawn = { error: err instanceof Error ? err.message : String(err) }
        } finally {
          await stopHub(ih)
          children.delete(ih)
          await sql`delete from users where name like ${`${prefix}%`}`.execute(db)
        }
        run.loadavg = os.loadavg().map(l => Math.round(l * 100) / 100)
      }
    }
  } finally {
    for (const c of children) await stopHub(c)
    await db.destroy()
    await pg.stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
  await writeWorkersReport(o, counts, rounds, runs, { startedAt, loadStart })
}

const median = (xs: number[]) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function writeWorkersReport(o: CompareWorkersOptions, counts: number[], rounds: number, runs: RunResult[], t: { startedAt: string; loadStart: number[] }): Promise<void> {
  const date = new Date().toISOString().slice(0, 10)
  const out = path.join(o.out, `hub-workers-${date}${o.label ? `-${o.label}` : ''}`)
  await fs.mkdir(out, { recursive: true })
  const command = `npm run bench:hub -- --workers ${o.workers} --rounds ${rounds} --duration ${o.duration}${o.label ? ` --label ${o.label}` : ''}`
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version,
    loadavg_start: t.loadStart.map(l => Math.round(l * 100) / 100), loadavg_end: os.loadavg().map(l => Math.round(l * 100) / 100) }
  const keys = [...new Set(runs.flatMap(r => Object.keys(r.cases)))]
  // per worker count: the median over rounds of each figure
  const summary: Record<string, Record<string, number>> = {}
  for (const w of counts) {
    const mine = runs.filter(r => r.workers === w)
    const s: Record<string, number> = {}
    for (const k of keys) {
      const xs = mine.map(r => r.cases[k]).filter((x): x is CaseResult => x !== undefined)
      s[`${k}_rps`] = median(xs.map(x => x.rps)); s[`${k}_p99_ms`] = median(xs.map(x => x.p99_ms))
      s[`${k}_hub_cpu_s_per_1000`] = Math.round(median(xs.map(x => x.hub_cpu_s / Math.max(1, x.requests) * 1000)) * 1000) / 1000
      s[`${k}_non2xx_errors`] = xs.reduce((a, x) => a + x.non2xx + x.errors, 0)
    }
    const sp = mine.map(r => r.spawn).filter((x): x is Extract<RunResult['spawn'], { per_second: number }> => 'per_second' in x)
    s.spawns_per_second = median(sp.map(x => x.per_second))
    s.spawn_runs_failed = mine.length - sp.length
    summary[String(w)] = s
  }
  await fs.writeFile(path.join(out, 'result.json'), JSON.stringify({ date: new Date().toISOString(), startedAt: t.startedAt, command, machine, workers: counts, rounds, duration_s: o.duration,
    seed: o.seed, summary_median_over_rounds: summary, runs }, null, 2) + '\n')
  const LABELS: Record<string, string> = { get_user: 'GET /users/<name>', activity: 'POST /users/<name>/activity', token_check: 'GET /user (token check)', list_ready: 'GET /users?state=ready (page of 50)' }
  const label = (k: string) => { const m = /^(.*)_c(\d+)$/.exec(k)!; return `${LABELS[m[1]!] ?? m[1]}, ${m[2]} conn` }
  const head = counts.map(w => `${w} worker${w > 1 ? 's' : ''}`)
  const md = [`# Hub API with ${counts.join(' and ')} hub workers, ${date}`, '',
    `Command: \`${command}\` (hub/bench/api.bench.ts, hub/bench/api-workers.ts). ${o.seed.users} users and ${o.seed.running} running servers in the database`,
    `(embedded PostgreSQL, fsync off), seeded once. ${rounds} round(s); in each, every worker count in turn (${counts.join(', ')}), a fresh hub each time:`,
    `\`node dist/cli/fleethub.js hub --workers N\` under autocannon from the bench process against the hub port, ${o.duration} s per row after 3 s of warm-up;`,
    `then ${o.seed.spawns} spawns from 50 loops in a child process against the same hub path with the instant spawner (hub/bench/instant-hub.ts).`,
    `Machine: ${machine.cpus} cores (${machine.cpu}), ${machine.memory_gib} GiB, Node ${machine.node}; load average ${machine.loadavg_start.join(' ')} at the start, ${machine.loadavg_end.join(' ')} at the end`,
    '(autocannon, the hub\'s processes and Postgres share these cores: the generator\'s CPU is in result.json per row).', '',
    '## Median over rounds', '',
    `| figure | ${head.join(' | ')} |`, `| --- | ${counts.map(() => '---:').join(' | ')} |`,
    ...keys.flatMap(k => [
      `| ${label(k)}: req/s | ${counts.map(w => summary[String(w)]![`${k}_rps`]).join(' | ')} |`,
      `| ${label(k)}: p99 ms | ${counts.map(w => summary[String(w)]![`${k}_p99_ms`]).join(' | ')} |`,
      `| ${label(k)}: hub CPU s per 1,000 req | ${counts.map(w => summary[String(w)]![`${k}_hub_cpu_s_per_1000`]).join(' | ')} |`,
    ]),
    `| spawns/s (instant spawner) | ${counts.map(w => summary[String(w)]!.spawns_per_second).join(' | ')} |`,
    `| non-2xx + errors (all rows), failed spawn runs | ${counts.map(w => { const s = summary[String(w)]!; return `${keys.reduce((a, k) => a + (s[`${k}_non2xx_errors`] ?? 0), 0)}, ${s.spawn_runs_failed}` }).join(' | ')} |`,
    '', '## Every run', '',
    '| round | workers | started | endpoint | req/s | p50 ms | p99 ms | max ms | non-2xx | errors | hub CPU s | generator CPU s |',
    '| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.flatMap(r => Object.entries(r.cases).map(([k, c]) => `| ${r.round} | ${r.workers} | ${r.startedAt.slice(11, 19)} | ${label(k)} | ${c.rps} | ${c.p50_ms} | ${c.p99_ms} | ${c.max_ms} | ${c.non2xx} | ${c.errors} | ${c.hub_cpu_s} | ${c.generator_cpu_s} |`)),
    '', '| round | workers | spawns/s | seconds | statuses | load average after |', '| ---: | ---: | ---: | ---: | --- | --- |',
    ...runs.map(r => 'per_second' in r.spawn
      ? `| ${r.round} | ${r.workers} | ${r.spawn.per_second} | ${r.spawn.seconds} | ${Object.entries(r.spawn.statuses).map(([k, n]) => `${k}: ${n}`).join(', ')} | ${r.loadavg.join(' ')} |`
      : `| ${r.round} | ${r.workers} | - | - | failed: ${'error' in r.spawn ? r.spawn.error : ''} | ${r.loadavg.join(' ')} |`),
    '']
  await fs.writeFile(path.join(out, 'README.md'), md.join('\n'))
  process.stdout.write(md.join('\n'))
  o.progress(`wrote ${out}/README.md and result.json`)
}
