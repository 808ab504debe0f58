/**
 * The spawn admission queue, fleet-wide (issue #14): with two hubs, concurrent_spawn_limit holds
 * for both together (counted by one spawner both hubs start through, as a Kubernetes cluster
 * is), users are served in arrival order whichever hub they asked, the place in line a user is
 * shown is the same from either hub, and past the fleet's queue bound both hubs answer 429.
 */
import t from 'tap'
import { createInstantSpawner, type InstantSpawner } from '../../test/helpers/instant-spawner.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { FLEET_PROXY_TOKEN, msUntil, startSharedProxy, userToken, readProgress, type ProgressEvent } from '../../test/helpers/fleet.js'

type Event = ProgressEvent

function fleetHub(t: Parameters<typeof startTestHub>[0], spawner: InstantSpawner, proxyApiUrl: string, args: string[], databaseUrl?: string): Promise<TestHub> {
  return startTestHub(t, { databaseUrl, spawner: () => spawner, slowSpawnTimeoutMs: 0, env: { CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN },
    args: ['--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--admin-users', 'admin', ...args] })
}


const positionIn = (e: Event) => Number(/number (\d+) in line/.exec(e.message)?.[1] ?? 0)

t.test('a class start over two hubs: the limit holds fleet-wide, the line is one line', async t => {
  const LIMIT = 3, USERS = 24
  const proxy = await startSharedProxy(t)
  const spawner = createInstantSpawner({ startDelayMs: 500 })
  const args = ['--concurrent-spawn-limit', String(LIMIT)]
  const a = await fleetHub(t, spawner, proxy.apiUrl, args)
  const b = await fleetHub(t, spawner, proxy.apiUrl, args, a.databaseUrl)
  const users = await Promise.all(Array.from({ length: USERS }, (_, i) => userToken(a.db, `class${i}`)))
  const hubs = [a, b]
  // Each user asks one hub and watches from the other.
  const posted = await Promise.all(users.map((u, i) => fetch(`${hubs[i % 2]!.hubUrl}/hub/api/users/class${i}/server`, { method: 'POST', headers: { authorization: `token ${u.token}` } })))
  t.same([...new Set(posted.map(r => r.status))].filter(s => s !== 201 && s !== 202), [], 'every spawn accepted')

  const line = await a.db.selectFrom('spawn_queue' as never).select(['id' as never]).execute()
  t.ok(line.length >= USERS / 2, `most wait in one fleet-wide line (${line.length})`)
  const owners = await a.db.selectFrom('spawn_queue' as never).select(['owner' as never]).execute() as Array<{ owner: string }>
  t.same(new Set(owners.map(o => o.owner)), new Set(hubs.map(h => h.fleet.hubId)), 'one line holds both hubs\' waiting spawns')

  const streams = await Promise.all(users.map(async (u, i) => readProgress(await fetch(`${hubs[(i + 1) % 2]!.hubUrl}/hub/api/users/class${i}/server/progress`, { headers: { authorization: `token ${u.token}` } }))))
  t.ok(streams.every(s => s[s.length - 1]?.ready === true), 'every stream, on the other hub, ends ready')
  t.ok(spawner.maxConcurrent <= LIMIT, `at most ${LIMIT} starts at once in the fleet (saw ${spawner.maxConcurrent})`)
  t.equal(spawner.started, USERS, 'every server started once')
  const told = streams.filter(s => s.some(e => positionIn(e) > 0))
  t.ok(told.length >= USERS / 2, `waiting users see their place in line on the other hub (${told.length} of ${USERS})`)
  const lastPositions = told.map(s => { const p = s.map(positionIn).filter(n => n > 0); return p })
  t.ok(lastPositions.every(p => p.every((n, i) => i === 0 || n <= p[i - 1]!)), 'a place in line only ever moves forward')
  t.ok(await msUntil(async () => (await a.db.selectFrom('spawn_slots' as never).select('slot' as never).where('server_id' as never, 'is not', null).execute()).length === 0, 3000) >= 0, 'every slot free again')
})

t.test('past the fleet\'s queue bound: 429 from either hub, nothing half-written', async t => {
  const proxy = await startSharedProxy(t)
  // Starts slow enough that none ends while the 30 requests arrive: the bound alone decides.
  const spawner = createInstantSpawner({ startDelayMs: 3000 })
  const args = ['--concurrent-spawn-limit', '2', '--spawn-queue-limit', '5']
  const a = await fleetHub(t, spawner, proxy.apiUrl, args)
  const b = await fleetHub(t, spawner, proxy.apiUrl, args, a.databaseUrl)
  const users = await Promise.all(Array.from({ length: 30 }, (_, i) => userToken(a.db, `q${i}`)))
  const results = await Promise.all(users.map(async (u, i) => {
    const res = await fetch(`${[a, b][i % 2]!.hubUrl}/hub/api/users/q${i}/server`, { method: 'POST', headers: { authorization: `token ${u.token}` } })
    const body = res.status === 429 ? await res.json() as { error?: { code: string }; code?: string } : (await res.body?.cancel(), undefined)
    return { name: `q${i}`, status: res.status, via: i % 2, retryAfter: res.headers.get('retry-after'), code: body?.error?.code ?? body?.code }
  }))
  const admitted = results.filter(r => r.status !== 429)
  t.equal(admitted.length, 7, `exactly limit + queue bound admitted across both hubs (${admitted.length})`)
  t.ok(results.filter(r => r.status === 429).every(r => r.code === 'HUB_SPAWN_QUEUE_FULL' && Number(r.retryAfter) > 0), 'each refusal: its code, a Retry-After')
  t.same(new Set(results.filter(r => r.status === 429).map(r => r.via)), new Set([0, 1]), 'both hubs refuse')
  const pendingRefused = await a.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id').select(['users.name', 'servers.state'])
    .where('users.name', 'in', results.filter(r => r.status === 429).map(r => r.name)).where('servers.state', '<>', 'stopped').execute()
  t.same(pendingRefused, [], 'a refused spawn leaves no pending row')
  t.ok(await msUntil(async () => spawner.running === 7, 20_000) >= 0, 'the admitted ones all end running')
  t.ok(spawner.maxConcurrent <= 2, `at most 2 at once (saw ${spawner.maxConcurrent})`)
})
