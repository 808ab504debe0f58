/**
 * The proxy's routing table when several hubs share one proxy (issue #14). A hub that starts
 * while the others serve (a new replica, a worker replaced by a rolling restart) repairs the table
 * and never replaces it: a spawn on another hub adds its route before it marks its server running,
 * and a bulk PUT built from the database would erase that route for the length of a route-check
 * interval (300 s by default). A bulk restore after a proxy restart keeps the routes of servers
 * mid-spawn for the same reason.
 */
import t from 'tap'
import { sql } from 'kysely'
import { routePath } from '../../hub/src/proxy/route-sync.js'
import { FLEET_PROXY_TOKEN, startSharedProxy, userToken } from '../../test/helpers/fleet.js'
import { startTestHub, type TestHub } from '../../test/helpers/hub.js'
import { createInstantSpawner, type InstantSpawner } from '../../test/helpers/instant-spawner.js'

/** `spawner` is shared by the hubs, as a Kubernetes cluster is: each hub's start-up poll sees the other's servers. */
function fleetHub(t: Parameters<typeof startTestHub>[0], spawner: InstantSpawner, proxyApiUrl: string, databaseUrl?: string): Promise<TestHub> {
  return startTestHub(t, { databaseUrl, spawner: () => spawner, env: { CONFIGPROXY_AUTH_TOKEN: FLEET_PROXY_TOKEN },
    args: ['--proxy', 'external', '--proxy-api-url', proxyApiUrl, '--admin-users', 'admin'] })
}

const MID_TARGET = 'http://127.0.0.1:9/mid-spawn'

/** A server caught between its route being added and its row marked running, as a spawn on `hub` leaves it for a moment. */
async function midSpawn(hub: TestHub, user: string): Promise<string> {
  const { userId } = await userToken(hub.db, user)
  await sql`insert into servers (user_id, name, state, spawner_kind, owner, started) values (${userId}, '', 'pending', 'instant', ${hub.fleet.hubId}, now())`.execute(hub.db)
  const path = routePath(user, '')
  await hub.proxyClient.addRoute(path, MID_TARGET, { user, server_name: '', jupyterhub: true })
  return path
}

t.test('a hub joining the fleet keeps the routes of spawns in flight on another hub', async t => {
  const proxy = await startSharedProxy(t)
  const spawner = createInstantSpawner()
  const a = await fleetHub(t, spawner, proxy.apiUrl)
  const { token } = await userToken(a.db, 'admin', { admin: true })
  await userToken(a.db, 'runner')
  const started = await fetch(`${a.hubUrl}/hub/api/users/runner/server`, { method: 'POST', headers: { authorization: `token ${token}` } })
  t.ok([201, 202].includes(started.status), `a server started on A (${started.status})`)
  let running = false
  for (let i = 0; i < 100 && !running; i++) {
    running = (await a.proxyClient.getRoutes())[routePath('runner', '')] !== undefined
    if (!running) await new Promise(r => setTimeout(r, 100))
  }
  t.ok(running, 'and routed')
  const mid = await midSpawn(a, 'mid')
  // a route a hub made for a server that no longer runs: stale, and the new hub's repair removes it
  await a.proxyClient.addRoute(routePath('gone', ''), 'http://127.0.0.1:9/gone', { user: 'gone', server_name: '', jupyterhub: true })
  // a route no hub made: never touched
  await a.proxyClient.addRoute('/services/other', 'http://127.0.0.1:9/other', { service: 'other' })

  const b = await fleetHub(t, spawner, proxy.apiUrl, a.databaseUrl)
  const routes = await b.proxyClient.getRoutes()
  t.equal(routes[mid]?.target, MID_TARGET, 'the route of the spawn in flight on A is still there after B started')
  t.ok(routes[routePath('runner', '')], 'the running server keeps its route')
  t.notOk(routes[routePath('gone', '')], 'the stale hub route is gone')
  t.ok(routes['/services/other'], 'a route no hub made stays')
  t.ok(routes['/'], 'the hub route is there')
})

t.test('a bulk restore (after a proxy restart) keeps the routes of servers mid-spawn, and the follow-up pass adds what became running', async t => {
  const proxy = await startSharedProxy(t)
  const a = await fleetHub(t, createInstantSpawner(), proxy.apiUrl)
  const mid = await midSpawn(a, 'mid2')
  const later = await midSpawn(a, 'later')
  // A restore read before `later`'s route was added: simulate by deleting it, then restoring,
  // then marking it running (the spawn on another hub finishing after the PUT).
  await a.proxyClient.deleteRoute(later)
  await a.ctx.routes.restoreAll()
  const afterRestore = await a.proxyClient.getRoutes()
  t.equal(afterRestore[mid]?.target, MID_TARGET, 'the mid-spawn route survives the PUT')
  t.notOk(afterRestore[later], 'a route the PUT missed is missing for now')
  await sql`update servers s set state = 'running', url = ${'http://127.0.0.1:9/later'} from users u where u.id = s.user_id and u.name = 'later'`.execute(a.db)
  let back = false
  for (let i = 0; i < 100 && !back; i++) {
    back = (await a.proxyClient.getRoutes())[later]?.target === 'http://127.0.0.1:9/later'
    if (!back) await new Promise(r => setTimeout(r, 100))
  }
  t.ok(back, 'the follow-up pass put the route of the server that became running back')
})
