/**
 * A class start in miniature: 200 users ask for a server at the same moment against a low
 * concurrent_spawn_limit. All end ready, waiting users are told their place in line, nothing
 * answers 5xx; past the queue bound the API answers 429 with Retry-After.
 */
import t from 'tap'
import { createToken } from '../../hub/src/tokens/token.repository.js'
import { createInstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub } from '../../test/helpers/hub.js'

const USERS = 200
const LIMIT = 5

async function adminToken(hub: Awaited<ReturnType<typeof startTestHub>>): Promise<string> {
  // --admin-users admin: the hub created the account at start
  const row = await hub.db.selectFrom('users').select('id').where('name', '=', 'admin').where('admin', '=', true).executeTakeFirstOrThrow()
  return (await createToken(hub.db, { kind: 'api', userId: row.id, scopes: ['inherit'] })).token
}

t.test(`${USERS} concurrent spawns with concurrent_spawn_limit=${LIMIT}`, async t => {
  const spawner = createInstantSpawner({ startDelayMs: 30 })
  // slow_spawn_timeout 0: the API answers at once, so the progress streams open while spawns wait
  const hub = await startTestHub(t, { args: ['--admin-users', 'admin', '--concurrent-spawn-limit', String(LIMIT)], spawner: () => spawner, slowSpawnTimeoutMs: 0 })
  const token = await adminToken(hub)
  const names = Array.from({ length: USERS }, (_, i) => `s${i}`)
  await hub.db.insertInto('users').values(names.map(name => ({ name }))).execute()
  const auth = { authorization: `token ${token}` }

  // each simulated student asks for a server, then watches its progress, all at once
  const results = await Promise.all(names.map(async name => {
    const res = await fetch(`${hub.hubUrl}/hub/api/users/${name}/server`, { method: 'POST', headers: auth })
    await res.body?.cancel()
    const progress = await fetch(`${hub.hubUrl}/hub/api/users/${name}/server/progress`, { headers: auth })
    const events = (await progress.text()).split('\n\n').filter(c => c.startsWith('data: ')).map(c => JSON.parse(c.slice(6)) as { ready?: boolean; message: string })
    return { status: res.status, progressStatus: progress.status, events }
  }))
  const statuses = results.map(r => r.status)
  t.same([...new Set(statuses)].filter(s => s !== 201 && s !== 202), [], `only 201/202 (${JSON.stringify(countBy(statuses))})`)
  t.ok(statuses.filter(s => s === 202).length > USERS / 2, 'most are still pending when the API answers')
  t.same([...new Set(results.map(r => r.progressStatus))], [200], 'every progress stream opens')
  const streams = results.map(r => r.events)
  t.equal(streams.filter(s => s[s.length - 1]?.ready === true).length, USERS, 'every spawn ends ready')
  const told = streams.filter(s => s.some(e => /number \d+ in line/.test(e.message))).length
  t.ok(told >= USERS / 2, `waiting users were told their place in line (${told} of ${USERS})`)
  t.ok(spawner.maxConcurrent <= LIMIT, `at most ${LIMIT} starts at once (saw ${spawner.maxConcurrent})`)
  const running = await hub.db.selectFrom('servers').select(hub.db.fn.countAll().as('n')).where('state', '=', 'running').executeTakeFirstOrThrow()
  t.equal(Number(running.n), USERS, 'all running in the database')
  const routes = await hub.proxyClient.getRoutes()
  t.equal(Object.keys(routes).filter(k => k.startsWith('/user/')).length, USERS, 'all routed')
  const page = await fetch(`${hub.publicUrl}/user/s123/`)
  t.equal(await page.text(), 'server of s123 at /user/s123/', 'and reachable through the proxy')
})

t.test('past the queue bound: 429 with Retry-After, and nothing half-written', async t => {
  const spawner = createInstantSpawner({ startDelayMs: 500 })
  const hub = await startTestHub(t, { args: ['--admin-users', 'admin', '--concurrent-spawn-limit', '2', '--spawn-queue-limit', '5'], spawner: () => spawner })
  const token = await adminToken(hub)
  const names = Array.from({ length: 30 }, (_, i) => `q${i}`)
  await hub.db.insertInto('users').values(names.map(name => ({ name }))).execute()
  const results = await Promise.all(names.map(async name => {
    const res = await fetch(`${hub.hubUrl}/hub/api/users/${name}/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
    const body = res.status === 429 ? await res.json() as { code: string } : (await res.body?.cancel(), undefined)
    return { name, status: res.status, retryAfter: res.headers.get('retry-after'), code: body?.code }
  }))
  const refused = results.filter(r => r.status === 429)
  t.ok(refused.length >= 20, `most are refused at once (${refused.length})`)
  t.ok(refused.every(r => Number(r.retryAfter) > 0), 'each 429 says when to retry')
  t.ok(refused.every(r => r.code === 'HUB_SPAWN_QUEUE_FULL'))
  t.same(results.filter(r => r.status >= 500), [], 'no 5xx')
  const rows = await hub.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select(['users.name', 'servers.state'])
    .where('users.name', 'in', refused.map(r => r.name)).execute()
  t.same(rows.filter(r => r.state !== 'stopped'), [], 'a refused spawn leaves no pending row')
})

function countBy(xs: number[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of xs) out[x] = (out[x] ?? 0) + 1
  return out
}
