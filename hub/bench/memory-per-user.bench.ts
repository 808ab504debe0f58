/**
 * What the hub's memory grows by per user (issue #16): a hub process (`fleethub start --workers 1
 * --spawner kubernetes`, run from source under tsx, its own process so that nothing of the bench or
 * the cluster is counted) against a kube-sim in this process (the 'http' runtime: each pod a tiny
 * server on its own loopback address). At each user count the new users do what a browser and its
 * server do: the login form (a session cookie), POST .../server, the progress stream to `ready`, a
 * page through the proxy, `GET /hub/api/user` with the cookie, and the server's activity report with
 * the server's own token (as jupyterhub-singleuser sends it). Then, through the inspector, two full
 * GCs and the process's `memoryUsage()`; with --snapshots, a heap snapshot too, and the diff of the
 * first and the last by constructor (heap-snapshot-diff.ts).
 *
 *   node --import tsx hub/bench/memory-per-user.bench.ts [--users 200,1000,2000] [--snapshots] [--from source|dist] [--out dir]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freeLowPort, startEmbeddedPostgres } from '../../core/src/embedded-postgres.js'
import { createLogger } from '../../core/src/log.js'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { createDb, migrateToLatest } from '../src/db.js'
import { createToken } from '../src/tokens/token.repository.js'
import { connectInspector, type Inspector } from './inspector-client.js'
import { diffSnapshots, summariseSnapshot, type SnapshotSummary } from './heap-snapshot-diff.js'

const { values } = parseArgs({ options: {
  users: { type: 'string', default: '200,1000,2000' }, snapshots: { type: 'boolean', default: false },
  concurrency: { type: 'string', default: '25' }, out: { type: 'string' }, from: { type: 'string', default: 'source' },
} })
const STEPS = values.users.split(',').map(Number)
const CONCURRENCY = Number(values.concurrency)
const ROOT = path.resolve(import.meta.dirname, '../..')
const log = (msg: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }
const mb = (bytes: number): number => Math.round(bytes / 1048576 * 10) / 10

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-memory-bench-'))
await fs.chmod(dir, 0o755) // the embedded Postgres runs as its own OS user when we are root
const silent = createLogger('silent')
const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pgdata'), log: silent, settings: { fsync: 'off', synchronous_commit: 'off', max_connections: '200' } })
const { db } = createDb({ url: pg.url, poolSize: 2 })
await migrateToLatest(db)
const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
const adminToken = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
const maxUsers = Math.max(...STEPS)
const sim = await createKubeSim({ runtime: 'http', nodes: { count: Math.max(10, Math.ceil(maxUsers * 1.2 / 110)), pods: 110 } })
const kubeconfig = path.join(dir, 'kubeconfig.json')
await sim.writeKubeconfig(kubeconfig)

const password = randomBytes(12).toString('hex')
const [port, hubPort, apiPort] = [await freeLowPort(), await freeLowPort(), await freeLowPort()]
const base = `http://127.0.0.1:${port}`
let hub: ChildProcess | undefined
let inspector: Inspector | undefined

/** The hub under test, with its inspector on a free port; resolves with the inspector's URL. */
async function startHubProcess(): Promise<string> {
  // from source (tsx: what the working tree says, plus the loader's ~constant cost) or the last build
  const entry = values.from === 'dist' ? [path.join(ROOT, 'dist/cli/fleethub.js')] : ['--import', 'tsx', path.join(ROOT, 'cli/fleethub.ts')]
  const args = ['--inspect=127.0.0.1:0', ...entry, 'start',
    '--port', String(port), '--hub-port', String(hubPort), '--proxy-api-url', `http://127.0.0.1:${apiPort}`,
    '--data-dir', path.join(dir, 'data'), '--log-level', 'warn', '--admin-users', 'admin', '--no-cull-idle',
    '--concurrent-spawn-limit', '100', '--start-timeout', '120', '--workers', '1', '--spawner', 'kubernetes']
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DATABASE_URL: pg.socketUrl, FLEETHUB_DEV_PASSWORD: password, CONFIGPROXY_AUTH_TOKEN: randomBytes(24).toString('hex'), KUBECONFIG: kubeconfig } })
  hub = child
  let err = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-20_000)
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(err)
      if (m) resolve(m[1]!)
    })
    child.once('exit', code => reject(new Error(`the hub exited (${code}): ${err}`)))
  })
  child.stderr!.on('data', (b: Buffer) => { if (/error|fatal/i.test(b.toString())) process.stderr.write(b) })
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${base}/hub/health`).then(r => r.ok, () => false)) return url
    await new Promise(r => setTimeout(r, 200))
  }
  throw new Error(`the hub did not answer on ${base}: ${err}`)
}

/** One user's visit, as a browser and its server would make it. */
async function visit(name: string, serverTokens: (user: string) => Promise<string | undefined>): Promise<void> {
  const jar = new Map<string, string>()
  const req = async (method: string, p: string, init: { body?: string; headers?: Record<string, string> } = {}) => {
    const res = await fetch(`${base}${p}`, { method, redirect: 'manual', body: init.body,
      headers: { ...init.headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } })
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';'); const i = pair.indexOf('=')
      if (i > 0) jar.set(pair.slice(0, i), pair.slice(i + 1))
    }
    return { status: res.status, body: await res.text() }
  }
  const page = await req('GET', '/hub/login')
  const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page.body)?.[1] ?? ''
  const login = await req('POST', '/hub/login', { body: new URLSearchParams({ _xsrf: xsrf, username: name, password }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base } })
  if (login.status !== 302) throw new Error(`login ${name}: ${login.status}`)
  const referer = `${base}/hub/home`
  const api = `/hub/api/users/${name}/server`
  for (let i = 0; ; i++) {
    const res = await req('POST', api, { headers: { referer } })
    // 503 HUB_NOT_READY: a heap snapshot stops the hub long enough for its fleet lease to lapse
    if (res.status === 201 || (res.status === 400 && res.body.includes('HUB_SERVER_ALREADY_RUNNING'))) break
    if (res.status === 202) {
      const progress = await req('GET', `${api}/progress`, { headers: { referer, accept: 'text/event-stream' } })
      if (progress.body.includes('"ready":true')) break
    } else if ((res.status !== 429 && res.status !== 503) || i > 200) throw new Error(`spawn ${name}: ${res.status} ${res.body.slice(0, 200)}`)
    await new Promise(r => setTimeout(r, 500))
  }
  const through = await req('GET', `/user/${name}/`)
  if (through.status !== 200) throw new Error(`GET /user/${name}/ through the proxy: ${through.status}`)
  const me = await req('GET', '/hub/api/user', { headers: { referer } })
  if (me.status !== 200) throw new Error(`GET /hub/api/user as ${name}: ${me.status}`)
  // the pod's env, once the cluster's LIST shows it (not the whole visit again: that would log in twice)
  let token: string | undefined
  for (let i = 0; i < 100 && !(token = await serverTokens(name)); i++) await new Promise(r => setTimeout(r, 200))
  if (!token) throw new Error(`no pod with a token for ${name}`)
  const now = new Date().toISOString()
  const act = await fetch(`${base}/hub/api/users/${name}/activity`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ last_activity: now, servers: { '': { last_activity: now } } }) })
  if (act.status !== 200) throw new Error(`activity ${name}: ${act.status}`)
}

/** Each pod's JUPYTERHUB_API_TOKEN by user, read from the cluster (one LIST per batch of visits). */
function podTokens(): (user: string) => Promise<string | undefined> {
  let cached: Promise<Map<string, string>> | undefined
  let at = 0
  return async user => {
    if (!cached || (Date.now() - at > 500 && !(await cached).has(user))) {
      at = Date.now()
      cached = fetch(`${sim.url}/api/v1/pods`).then(r => r.json() as Promise<{ items: any[] }>).then(list => new Map(list.items.flatMap(pod => {
        const env: Array<{ name: string; value?: string }> = pod.spec?.containers?.[0]?.env ?? []
        const get = (k: string) => env.find(e => e.name === k)?.value
        const user = get('JUPYTERHUB_USER'), token = get('JUPYTERHUB_API_TOKEN')
        return user && token ? [[user, token] as [string, string]] : []
      })))
    }
    return (await cached).get(user)
  }
}

async function addUsers(from: number, to: number): Promise<void> {
  let next = from
  const tokens = podTokens()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < to) {
      const name = `u${next++}`
      for (let attempt = 0; ; attempt++) {
        try { await visit(name, tokens); break } catch (err) {
          if (attempt >= 4) throw err
          log(`retrying ${name}: ${(err as Error).message}`)
          await new Promise(r => setTimeout(r, 1000))
        }
      }
    }
  }))
}

interface Step { users: number; rssBeforeGcMb: number; heapUsedBeforeGcMb: number; rssMb: number; heapUsedMb: number; heapTotalMb: number; externalMb: number; arrayBuffersMb: number; seconds: number }
const steps: Step[] = []
const summaries: SnapshotSummary[] = []
try {
  inspector = await connectInspector(await startHubProcess())
  let users = 0
  for (const target of STEPS) {
    const t0 = performance.now()
    await addUsers(users, target)
    users = target
    // activity and route polls settle, streams end, timers fire once
    await new Promise(r => setTimeout(r, 5000))
    const live = await inspector.memory()
    const mem = await inspector.memoryAfterGc()
    const step = { users, rssBeforeGcMb: mb(live.rss), heapUsedBeforeGcMb: mb(live.heapUsed), rssMb: mb(mem.rss), heapUsedMb: mb(mem.heapUsed), heapTotalMb: mb(mem.heapTotal), externalMb: mb(mem.external), arrayBuffersMb: mb(mem.arrayBuffers), seconds: Math.round((performance.now() - t0) / 1000) }
    steps.push(step)
    log(`${users} users: rss ${step.rssBeforeGcMb} MB before GC, ${step.rssMb} MB after, heap after GC ${step.heapUsedMb} MB, external ${step.externalMb} MB (${step.seconds} s)`)
    if (values.snapshots) summaries.push(summariseSnapshot(JSON.parse(await inspector.heapSnapshot())))
  }
  const perThousand = steps.slice(1).map((s, i) => {
    const prev = steps[i]!, k = (s.users - prev.users) / 1000
    // a heap snapshot costs the process RSS it keeps: with --snapshots, read only the heap figures
    return { from: prev.users, to: s.users, rssMbPer1000: Math.round((s.rssMb - prev.rssMb) / k * 10) / 10, heapMbPer1000: Math.round((s.heapUsedMb - prev.heapUsedMb) / k * 10) / 10 }
  })
  const diff = summaries.length >= 2 ? diffSnapshots(summaries[0]!, summaries[summaries.length - 1]!, STEPS[STEPS.length - 1]! - STEPS[0]!) : undefined
  const out = { command: `node --import tsx hub/bench/memory-per-user.bench.ts ${process.argv.slice(2).join(' ')}`.trim(), steps, perThousand, diff }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
  if (values.out) { await fs.mkdir(values.out, { recursive: true }); await fs.writeFile(path.join(values.out, 'result.json'), JSON.stringify(out, null, 2) + '\n') }
} finally {
  inspector?.close()
  if (hub && hub.exitCode === null) { const exited = once(hub, 'exit'); hub.kill('SIGINT'); await Promise.race([exited, new Promise(r => setTimeout(r, 30_000))]) }
  await sim.close()
  await db.destroy()
  await pg.stop()
  await fs.rm(dir, { recursive: true, force: true })
}
