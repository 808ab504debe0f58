/**
 * Spawn ownership across hubs (issue #14): the same spawn asked of two hubs at the same moment
 * starts one server, never two; and when the hub that owns a spawn or a stop in flight dies
 * (SIGKILL of a real hub process), another hub finishes it or fails it cleanly, the user told on
 * their progress stream, within the stated time (hub/src/servers/owner-sweep.ts: ≤ 4 s after a
 * SIGKILL with the default 1 s lease tick; held here to 10 s).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { createInstantSpawner, type InstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { asToken, FLEET_PROXY_TOKEN, msUntil, startFleetHub, startSharedProxy, userToken, readProgress } from '../../test/helpers/fleet.js'
import { ORPHAN_MESSAGE } from '../../hub/src/servers/owner-sweep.js'
import { createTestDatabase } from '../../test/helpers/db.js'

const TAKEOVER_BOUND_MS = 10_000

const serverRow = (hub: TestHub, user: string) => hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
  .select(['servers.state', 'servers.owner', 'servers.last_error']).where('users.name', '=', user).where('servers.name', '=', '').executeTakeFirst()

/** `spawner` is shared by the hubs, as a Kubernetes cluster is: any hub can stop what another started. */
function fleetHub(t: Parameters<typeof startTestHub>[0], spawner: InstantSpawner, proxyApiUrl: string, databaseUrl?: string): Promise<TestHub> {
  return startTestHub(t, { databaseUrl, spawner: () => spawner, env: { CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN },
    args: ['--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--admin-users', 'admin'] })
}

t.test('the same spawn at two hubs at once starts one server, round after round', async t => {
  const proxy = await startSharedProxy(t)
  // A start that takes a little while, so that both requests land inside one spawn.
  const spawner = createInstantSpawner({ startDelayMs: 30 })
  const a = await fleetHub(t, spawner, proxy.apiUrl)
  const b = await fleetHub(t, spawner, proxy.apiUrl, a.databaseUrl)
  const starts = () => spawner.started
  const users = await Promise.all(Array.from({ length: 8 }, (_, i) => userToken(a.db, `twin${i}`)))
  const ROUNDS = 6
  const statuses = new Map<number, number>()
  for (let round = 1; round <= ROUNDS; round++) {
    await Promise.all(users.map(async (u, i) => {
      const path = `/hub/api/users/twin${i}/server`
      const res = await Promise.all([a, b].map(h => asToken(h, u.token, path, { method: 'POST' })))
      for (const r of res) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
    }))
    const readyMs = await msUntil(async () => {
      const rows = await a.db.selectFrom('servers').select('state').where('state', '=', 'running').execute()
      return rows.length === users.length
    }, 10_000)
    t.ok(readyMs >= 0, `round ${round}: every server running`)
    t.equal(starts(), round * users.length, `round ${round}: ${starts()} starts in all, one per user per round`)
    t.equal(spawner.running, users.length, `round ${round}: one server process per user`)
    await Promise.all(users.map((u, i) => asToken(i % 2 ? a : b, u.token, `/hub/api/users/twin${i}/server`, { method: 'DELETE' })))
    t.ok(await msUntil(async () => (await a.db.selectFrom('servers').select('state').where('state', '<>', 'stopped').execute()).length === 0, 10_000) >= 0,
      `round ${round}: all stopped`)
  }
  t.same([...statuses.keys()].filter(s => ![201, 202, 400].includes(s)), [], `only 201/202 (started or pending) and 400 (already running): ${JSON.stringify([...statuses])}`)
})

/** A fleet hub in its own process (test/helpers/fleet-hub-child.ts), to SIGKILL. */
async function startChildHub(t: { teardown(fn: () => unknown): void }, databaseUrl: string, proxyApiUrl: string): Promise<{ child: ChildProcess; hubUrl: string; hubId: string }> {
  const script = path.resolve('test/helpers/fleet-hub-child.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DB_URL: databaseUrl, PROXY_API_URL: proxyApiUrl, CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN, FLEETHUB_DEV_PASSWORD: 'test-password-123' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('the child hub did not start')), 60_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find(l => l.startsWith('{'))
      if (line && out.includes('\n')) { clearTimeout(timer); resolve({ child, ...JSON.parse(line) as { hubUrl: string; hubId: string } }) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`the child hub exited with ${code}`)) })
  })
}


