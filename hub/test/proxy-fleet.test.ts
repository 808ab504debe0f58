/**
 * A fleet of proxies (issue #15): routes live in Postgres and two proxies in route-store mode
 * follow them. One hub (`--proxy-routes db`, its own child proxy "A"), a second proxy "B" as a
 * process of its own (a replica behind the public Service), kube-sim as the cluster.
 *
 * - 1,000 servers started through the hub API: both proxies route every one of them;
 * - in the middle of that class start, A is SIGKILLed: every request through B keeps working,
 *   and A (restarted by the hub, as a Deployment would restart it) comes back with the whole table;
 * - 100 servers stopped: both proxies drop them within one second of the database saying stopped.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { createKubeSim } from '../../kube-sim/src/index.js'
import { createKubernetesSpawner } from '../../spawner/src/kubernetes.js'
import { createLogger } from '../../core/src/log.js'
import { startHub } from '../../hub/src/stack.js'
import { parseHubConfig } from '../../hub/src/config.js'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { createTestDatabase } from '../../test/helpers/db.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { createCuller } from '../../hub/src/culler/culler.js'
import { ensureUser } from '../../hub/src/users/user.repository.js'
import type { Db } from '../../hub/src/db.js'

const SERVERS = 1000
const STOPS = 100
const TOKEN = 'proxy-fleet-token-0123456789'

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
  const t0 = Date.now()
  while (!await fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, everyMs))
  }
  return Date.now() - t0
}

/** The user routes a proxy serves, from its (read-only) REST API. */
async function userRoutes(apiUrl: string): Promise<Set<string>> {
  const res = await fetch(`${apiUrl}/api/routes`, { headers: { authorization: `token ${TOKEN}` } })
  if (res.status !== 200) throw new Error(`GET /api/routes answered ${res.status}`)
  return new Set(Object.keys(await res.json() as object).filter(k => k.startsWith('/user/')))
}

/** Proxy B: `fleethub proxy --routes-from-db` from dist/, as a Deployment would run it. */
async function startProxyB(t: Tap.Test, databaseUrl: string, hubUrl: string) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-proxy-b-'))
  const ready = path.join(dir, 'ready.json')
  const child = spawn(process.execPath, [path.resolve('dist/cli/fleethub.js'), 'proxy', '--routes-from-db', '--ip', '127.0.0.1', '--port', '0',
    '--api-ip', '127.0.0.1', '--api-port', '0', '--default-target', hubUrl, '--ready-file', ready, '--log-level', 'warn'],
  { env: { ...process.env, DATABASE_URL: databaseUrl, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: ['ignore', 'inherit', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = once(child, 'exit')
      child.kill('SIGTERM')
      await gone
    }
    await fs.rm(dir, { recursive: true, force: true })
  })
  await until('proxy B to start', async () => fs.access(ready).then(() => true, () => false), 30_000)
  const info = JSON.parse(await fs.readFile(ready, 'utf8')) as { port: number; apiPort: number }
  return { url: `http://127.0.0.1:${info.port}`, apiUrl: `http://127.0.0.1:${info.apiPort}` }
}

