/**
 * `fleethub cull` (the compiled CLI, run as a child process) against a real hub over its REST API
 * only. Needs `npm run build` first (`npm test` does). A small real HTTP front that answers 503
 * and 429 once before passing requests on checks the bounded retries.
 */
import t from 'tap'
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import type { Spawner, SpawnerState } from '../../spawner/src/index.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { createToken } from '../src/tokens/token.repository.js'
import { waitFor } from '../../test/helpers/wait.js'

const CLI = path.resolve(import.meta.dirname, '../../dist/cli/fleethub.js')

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'cull', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = '', err = ''
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', code => { clearTimeout(timer); resolve({ code, out, err }) })
  })
}

async function adminToken(hub: TestHub): Promise<string> {
  const root = await ensureUser(hub.db, 'root', { admin: true })
  return (await createToken(hub.db, { kind: 'api', userId: root.id, scopes: ['inherit'] })).token
}


const serverState = async (hub: TestHub, user: string, name = '') => (await hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
  .select(['servers.state', 'servers.spawner_state']).where('users.name', '=', user).where('servers.name', '=', name).executeTakeFirst())

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

/** A real HTTP front for the hub that fails the first GET /users with 503 and the first DELETE with 429. */
async function flakyFront(t: { teardown(fn: () => unknown): void }, hubUrl: string) {
  const target = new URL(hubUrl)
  const seen = { failed503: 0, failed429: 0, passed: 0 }
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.includes('/users?') && seen.failed503 === 0) {
      seen.failed503++
      return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"status": 503, "message": "try later"}')
    }
    if (req.method === 'DELETE' && seen.failed429 === 0) {
      seen.failed429++
      return void req.resume().on('end', () => res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"status": 429, "message": "slow down"}'))
    }
    seen.passed++
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, r => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise(r => { server.close(r); server.closeAllConnections() }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('stops the idle server through the API; a dry run changes nothing; 503 and 429 are retried', async t => {
  const hub = await startTestHub(t, { args: ['--no-cull-idle'] })
  const token = await adminToken(hub)
  for (const user of ['alice', 'bob']) {
    await ensureUser(hub.db, user)
    const res = await fetch(`${hub.hubUrl}/hub/api/users/${user}/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
    t.ok(res.status === 201 || res.status === 202, `${user} spawning`)
    await waitFor(`${user} running and reporting`, async () => {
      const u = await hub.db.selectFrom('users').select('last_activity').where('name', '=', user).executeTakeFirst()
      return (await serverState(hub, user))?.state === 'running' && u?.last_activity ? true : undefined
    })
  }
  await new Promise(r => setTimeout(r, 300)) // the server's first report is flushed with its user's
  await sql`update servers s set last_activity = now() - interval '2 hours' from users u where u.id = s.user_id and u.name = 'alice'`.execute(hub.db)
  const alicePid = Number(((await serverState(hub, 'alice'))!.spawner_state as { pid?: number }).pid)

  const dry = await runCli(['--url', `${hub.hubUrl}/hub/api`, '--once', '--dry-run'], { JUPYTERHUB_API_TOKEN: token })
  t.equal(dry.code, 0, dry.err)
  t.match(dry.out, /would stop alice\/ \(idle 7\d{3} s\)/)
  t.notMatch(dry.out, /bob/)
  t.match(dry.out, /summary: 2 servers checked, 0 stopped/)
  t.equal((await serverState(hub, 'alice'))?.state, 'running', 'the dry run stopped nothing')
  t.ok(alive(alicePid))

  const front = await flakyFront(t, hub.hubUrl)
  const real = await runCli(['--url', `${front.url}/hub/api`, '--once'], { JUPYTERHUB_API_TOKEN: token })
  t.equal(real.code, 0, real.err)
  t.match(real.out, /stopped alice\/ \(idle 7\d{3} s\)/)
  t.match(real.out, /summary: 2 servers checked, 1 stopped, 0 stop pending, 0 users deleted, 0 failed/)
  t.same({ ...front.seen, passed: front.seen.passed > 0 }, { failed503: 1, failed429: 1, passed: true }, 'it met a 503 and a 429 and got through')
  t.equal((await serverState(hub, 'alice'))?.state, 'stopped')
  t.equal((await serverState(hub, 'bob'))?.state, 'running', 'bob was active')
  await waitFor('alice process gone', async () => alive(alicePid) ? undefined : true, 10_000)
  t.pass("alice's process is gone")
})

class RecordingSpawner implements Spawner {
  readonly kind = 'recording'
  readonly stops: string[] = []
  async start(): Promise<never> { throw new Error('starts nothing') }
  async stop(_s: SpawnerState, who: { user: string; serverName: string }) { this.stops.push(`${who.user}/${who.serverName}`) }
  async poll() { return { running: true as const } }
  async close() {}
}

t.test('--cull-users --remove-named-servers --no-cull-admin-users, one user per page', async t => {
  const spawner = new RecordingSpawner()
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--no-cleanup-servers'], spawner: () => spawner })
  const token = await adminToken(hub)
  const idle = sql<Date>`now() - interval '2 hours'`
  const row = async (user: string, server: string | undefined, fresh: boolean, admin = false) => {
    const u = await ensureUser(hub.db, user, { admin })
    await hub.db.updateTable('users').set({ last_activity: fresh ? sql<Date>`now()` : idle, created: idle }).where('id', '=', u.id).execute()
    if (server === undefined) return
    await hub.db.insertInto('servers').values({ user_id: u.id, name: server, state: 'running', spawner_kind: 'recording', url: 'http://127.0.0.1:9',
      started: idle, last_activity: fresh ? sql<Date>`now()` : idle }).execute()
  }
  await row('nia', 'gpu', false) // idle named server: stopped and removed, then nia goes
  await row('oli', undefined, false) // no server, long inactive: goes
  await row('pat', '', true) // active: stays
  await row('boss', '', false, true) // an admin: left alone

  const res = await runCli(['--url', `${hub.hubUrl}/hub/api`, '--once', '--timeout', '600', '--cull-users', '--remove-named-servers', '--no-cull-admin-users', '--api-page-size', '1'],
    { JUPYTERHUB_API_TOKEN: token })
  t.equal(res.code, 0, res.err)
  t.match(res.out, /stopped and removed nia\/gpu/)
  t.match(res.out, /deleted user nia/)
  t.match(res.out, /deleted user oli/)
  t.same(spawner.stops, ['nia/gpu'])
  const users = (await hub.db.selectFrom('users').select('name').orderBy('name').execute()).map(r => r.name)
  t.same(users, ['boss', 'pat', 'root'])
  t.equal((await serverState(hub, 'boss'))?.state, 'running', "the admin's server runs on")
})

t.test('bad options and bad tokens get a clear error and exit code', async t => {
  const help = await runCli(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /usage: fleethub cull/)
  const noToken = await runCli(['--url', 'http://127.0.0.1:9/hub/api', '--once'])
  t.equal(noToken.code, 2)
  t.match(noToken.err, /no token/)
  const badNumber = await runCli(['--timeout', 'soon', '--once'], { JUPYTERHUB_API_TOKEN: 'x'.repeat(32) })
  t.equal(badNumber.code, 2)
  t.match(badNumber.err, /--timeout: expected an integer/)

  const hub = await startTestHub(t, { args: ['--no-cull-idle'] })
  const forbidden = await runCli(['--url', `${hub.hubUrl}/hub/api`, '--once'], { JUPYTERHUB_API_TOKEN: 'f'.repeat(32) })
  t.equal(forbidden.code, 1)
  t.match(forbidden.out, /sweep failed: .*403/)
  const user = await ensureUser(hub.db, 'quinn')
  const weak = (await createToken(hub.db, { kind: 'api', userId: user.id, scopes: ['inherit'] })).token
  const notAdmin = await runCli(['--url', `${hub.hubUrl}/hub/api`, '--once'], { JUPYTERHUB_API_TOKEN: weak })
  t.equal(notAdmin.code, 1, 'a token without list:users cannot cull')
  t.match(notAdmin.out, /403/)
})

t.test('paging one user at a time while culling skips nobody', async t => {
  // every stop takes a user out of state=ready; an offset-paged listing read while stopping would
  // shift the next user onto the page already read
  const spawner = new RecordingSpawner()
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--no-cleanup-servers'], spawner: () => spawner })
  const token = await adminToken(hub)
  const idle = sql<Date>`now() - interval '2 hours'`
  const names = ['ua', 'ub', 'uc', 'ud', 'ue']
  for (const name of names) {
    const u = await ensureUser(hub.db, name)
    await hub.db.updateTable('users').set({ last_activity: idle, created: idle }).where('id', '=', u.id).execute()
    await hub.db.insertInto('servers').values({ user_id: u.id, name: '', state: 'running', spawner_kind: 'recording', url: 'http://127.0.0.1:9', started: idle, last_activity: idle }).execute()
  }
  const res = await runCli(['--url', `${hub.hubUrl}/hub/api`, '--once', '--timeout', '600', '--cull-users', '--api-page-size', '1', '--concurrency', '1'],
    { JUPYTERHUB_API_TOKEN: token })
  t.equal(res.code, 0, res.err)
  t.same([...spawner.stops].sort(), names.map(n => `${n}/`), 'every idle server was stopped')
  const left = (await hub.db.selectFrom('users').select('name').where('name', 'in', names).execute()).map(r => r.name)
  t.same(left, [], 'and every one of those users deleted')
})