t.test('a hub killed with a spawn and a stop in flight: another hub settles both within the stated time', async t => {
  const proxy = await startSharedProxy(t)
  const { url } = await createTestDatabase(t)
  // A first: it holds every lease, the poll one (which runs the sweep) included, so the bound
  // below covers B taking that lease over too.
  const a = await startChildHub(t, url, proxy.apiUrl)
  const b = await startFleetHub(t, { proxyApiUrl: proxy.apiUrl, databaseUrl: url })
  const hang = await userToken(b.db, 'hang1')
  const slow = await userToken(b.db, 'slowstop1')
  const at = (token: string, p: string, init: RequestInit = {}) => fetch(`${a.hubUrl}${p}`, { ...init, headers: { authorization: `token ${token}` } })

  // A spawn that never finishes, owned by A.
  t.equal((await at(hang.token, '/hub/api/users/hang1/server', { method: 'POST' })).status, 202, 'spawn accepted by A')
  // A server that A started and is stopping, and whose stop never finishes.
  t.equal((await at(slow.token, '/hub/api/users/slowstop1/server', { method: 'POST' })).status, 201, 'slowstop1 running, started by A')
  void at(slow.token, '/hub/api/users/slowstop1/server', { method: 'DELETE' }).catch(() => undefined)
  t.ok(await msUntil(async () => (await serverRow(b, 'slowstop1'))?.state === 'stopping', 5000) >= 0, 'its stop is in flight on A')
  t.match(await serverRow(b, 'hang1'), { state: 'pending', owner: a.hubId }, 'the spawn is pending, owned by A')

  // The user watches from B.
  const stream = await asToken(b, hang.token, '/hub/api/users/hang1/server/progress')
  t.equal(stream.status, 200, 'progress stream open on B')
  const events = readProgress(stream, TAKEOVER_BOUND_MS + 5000)
  await new Promise(r => setTimeout(r, 2500)) // past the sweep's grace: the kill, not the claim's age, bounds the takeover
  t.match(await serverRow(b, 'hang1'), { state: 'pending' }, 'a live owner\'s spawn is left alone')

  const killedAt = Date.now()
  a.child.kill('SIGKILL')
  const failedMs = await msUntil(async () => (await serverRow(b, 'hang1'))?.state === 'stopped', TAKEOVER_BOUND_MS + 2000, 50)
  t.ok(failedMs >= 0 && failedMs <= TAKEOVER_BOUND_MS, `the dead hub's spawn failed ${failedMs} ms after the kill (bound ${TAKEOVER_BOUND_MS} ms)`)
  t.match(await serverRow(b, 'hang1'), { state: 'stopped', owner: null, last_error: ORPHAN_MESSAGE }, 'stopped, the reason kept')
  const stopped = await msUntil(async () => (await serverRow(b, 'slowstop1'))?.state === 'stopped', TAKEOVER_BOUND_MS + 2000, 50)
  const stoppedMs = Date.now() - killedAt
  t.ok(stopped >= 0 && stoppedMs <= TAKEOVER_BOUND_MS, `the dead hub's stop finished within ${stoppedMs} ms of the kill`)
  t.match(await serverRow(b, 'slowstop1'), { state: 'stopped', last_error: null }, 'a finished stop is not an error')

  const seen = await events
  const last = seen[seen.length - 1]
  t.match(last, { failed: true, message: `Spawn failed: ${ORPHAN_MESSAGE}` }, 'the user is told on their progress stream on B')
  t.ok(Date.now() - killedAt <= TAKEOVER_BOUND_MS + 1000, 'and told within the bound')
  t.ok(seen.some(e => e.message === 'Hanging on purpose'), 'the stream on B showed A\'s progress before (relayed)')
  t.ok(await msUntil(async () => (await b.db.selectFrom('spawn_slots' as never).select('slot' as never).where('server_id' as never, 'is not', null).execute()).length === 0, 3000) >= 0,
    'the spawn slot the dead hub held is free again')
  const tokens = await b.db.selectFrom('api_tokens').select('id').where('server_id', 'is not', null).execute()
  t.equal(tokens.length, 0, 'the servers\' credentials are gone')

  // The user starts again, on B: a clean claim.
  const again = await asToken(b, hang.token, '/hub/api/users/hang1/server', { method: 'POST' })
  t.equal(again.status, 201, 'the next spawn (on B) starts at once')
})