t.test(`two proxies follow ${SERVERS} servers from the database`, async t => {
  const sim = await createKubeSim({ runtime: 'http', pullTime: { min: 0, max: 50 } })
  t.teardown(() => sim.close())
  const { url: databaseUrl, db } = await createTestDatabase(t)
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fleethub-proxy-fleet-'))
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }))
  const log = createLogger('silent')
  const config = parseHubConfig(['--port', '0', '--hub-port', '0', '--proxy-api-url', 'http://127.0.0.1:0', '--data-dir', dataDir, '--no-migrate',
    '--log-level', 'silent', '--no-cleanup-servers', '--last-activity-interval', '3600', '--poll-interval', '3600', '--spawner', 'kubernetes',
    '--proxy-routes', 'db'], { FLEETHUB_DEV_PASSWORD: 'x'.repeat(12), CONFIGPROXY_AUTH_TOKEN: TOKEN })
  const spawner = createKubernetesSpawner({ namespace: 'default', startTimeoutMs: 240_000, apiRateLimit: 200, apiBurst: 200 }, { log, kubeconfigObject: sim.kubeconfig() })
  const hub = await startHub({ config, databaseUrl, log, spawner, slowSpawnTimeoutMs: 0 })
  t.teardown(() => hub.close())
  const a = { url: hub.publicUrl.replace('localhost', '127.0.0.1'), apiUrl: hub.proxyApiUrl }
  const b = await startProxyB(t, databaseUrl, hub.hubUrl)

  const admin = await db.insertInto('users').values({ name: 'admin', admin: true }).returning('id').executeTakeFirstOrThrow()
  const token = (await createToken(db, { kind: 'api', userId: admin.id, scopes: ['inherit'] })).token
  await sql`insert into users (name) select 'k' || i from generate_series(1, ${SERVERS}) as i`.execute(db)
  const running = async () => Number((await sql<{ n: string }>`select count(*) as n from servers where state = 'running'`.execute(db)).rows[0]!.n)

  // the class start, 50 at a time; proxy A dies when half have asked
  let next = 1
  const statuses: number[] = []
  let killed: Promise<void> | undefined
  const startAll = Promise.all(Array.from({ length: 50 }, async () => {
    while (next <= SERVERS) {
      const i = next++
      if (i === SERVERS / 2) killed = killA()
      const res = await fetch(`${hub.hubUrl}/hub/api/users/k${i}/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
      statuses.push(res.status)
      await res.body?.cancel()
    }
  }))

  // Through B, the whole time: servers B routed before the kill keep answering, every one of them.
  const early: string[] = []
  const throughB: number[] = []
  let checking = true
  const checker = (async () => {
    await until('the first servers routed by B', async () => (await userRoutes(b.apiUrl)).size >= 20, 120_000)
    early.push(...[...await userRoutes(b.apiUrl)].slice(0, 20))
    for (let n = 0; checking && n < 100_000; n++) {
      const res = await fetch(`${b.url}${early[n % early.length]}/api/status`).catch(() => undefined)
      throughB.push(res?.status ?? 0)
      await res?.body?.cancel()
      await new Promise(r => setTimeout(r, 5))
    }
  })()

  const aPid = hub.proxy!.pid!
  async function killA(): Promise<void> {
    process.kill(aPid, 'SIGKILL')
    await until('proxy A to be restarted', async () => hub.proxy!.pid !== undefined && hub.proxy!.pid !== aPid && hub.proxy!.endpoints !== undefined, 30_000)
  }

  await startAll
  await killed
  t.same([...new Set(statuses)].filter(s => s !== 201 && s !== 202), [], 'every spawn request accepted')
  const ms = await until(`${SERVERS} running servers`, async () => (await running()) >= SERVERS, 280_000, 200)
  t.equal(await running(), SERVERS, `all ${SERVERS} ready (${(ms / 1000).toFixed(1)} s after the last request)`)
  checking = false
  await checker
  t.ok(throughB.length > 20, `requests went through B during the class start and A's death (${throughB.length})`)
  t.same([...new Set(throughB)], [200], 'every request through B answered 200')
  t.not(hub.proxy!.pid, aPid, 'A was restarted')

  const want = new Set(Array.from({ length: SERVERS }, (_, i) => `/user/k${i + 1}`))
  await until('both proxies to route every server', async () => {
    const [ra, rb] = await Promise.all([userRoutes(a.apiUrl), userRoutes(b.apiUrl)])
    return ra.size === SERVERS && rb.size === SERVERS
  }, 5000)
  const [ra, rb] = await Promise.all([userRoutes(a.apiUrl), userRoutes(b.apiUrl)])
  t.same([...want].filter(p => !ra.has(p)), [], 'the restarted A routes every server')
  t.same([...want].filter(p => !rb.has(p)), [], 'B routes every server')
  for (const p of [a, b]) {
    const res = await fetch(`${p.url}/user/k777/api/status`)
    t.equal(res.status, 200, `k777 answers through ${p === a ? 'A' : 'B'}`)
    await res.body?.cancel()
  }

  // 100 stops: both proxies drop them within a second of the database saying stopped
  const stopped = Array.from({ length: STOPS }, (_, i) => `k${i * 7 + 3}`)
  const stops = await Promise.all(stopped.map(async name => {
    const res = await fetch(`${hub.hubUrl}/hub/api/users/${name}/server`, { method: 'DELETE', headers: { authorization: `token ${token}` } })
    await res.body?.cancel()
    return res.status
  }))
  t.same([...new Set(stops)].filter(s => s !== 204 && s !== 202), [], 'every stop accepted')
  await until('the stops to finish', async () => (await running()) === SERVERS - STOPS, 60_000)
  const stoppedAt = Date.now()
  const dropMs = await until('both proxies to drop the stopped servers', async () => {
    const [ra2, rb2] = await Promise.all([userRoutes(a.apiUrl), userRoutes(b.apiUrl)])
    return stopped.every(n => !ra2.has(`/user/${n}`) && !rb2.has(`/user/${n}`))
  }, 5000, 20)
  t.ok(Date.now() - stoppedAt < 1000, `both dropped every stopped server within a second (${dropMs} ms after the database said stopped)`)
  const res = await fetch(`${b.url}/user/${stopped[0]}/api/status`, { redirect: 'manual' })
  await res.body?.cancel()
  t.not(res.status, 200, 'a stopped server is not reached through B')
})

t.test('activity through either proxy reaches the database and keeps the culler away', async t => {
  const hub = await startTestHub(t, { args: ['--proxy-routes', 'db', '--no-cull-idle', '--cull-timeout', '60'], env: { CONFIGPROXY_AUTH_TOKEN: TOKEN } })
  const b = await startProxyB(t, hub.databaseUrl, hub.hubUrl)
  const admin = await tokenFor(hub, 'root', true)
  const tokens = { alice: await tokenFor(hub, 'alice'), bob: await tokenFor(hub, 'bob'), carol: await tokenFor(hub, 'carol') }
  for (const name of ['alice', 'bob', 'carol']) {
    const res = await fetch(`${hub.hubUrl}/hub/api/users/${name}/server`, { method: 'POST', headers: { authorization: `token ${admin}` } })
    await res.body?.cancel()
    await until(`${name} running`, async () => (await stateOf(hub.db, name)) === 'running', 30_000)
  }
  // every server idle for an hour, its own start-up reports included
  await new Promise(r => setTimeout(r, 1500))
  await hub.ctx.activity.flush()
  await sql`update servers set last_activity = now() - interval '1 hour', started = now() - interval '2 hours'`.execute(hub.db)
  await sql`update users set last_activity = now() - interval '1 hour'`.execute(hub.db)
  const since = Date.now()
  // bob through the hub's own proxy, carol through B, each signed in as themselves
  for (const [name, base] of [['bob', hub.publicUrl], ['carol', b.url]] as const) {
    const res = await fetch(`${base}/user/${name}/api/status`, { headers: { authorization: `token ${tokens[name]}` } })
    await res.body?.cancel()
    t.equal(res.status, 200, `${name} reaches their server`)
  }
  await until('the proxies to write the activity', async () => {
    const { rows } = await sql<{ name: string; t: Date }>`select u.name, s.last_activity as t from servers s join users u on u.id = s.user_id`.execute(hub.db)
    return rows.filter(r => r.t.getTime() >= since - 1000).map(r => r.name).sort().join() === 'bob,carol'
  }, 5000)
  t.pass('bob\'s and carol\'s servers were active, through either proxy; alice\'s stayed idle')

  const culler = createCuller(hub.ctx, { timeout: 60, every: 3600, maxAge: 0, cullUsers: false, concurrency: 1, cullAdminUsers: true, removeNamedServers: false })
  t.teardown(() => culler.close())
  const report = await culler.sweep({ by: 'api' })
  t.same(report.actions.map(a => `${a.userName}:${a.action}`), ['alice:stopped'], 'only alice is culled')
  t.equal(await stateOf(hub.db, 'bob'), 'running')
  t.equal(await stateOf(hub.db, 'carol'), 'running')
  t.equal(await stateOf(hub.db, 'alice'), 'stopped')
  t.ok(await until('alice\'s route to leave B', async () => !(await userRoutes(b.apiUrl)).has('/user/alice'), 1000) >= 0, 'and her route is gone from B')
})

async function tokenFor(hub: TestHub, name: string, admin = false): Promise<string> {
  const user = await ensureUser(hub.db, name, { admin })
  return (await createToken(hub.db, { kind: 'api', userId: user.id, scopes: ['inherit'], note: 'proxy fleet test' })).token
}

async function stateOf(db: Db, name: string): Promise<string | undefined> {
  const row = await db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select('servers.state')
    .where('users.name', '=', name).where('servers.name', '=', '').executeTakeFirst()
  return row?.state
}

t.test('--proxies 2: a user reaches their server through either proxy process', async t => {
  const hub = await startTestHub(t, { args: ['--proxies', '2'], env: { CONFIGPROXY_AUTH_TOKEN: TOKEN } })
  t.equal(hub.config.proxyRoutes, 'db', '--proxies 2 implies routes in the database')
  const admin = await tokenFor(hub, 'root', true)
  const alice = await tokenFor(hub, 'alice')
  const res = await fetch(`${hub.hubUrl}/hub/api/users/alice/server`, { method: 'POST', headers: { authorization: `token ${admin}` } })
  await res.body?.cancel()
  await until('alice running', async () => (await stateOf(hub.db, 'alice')) === 'running', 30_000)
  const boots = new Set<string>()
  const statuses = new Set<number>()
  for (let i = 0; i < 200 && boots.size < 2; i++) {
    // a new connection each time, so either worker may take it
    const health = await fetch(`${hub.publicUrl}/_chp_healthz`, { headers: { connection: 'close' } })
    boots.add((await health.json() as { bootId: string }).bootId)
    const page = await fetch(`${hub.publicUrl}/user/alice/api/status`, { headers: { authorization: `token ${alice}`, connection: 'close' } })
    await page.body?.cancel()
    statuses.add(page.status)
  }
  t.equal(boots.size, 2, 'two proxy processes answer on the public port')
  t.same([...statuses], [200], 'alice reaches her server through both')
})
