/**
 * The in-hub idle culler end to end: real hub, real proxy child, real single-user processes.
 * Idleness comes from real signals (proxy route activity, the server's own reports); short
 * timeouts stand in for hours.
 */
import t from 'tap'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { ensureUser } from '../src/users/user.repository.js'
import { createToken } from '../src/tokens/token.repository.js'
import { waitFor } from '../../test/helpers/wait.js'
import { needs, which } from '../../test/helpers/requirements.js'

async function tokenFor(hub: TestHub, name: string, admin = false): Promise<string> {
  const user = await ensureUser(hub.db, name, { admin })
  return (await createToken(hub.db, { kind: 'api', userId: user.id, scopes: ['inherit'], note: 'culler test' })).token
}

async function api(hub: TestHub, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${hub.hubUrl}/hub/api${path}`, {
    method, headers: { authorization: `token ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : undefined }
}


async function serverRow(hub: TestHub, user: string) {
  return hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
    .select(['servers.state', 'servers.spawner_state']).where('users.name', '=', user).where('servers.name', '=', '').executeTakeFirst()
}

async function startServer(hub: TestHub, admin: string, user: string): Promise<number> {
  await ensureUser(hub.db, user)
  const res = await api(hub, admin, 'POST', `/users/${user}/server`)
  if (res.status !== 201 && res.status !== 202) throw new Error(`spawn ${user}: ${res.status} ${JSON.stringify(res.json)}`)
  const row = await waitFor(`${user} running`, async () => { const r = await serverRow(hub, user); return r?.state === 'running' ? r : undefined })
  return Number((row.spawner_state as { pid?: number }).pid)
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

// bob's requests carry his own token, as his browser carries his cookie: requests his server
// refuses (403 without credentials) are not activity, in configurable-http-proxy as here, or anyone
// could keep anyone's server alive. (This test once sent them without credentials: bob was never
// active, and whether he was culled depended on how far apart the two servers had started.)
const singleuser = which('jupyterhub-singleuser')
const servers = [
  { name: 'the built-in server', args: [] as string[], skip: false as const },
  { name: 'jupyterhub-singleuser', args: ['--singleuser-cmd', [singleuser, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])].join(' '), '--start-timeout', '60'],
    skip: needs(singleuser !== undefined, 'jupyterhub-singleuser is not installed (apt-get install jupyterhub)') },
]

for (const server of servers) t.test(`the scheduled sweep stops the idle server and keeps the one used through the proxy (${server.name})`, { skip: server.skip }, async t => {
  const hub = await startTestHub(t, { args: ['--cull-timeout', '3', '--cull-every', '1', ...server.args] })
  const admin = await tokenFor(hub, 'root', true)
  const bobToken = await tokenFor(hub, 'bob')
  const alicePid = await startServer(hub, admin, 'alice')
  await startServer(hub, admin, 'bob')

  // bob keeps browsing (through the proxy: route activity, harvested before each sweep); alice does nothing
  const stopped = await waitFor('alice culled', async () => {
    const res = await fetch(`${hub.publicUrl}/user/bob/api/status`, { headers: { authorization: `token ${bobToken}` } })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`bob's own request was refused: ${res.status}`)
    return (await serverRow(hub, 'alice'))?.state === 'stopped' ? true : undefined
  }, 30_000)
  t.ok(stopped, 'alice was culled')
  t.equal((await serverRow(hub, 'bob'))?.state, 'running', 'bob, active through the proxy, was not')
  await waitFor('alice process gone', async () => alive(alicePid) ? undefined : true, 10_000)
  t.notOk(alive(alicePid), "alice's process is gone")
  const routes = await hub.proxyClient.getRoutes()
  t.equal(routes['/user/alice'], undefined, "alice's route is gone")
  t.ok(routes['/user/bob'], "bob's route stays")

  const events = await api(hub, admin, 'GET', '/cull/events?limit=10')
  t.equal(events.status, 200)
  const forAlice = events.json.events.filter((e: any) => e.user === 'alice')
  t.match(forAlice, [{ user: 'alice', server: '', action: 'stopped', rule: 'idle', by: 'hub', dry_run: false }], 'the cull is in the log')
  t.ok(forAlice[0].idle_seconds >= 3, 'with how long it was idle')
  t.notOk(events.json.events.some((e: any) => e.user === 'bob' && e.action === 'stopped'), 'bob was never stopped')

  const denied = await api(hub, bobToken, 'GET', '/cull/events')
  t.equal(denied.status, 403, 'a user without admin:servers cannot read the log')
  t.equal(denied.json.code, 'HUB_MISSING_SCOPE')
  const deniedCull = await api(hub, bobToken, 'POST', '/cull', {})
  t.equal(deniedCull.status, 403, 'nor cull')
  const anonymous = await fetch(`${hub.hubUrl}/hub/api/cull/events`)
  t.equal(anonymous.status, 403, 'nor can anyone without a token')
})

t.test('max-age: the admin previews (nothing changes), then culls now through the API', async t => {
  const hub = await startTestHub(t, { args: ['--no-cull-idle', '--cull-timeout', '3600', '--cull-max-age', '2'] })
  const admin = await tokenFor(hub, 'root', true)
  const pid = await startServer(hub, admin, 'carol')
  await new Promise(r => setTimeout(r, 2500))

  const preview = await api(hub, admin, 'POST', '/cull', { dry_run: true })
  t.equal(preview.status, 200)
  t.match(preview.json, { dry_run: true, servers: [{ user: 'carol', server: '', rule: 'max-age' }] })
  t.equal(preview.json.servers.length, 1)
  t.equal((await serverRow(hub, 'carol'))?.state, 'running', 'the preview stopped nothing')
  t.ok(alive(pid))
  t.same((await api(hub, admin, 'GET', '/cull/events')).json.events, [], 'and recorded nothing')

  const report = await api(hub, admin, 'POST', '/cull', {})
  t.equal(report.status, 200)
  t.match(report.json, { by: 'api', dry_run: false, candidates: 1, stopped: 1, skipped: 0, actions: [{ user: 'carol', server: '', action: 'stopped', rule: 'max-age' }] })
  t.equal((await serverRow(hub, 'carol'))?.state, 'stopped')
  await waitFor('carol process gone', async () => alive(pid) ? undefined : true, 10_000)
  t.match((await api(hub, admin, 'GET', '/cull/events')).json.events, [{ user: 'carol', action: 'stopped', rule: 'max-age', by: 'api' }])

  const again = await api(hub, admin, 'POST', '/cull', {})
  t.match(again.json, { candidates: 0, stopped: 0 }, 'a second sweep finds nothing')
})
