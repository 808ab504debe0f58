/**
 * `npm run bench:route-propagation`: during a class start of N users (default 1,000; the hub API
 * asked 50 at a time, kube-sim as the cluster), the time from a spawn being marked ready in the
 * database (`servers.updated` of its pending -> running statement) to each of two route-store
 * proxies applying its route (the proxy's own debug log line, same machine clock): p50, p99, max,
 * per proxy and for both.
 *
 *   npm run bench:route-propagation -- [--users N] [--out NAME]
 *
 * The proxies run from dist/ (run `npm run build` first); the hub and kube-sim in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { createLogger } from '../../core/src/log.js'
import { startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { createKubernetesSpawner } from '../../spawner/src/kubernetes.js'
import { createDb, migrateToLatest } from '../src/db.js'
import { parseHubConfig } from '../src/config.js'
import { startHub } from '../src/stack.js'
import { createToken } from '../src/tokens/token.repository.js'

const { values } = parseArgs({ options: { users: { type: 'string', default: '1000' }, out: { type: 'string' } } })
const USERS = Number(values.users)
const TOKEN = 'propagation-bench-token'
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]! }

interface Proxy { name: string; child: ChildProcess; url: string; apiUrl: string; applied: Map<string, number> }

async function startProxy(name: string, databaseUrl: string, hubUrl: string, dir: string): Promise<Proxy> {
  const ready = path.join(dir, `${name}-ready.json`)
  const child = spawn(process.execPath, [path.join(REPO, 'dist/proxy/src/main.js'), '--routes-from-db', '--ip', '127.0.0.1', '--port', '0',
    '--api-ip', '127.0.0.1', '--api-port', '0', '--default-target', hubUrl, '--ready-file', ready, '--log-level', 'debug'],
  { env: { ...process.env, DATABASE_URL: databaseUrl, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] })
  const applied = new Map<string, number>()
  let buffered = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (buffered + chunk).split('\n')
    buffered = lines.pop()!
    for (const line of lines) {
      if (!line.includes('route change applied')) continue
      const m = JSON.parse(line) as { time: number; op: string; path: string }
      if (m.op === 'set' && !applied.has(m.path)) applied.set(m.path, m.time)
    }
  })
  for (let i = 0; i < 600 && !fs.existsSync(ready); i++) await new Promise(r => setTimeout(r, 50))
  const info = JSON.parse(fs.readFileSync(ready, 'utf8')) as { port: number; apiPort: number }
  return { name, child, applied, url: `http://127.0.0.1:${info.port}`, apiUrl: `http://127.0.0.1:${info.apiPort}` }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleethub-propagation-bench-'))
fs.chmodSync(dir, 0o755) // the embedded Postgres runs as its own OS user when we are root
const silent = createLogger('silent')
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: silent })
const { db } = createDb({ url: postgres.url, poolSize: 4 })
await migrateToLatest(db)
const sim = await createKubeSim({ runtime: 'http', pullTime: { min: 0, max: 50 } })
const proxies: Proxy[] = []
let hub: Awaited<ReturnType<typeof startHub>> | undefined
try {
  const hubPort = 18000 + Math.floor(Math.random() * 1000)
  const hubUrl = `http://127.0.0.1:${hubPort}`
  proxies.push(await startProxy('A', postgres.url, hubUrl, dir), await startProxy('B', postgres.url, hubUrl, dir))
  const config = parseHubConfig(['--port', '0', '--hub-port', String(hubPort), '--proxy', 'external', '--proxy-api-url', proxies[0]!.apiUrl,
    '--proxy-routes', 'db', '--data-dir', path.join(dir, 'data'), '--no-migrate', '--log-level', 'silent', '--no-cleanup-servers',
    '--spawner', 'kubernetes', '--concurrent-spawn-limit', '200'], { FLEETHUB_DEV_PASSWORD: 'x'.repeat(12), CONFIGPROXY_AUTH_TOKEN: TOKEN })
  const spawner = createKubernetesSpawner({ namespace: 'default', startTimeoutMs: 240_000, apiRateLimit: 200, apiBurst: 200 }, { log: silent, kubeconfigObject: sim.kubeconfig() })
  hub = await startHub({ config, databaseUrl: postgres.url, log: silent, spawner, slowSpawnTimeoutMs: 0 })
  const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
  const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  await sql`insert into users (name) select 'k' || i from generate_series(1, ${USERS}) as i`.execute(db)

  log(`class start: ${USERS} spawns, 50 at a time`)
  const t0 = Date.now()
  let next = 1
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next <= USERS) {
      const i = next++
      const res = await fetch(`${hub!.hubUrl}/hub/api/users/k${i}/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
      await res.body?.cancel()
    }
  }))
  const running = async () => Number((await sql<{ n: string }>`select count(*) as n from servers where state = 'running'`.execute(db)).rows[0]!.n)
  for (let i = 0; i < 1200 && await running() < USERS; i++) await new Promise(r => setTimeout(r, 250))
  const classMs = Date.now() - t0
  await new Promise(r => setTimeout(r, 1000))
  const { rows } = await sql<{ name: string; at: string }>`select u.name, (extract(epoch from s.updated) * 1000)::float8 as at
    from servers s join users u on u.id = s.user_id where s.state = 'running'`.execute(db)
  const per = (p: Proxy) => rows.map(r => (p.applied.get(`/user/${r.name}`) ?? NaN) - Number(r.at))
  const a = per(proxies[0]!)
  const b = per(proxies[1]!)
  const both = a.map((x, i) => Math.max(x, b[i]!))
  const missing = both.filter(x => Number.isNaN(x)).length
  const summary = (xs: number[]) => { const ok = xs.filter(x => !Number.isNaN(x)); const r1 = (x: number) => Math.round(x * 10) / 10; return { n: ok.length, p50: r1(pct(ok, 0.5)), p99: r1(pct(ok, 0.99)), max: r1(pct(ok, 1)) } }
  const result = { A: summary(a), B: summary(b), both: summary(both), missing, running: rows.length, classMs }
  const command = `npm run bench:route-propagation -- ${process.argv.slice(2).join(' ')}`.trim()
  const date = new Date().toISOString().slice(0, 10)
  const out = path.join(REPO, 'bench-results', values.out ?? `${date}-route-propagation`)
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify({ command, date: new Date().toISOString(), cpus: os.cpus().length, users: USERS, ...result }, null, 2) + '\n')
  const md = [
    `# Route propagation during a class start (${date})`, '',
    `Command: \`${command}\` (${os.cpus().length} cores; ${USERS} spawns through the hub API 50 at a time on kube-sim, all ${rows.length} running after ${(classMs / 1000).toFixed(1)} s; two route-store proxies)`, '',
    'From the server marked running in the database to the proxy applying its route (ms):', '',
    '| proxy | routes | p50 | p99 | max |', '| --- | ---: | ---: | ---: | ---: |',
    ...(['A', 'B', 'both'] as const).map(k => `| ${k === 'both' ? 'both (the later of the two)' : k} | ${result[k].n} | ${result[k].p50} | ${result[k].p99} | ${result[k].max} |`),
    '', `Routes never applied: ${missing}.`, '',
  ].join('\n')
  fs.writeFileSync(path.join(out, 'report.md'), md)
  process.stdout.write(md)
} finally {
  await hub?.close()
  for (const p of proxies) p.child.kill('SIGTERM')
  await sim.close()
  await db.destroy()
  await postgres.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
